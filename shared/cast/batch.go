package cast

import (
	"context"
	"sync"
	"time"
)

// batcher groups the requests that arrive together into one call of run:
// a request waits only for the batch in flight (if any) to finish, then
// goes with every other request that arrived meanwhile. At low load every
// batch is one request (in Lambda, where an instance serves one request at
// a time, always); under load the database sees one statement for many
// ballots. At most workers batches are in flight; requests with the same
// key never share a batch.
type batcher[Req, Res any] struct {
	run     func(ctx context.Context, reqs []Req) ([]Res, error)
	key     func(Req) string
	max     int
	workers int

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

// batchTimeout bounds one batch: its requests' own contexts do not end it
// (one caller's cancel must not fail the others).
const batchTimeout = 10 * time.Second

// do runs req in the next batch and returns its result.
func (b *batcher[Req, Res]) do(ctx context.Context, req Req) (Res, error) {
	c := &call[Req, Res]{req: req, done: make(chan result[Res], 1)}
	b.mu.Lock()
	b.pending = append(b.pending, c)
	if b.running < max(b.workers, 1) {
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
func (b *batcher[Req, Res]) work(ctx context.Context) {
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
		bctx, cancel := context.WithTimeout(ctx, batchTimeout)
		res, err := b.run(bctx, reqs)
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
func (b *batcher[Req, Res]) take() []*call[Req, Res] {
	limit := b.max
	if limit <= 0 {
		limit = 256
	}
	var batch, rest []*call[Req, Res]
	seen := map[string]bool{}
	for _, c := range b.pending {
		k := ""
		if b.key != nil {
			k = b.key(c.req)
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
