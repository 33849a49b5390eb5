// Package trigger runs a function's event-source mapping on one machine, as
// AWS Lambda runs it behind MSK: it consumes the function's topic in the
// function's own consumer group, one worker per partition (at most one
// invocation per partition at a time, in offset order), gathers batches of
// up to BatchSize records for at most Window, invokes the function with the
// events.KafkaEvent JSON Lambda would send, honours partial batch
// responses, retries failures with backoff (forever, or up to the
// mapping's retry limit and then to its failure destination) and commits
// only what the function processed.
//
// The batching and delivery loop is one (partition.run); Kafka (KafkaTrigger)
// and NATS JetStream (NATSTrigger) only feed it records and commit what it
// reports processed.
package trigger

import (
	"context"
	"log/slog"
	"time"

	"github.com/votingpipe/voting/shared/kafkaevent"
	"github.com/votingpipe/voting/shared/stream"
)

// Mapping is one function's event-source mapping: its row of infra.Triggers
// and how the function is reached.
type Mapping struct {
	// Function names the function in logs and statistics.
	Function string
	// Topic and Group are the mapping's topic and ConsumerGroupId.
	Topic string
	Group string
	// BatchSize and Window are the mapping's BatchSize and
	// MaximumBatchingWindowInSeconds.
	BatchSize int
	Window    time.Duration
	Invoker   Invoker
	// Meta describes the event source in the events (bootstrap servers).
	Meta    kafkaevent.Meta
	Backoff Backoff
	// GiveUp, when set, ends the retries of a failed batch (nil: forever).
	GiveUp *GiveUp
	Stats  *Stats
	Log    *slog.Logger
	// Limiter, when set, is waited on before each invocation with the batch
	// size (e.g. to pace the pipeline).
	Limiter func(ctx context.Context, n int) error
}

// withDefaults fills what was left out.
func (m Mapping) withDefaults() Mapping {
	if m.Stats == nil {
		m.Stats = &Stats{}
	}
	if m.Log == nil {
		m.Log = slog.Default()
	}
	if m.Backoff == (Backoff{}) {
		m.Backoff = DefaultBackoff
	}
	if m.BatchSize <= 0 {
		m.BatchSize = 100
	}
	return m
}

func (m Mapping) deliverer() *deliverer {
	return &deliverer{name: m.Function, invoker: m.Invoker, meta: m.Meta, backoff: m.Backoff, giveUp: m.GiveUp, stats: m.Stats, log: m.Log}
}

// partition is the batching and delivery loop of one partition: records
// arrive on in, in offset order; done is called with each prefix the
// function processed, in order, for the source to commit.
type partition struct {
	m    Mapping
	d    *deliverer
	in   <-chan []*stream.Record
	stop <-chan struct{} // closed: finish the invocation in flight, start no more
	done func(processed []*stream.Record)
}

// run delivers batches until ctx is done, stop is closed or in is closed.
// Invocations run on invokeCtx, so that one in flight when ctx ends still
// finishes (its work is idempotent either way) and is committed.
func (p *partition) run(ctx, invokeCtx context.Context) {
	var pending []*stream.Record
	take := func(recs []*stream.Record, ok bool) bool {
		pending = append(pending, recs...)
		return ok
	}
	for {
		if len(pending) == 0 {
			select {
			case recs, ok := <-p.in:
				if !take(recs, ok) {
					return
				}
			case <-p.stop:
				return
			case <-ctx.Done():
				return
			}
		}
		if !p.gather(ctx, &pending) {
			return
		}
		n := min(len(pending), p.m.BatchSize)
		batch := pending[:n:n]
		if p.m.Limiter != nil {
			if err := p.m.Limiter(ctx, n); err != nil {
				return
			}
		}
		if err := p.d.deliver(invokeCtx, p.stop, batch, p.done); err != nil {
			return
		}
		pending = pending[n:]
	}
}

// gather adds to pending until the batch is full or the window closes;
// with a window of 0 it takes whatever else has already arrived. It
// reports false when the partition must stop.
func (p *partition) gather(ctx context.Context, pending *[]*stream.Record) bool {
	if p.m.Window <= 0 {
		for len(*pending) < p.m.BatchSize {
			select {
			case recs, ok := <-p.in:
				if !ok {
					return true // deliver what is here; the next receive ends the loop
				}
				*pending = append(*pending, recs...)
			default:
				return true
			}
		}
		return true
	}
	timer := time.NewTimer(p.m.Window)
	defer timer.Stop()
	for len(*pending) < p.m.BatchSize {
		select {
		case recs, ok := <-p.in:
			if !ok {
				return true
			}
			*pending = append(*pending, recs...)
		case <-timer.C:
			return true
		case <-p.stop:
			return false
		case <-ctx.Done():
			return false
		}
	}
	return true
}
