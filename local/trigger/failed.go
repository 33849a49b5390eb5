package trigger

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
)

// FailedBatchFile is the local failure destination: one JSON line per
// batch that failed every retry, appended to a file in the state directory
// (FailedBatchesQueue plays this part in AWS).
type FailedBatchFile struct {
	Path string
	mu   sync.Mutex
}

// Record appends f to the file.
func (d *FailedBatchFile) Record(_ context.Context, f FailedBatch) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	line, err := json.Marshal(f)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(d.Path), 0o755); err != nil {
		return err
	}
	fh, err := os.OpenFile(d.Path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := fh.Write(append(line, '\n')); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}
