package batch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Concurrent requests share batches, each gets its own result, no batch
// holds a key twice, and a failed batch fails only its own requests.
func TestBatcherGroupsConcurrentRequests(t *testing.T) {
	var batches, biggest atomic.Int64
	gate := make(chan struct{})
	b := &Batcher[string, string]{Max: 50, Workers: 2, Key: func(s string) string { return s[:2] },
		Run: func(_ context.Context, reqs []string) ([]string, error) {
			<-gate
			batches.Add(1)
			if n := int64(len(reqs)); n > biggest.Load() {
				biggest.Store(n)
			}
			seen := map[string]bool{}
			out := make([]string, len(reqs))
			for i, r := range reqs {
				if seen[r[:2]] {
					return nil, fmt.Errorf("key %s twice in a batch", r[:2])
				}
				seen[r[:2]] = true
				if r == "xx-fail" {
					return nil, errors.New("the database failed")
				}
				out[i] = "done " + r
			}
			return out, nil
		}}
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for i := range 400 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := fmt.Sprintf("%02d-%d", i%97, i)
			got, err := b.Do(context.Background(), req)
			if err != nil || got != "done "+req {
				errs <- fmt.Errorf("%s: %q %v", req, got, err)
			}
		}()
	}
	time.Sleep(50 * time.Millisecond) // let them pile up behind the first batches
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := batches.Load(); n >= 400 || biggest.Load() < 10 {
		t.Errorf("%d batches, the biggest of %d: the requests were not grouped", n, biggest.Load())
	}
	if _, err := b.Do(context.Background(), "xx-fail"); err == nil {
		t.Error("a failed batch reported success")
	}
	if got, err := b.Do(context.Background(), "yy-after"); err != nil || got != "done yy-after" {
		t.Errorf("after a failed batch: %q %v", got, err)
	}
	// A caller that gives up does not hold the others.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.Do(ctx, "zz-cancelled"); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled caller got %v", err)
	}
}
