package harness

import (
	"bytes"
	"os"
	"runtime"
	"runtime/pprof"
	"time"
)

// ProfilePeakHeap samples the heap every 250 ms and writes a heap profile to
// path each time the heap in use reaches a new peak, so the file ends up
// describing the moment of greatest memory use. Call the returned function
// to stop.
func ProfilePeakHeap(path string) func() {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		var peak uint64
		var ms runtime.MemStats
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse <= peak+peak/20 {
				continue
			}
			peak = ms.HeapInuse
			var buf bytes.Buffer
			if err := pprof.Lookup("heap").WriteTo(&buf, 0); err == nil {
				os.WriteFile(path, buf.Bytes(), 0o644) //nolint:errcheck // best effort diagnostics
			}
		}
	}()
	return func() { close(done); <-stopped }
}
