package tokens

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Issued is one voter's token, as handed out.
type Issued struct {
	VoterID, Token string
}

// Sink is where register hands the tokens out, in roll order: the tokens of
// voters[from:from+len(rows)] are written before those voters are copied
// into the database, so every voter the database knows has their token out.
// A registration resumed after a crash issues new tokens for the voters it
// copies again, which replace the ones written for them before.
type Sink interface {
	// Resume keeps the tokens of voters[0:n] of the election, those the
	// database holds, and drops any written after them.
	Resume(ctx context.Context, election string, n int64) error
	// Write hands out the tokens of voters[from:from+len(rows)].
	Write(ctx context.Context, election string, from int64, rows []Issued) error
	// Location says where the election's tokens are (a path, an S3 URL).
	Location(election string) string
}

// Header is the first line of a tokens CSV file.
const Header = "voter_id,token"

// File is a Sink writing one CSV file (voter_id,token; mode 0600) for the
// election being registered: a new election replaces the file.
type File struct {
	Path string
}

// Location returns the file's path.
func (f File) Location(string) string { return f.Path }

// Resume cuts the file after its first n tokens (creating it, with its
// header, when n is 0 or it does not exist). A file with fewer than n
// tokens lost some (it was removed meanwhile): an error names how many.
func (f File) Resume(_ context.Context, _ string, n int64) error {
	if n == 0 {
		return writeFile(f.Path, Header+"\n")
	}
	fh, err := os.OpenFile(f.Path, os.O_RDWR, 0o600)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("tokens: %s is gone; the tokens of the %d voters registered so far are lost", f.Path, n)
	}
	if err != nil {
		return fmt.Errorf("tokens: %w", err)
	}
	defer fh.Close()
	end, rows, err := offsetAfter(fh, n)
	if err != nil {
		return fmt.Errorf("tokens: %s: %w", f.Path, err)
	}
	if rows < n {
		return fmt.Errorf("tokens: %s holds %d tokens of the %d voters registered so far", f.Path, rows, n)
	}
	if err := fh.Truncate(end); err != nil {
		return fmt.Errorf("tokens: %w", err)
	}
	return fh.Sync()
}

// offsetAfter returns the byte offset after the header and n rows, and how
// many rows it found (fewer than n when the file is shorter).
func offsetAfter(r io.Reader, n int64) (int64, int64, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	var off, rows int64
	line, err := br.ReadString('\n')
	if err != nil || strings.TrimSpace(line) != Header {
		return 0, 0, fmt.Errorf("not a tokens file (first line %q)", strings.TrimSpace(line))
	}
	off += int64(len(line))
	for rows < n {
		line, err := br.ReadString('\n')
		if errors.Is(err, io.EOF) {
			break // a partial last line is dropped
		}
		if err != nil {
			return 0, 0, err
		}
		off += int64(len(line))
		rows++
	}
	return off, rows, nil
}

// Write appends the rows and syncs the file.
func (f File) Write(_ context.Context, _ string, _ int64, rows []Issued) error {
	fh, err := os.OpenFile(f.Path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("tokens: %w", err)
	}
	bw := bufio.NewWriterSize(fh, 1<<16)
	w := csv.NewWriter(bw)
	for _, r := range rows {
		w.Write([]string{r.VoterID, r.Token}) //nolint:errcheck // reported by Error
	}
	w.Flush()
	err = w.Error()
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = fh.Sync()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("tokens: write %s: %w", f.Path, err)
	}
	return nil
}

// writeFile replaces path with content, mode 0600 (also when it existed
// with another mode).
func writeFile(path, content string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		return fmt.Errorf("tokens: %w", err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fmt.Errorf("tokens: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("tokens: %w", err)
	}
	return nil
}

// ReadFile reads a tokens CSV file, as a person or a load test would.
func ReadFile(path string) ([]Issued, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	defer fh.Close()
	r := csv.NewReader(bufio.NewReaderSize(fh, 1<<16))
	r.FieldsPerRecord = 2
	r.ReuseRecord = true
	head, err := r.Read()
	if err != nil || strings.Join(head, ",") != Header {
		return nil, fmt.Errorf("tokens: %s is not a tokens file", path)
	}
	var out []Issued
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("tokens: %s: %w", path, err)
		}
		out = append(out, Issued{VoterID: rec[0], Token: rec[1]})
	}
}
