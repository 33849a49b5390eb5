package dashboard

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Destination is where a rendered page is published for its readers: a
// directory (Dir), or an S3 bucket (package s3site).
type Destination interface {
	// Publish writes the page's files in order. Each file is replaced
	// atomically: a reader sees the old or the new file, never a part.
	Publish(ctx context.Context, p Page) error
}

var _ Destination = Dir{}

// Dir writes pages to a local directory, creating it when needed.
type Dir struct {
	Dir string
}

// IndexPath is the absolute path of the published index.html.
func (d Dir) IndexPath() (string, error) {
	return filepath.Abs(filepath.Join(d.Dir, IndexFile))
}

// Publish writes each file to a temporary file in Dir and renames it into
// place. Static files already present with the same content are left alone.
func (d Dir) Publish(ctx context.Context, p Page) error {
	if d.Dir == "" {
		return errors.New("publish dashboard: no directory")
	}
	if err := os.MkdirAll(d.Dir, 0o755); err != nil {
		return fmt.Errorf("publish dashboard: %w", err)
	}
	for _, f := range p.Files {
		if err := ctx.Err(); err != nil {
			return err
		}
		path := filepath.Join(d.Dir, f.Name)
		if f.Static && sameContent(path, f.Body) {
			continue
		}
		if err := writeAtomic(path, f.Body); err != nil {
			return fmt.Errorf("publish dashboard: %w", err)
		}
	}
	return nil
}

func sameContent(path string, body []byte) bool {
	st, err := os.Stat(path)
	if err != nil || !st.Mode().IsRegular() || st.Size() != int64(len(body)) {
		return false
	}
	cur, err := os.ReadFile(path)
	return err == nil && bytes.Equal(cur, body)
}

// writeAtomic replaces path with body through a temporary file in the same
// directory (so the rename cannot cross file systems).
func writeAtomic(path string, body []byte) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()           //nolint:errcheck
			os.Remove(tmp.Name()) //nolint:errcheck
		}
	}()
	if _, err = tmp.Write(body); err != nil {
		return err
	}
	// Readers (a browser, a web server) need to read it; CreateTemp makes 0600.
	if err = tmp.Chmod(0o644); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
