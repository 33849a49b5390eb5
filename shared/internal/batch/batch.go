// Package batch groups the calls that arrive together into one: group commit
// for the database statements of the cast function's claims and the tally's
// publishes of the totals.
package batch

import (
	"context"
	"sync"
	"time"
)

// Batcher groups the requests that arrive together into one call of Run:
// a request waits only for the batch in flight (if any) to finish, then
// goes with every other request that arrived meanwhile, so a batch always
// starts after each of its requests arrived. At low load every batch is one
// request (in Lambda, where an instance serves one request at a time,
// always); under load the database sees one statement for many requests.
// At most Workers batches are in flight (at least one); requests with the
// same Key never share a batch; a batch holds at most Max requests (256
// when 0). The zero value is not usable: Run is required.
type Batcher[Req, Res any] struct {
	// Run does one batch: one result per request, in order, or an error
	// that every request of the batch gets.
	Run     func(ctx context.Context, reqs []Req) ([]Res, error)
	Key     func(Req) string
	Max     int
	Workers int
	// Timeout bounds one batch (10 s when 0): its requests' own contexts
	// do not end it, since one caller's cancel must not fail the others.
	Timeout time.Duration

	mu      sync.Mutex
	pending []*call[Req, Res]
	running int
}

type call[Req, Res any] struct {
	req  Req
	done chan result[Res]
}

type result[Res any] struct {
	res Res
	err error
}

// defaultTimeout bounds a batch when Timeout is 0.
const defaultTimeout = 10 * time.Second

// Do runs req in the next batch and returns its result.
func (b *Batcher[Req, Res]) Do(ctx context.Context, req Req) (Res, error) {
	c := &call[Req, Res]{req: req, done: make(chan result[Res], 1)}
	b.mu.Lock()
	b.pending = append(b.pending, c)
	if b.running < max(b.Workers, 1) {
		b.running++
		go b.work(context.WithoutCancel(ctx))
	}
	b.mu.Unlock()
	select {
	case r := <-c.done:
		return r.res, r.err
	case <-ctx.Done():
		var zero Res
		return zero, ctx.Err()
	}
}

// work runs batches until none is pending.
func (b *Batcher[Req, Res]) work(ctx context.Context) {
	for {
		b.mu.Lock()
		batch := b.take()
		if len(batch) == 0 {
			b.running--
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		reqs := make([]Req, len(batch))
		for i, c := range batch {
			reqs[i] = c.req
		}
		timeout := b.Timeout
		if timeout <= 0 {
			timeout = defaultTimeout
		}
		bctx, cancel := context.WithTimeout(ctx, timeout)
		res, err := b.Run(bctx, reqs)
		cancel()
		for i, c := range batch {
			var r result[Res]
			if err != nil {
				r.err = err
			} else {
				r.res = res[i]
			}
			c.done <- r
		}
	}
}

// take removes the next batch from pending (b.mu held): up to max requests,
// no key twice.
func (b *Batcher[Req, Res]) take() []*call[Req, Res] {
	limit := b.Max
	if limit <= 0 {
		limit = 256
	}
	var batch, rest []*call[Req, Res]
	seen := map[string]bool{}
	for _, c := range b.pending {
		k := ""
		if b.Key != nil {
			k = b.Key(c.req)
		}
		if len(batch) == limit || (k != "" && seen[k]) {
			rest = append(rest, c)
			continue
		}
		seen[k] = k != ""
		batch = append(batch, c)
	}
	b.pending = rest
	return batch
}
