package natsbridge

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/votingpipe/voting/shared/stream"
)

// publishAttempts bounds how often one record is sent before Publish gives
// up (the batch then fails and is redelivered; its ids make that harmless).
const publishAttempts = 5

type outgoing struct {
	r  *stream.Record
	m  *nats.Msg
	id string
	p  int32
}

func (b *Bridge) outgoing(r *stream.Record) outgoing {
	id := MsgID(r)
	p := Partition(r, id, b.opts.Partitions)
	return outgoing{r: r, m: Message(b.Subject(r.Topic, p), r), id: id, p: p}
}

// sendAsync publishes asynchronously, waiting while too many publishes are
// unacknowledged.
func (b *Bridge) sendAsync(ctx context.Context, o outgoing) (jetstream.PubAckFuture, error) {
	for {
		f, err := b.js.PublishMsgAsync(o.m, jetstream.WithMsgID(o.id), jetstream.WithStallWait(250*time.Millisecond))
		if errors.Is(err, jetstream.ErrTooManyStalledMsgs) && ctx.Err() == nil {
			continue
		}
		return f, err
	}
}

func await(ctx context.Context, f jetstream.PubAckFuture) (*jetstream.PubAck, error) {
	select {
	case ack := <-f.Ok():
		return ack, nil
	case err := <-f.Err():
		return nil, err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (o outgoing) stored(ack *jetstream.PubAck) {
	o.r.Partition = o.p
	o.r.Offset = int64(ack.Sequence) - 1
}

// Publish stores recs and returns once the server has every one (or the
// first failure after retries). Records are sent in order, pipelined;
// each carries its MsgID, so a record sent again (here or by a redelivered
// batch) within the duplicate window is stored once. On success each
// record's Partition and Offset say where it was stored.
func (b *Bridge) Publish(ctx context.Context, recs ...*stream.Record) error {
	todo := make([]outgoing, len(recs))
	for i, r := range recs {
		todo[i] = b.outgoing(r)
	}
	var lastErr error
	for attempt := 0; len(todo) > 0; attempt++ {
		if attempt == publishAttempts {
			return fmt.Errorf("publish to %s: %d records not stored after %d attempts: %w", todo[0].r.Topic, len(todo), attempt, lastErr)
		}
		if attempt > 0 {
			t := time.NewTimer(time.Duration(50<<attempt) * time.Millisecond)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			}
		}
		futures := make([]jetstream.PubAckFuture, len(todo))
		var failed []outgoing
		for i, o := range todo {
			f, err := b.sendAsync(ctx, o)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				lastErr = err
			}
			futures[i] = f
		}
		for i, o := range todo {
			if futures[i] == nil {
				failed = append(failed, o)
				continue
			}
			ack, err := await(ctx, futures[i])
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				lastErr = err
				failed = append(failed, o)
				continue
			}
			o.stored(ack)
		}
		todo = failed
	}
	return nil
}

// produced is a record sent by Produce and not yet acknowledged.
type produced struct {
	o       outgoing
	f       jetstream.PubAckFuture
	promise func(*stream.Record, error)
}

func (p *producer) init(b *Bridge) {
	p.b = b
	p.acks = make(chan produced, 8192)
	p.done = make(chan struct{})
	go p.collect()
}

// Produce sends r asynchronously and calls promise (from another
// goroutine) once the server has stored it or it failed, as
// kgo.Client.Produce does.
func (b *Bridge) Produce(ctx context.Context, r *stream.Record, promise func(*stream.Record, error)) {
	if promise == nil {
		promise = func(*stream.Record, error) {}
	}
	p := &b.prod
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		promise(r, errors.New("natsbridge: producer is closed"))
		return
	}
	if p.n == 0 {
		p.idle = make(chan struct{})
	}
	p.n++
	p.mu.Unlock()

	o := b.outgoing(r)
	f, err := b.sendAsync(ctx, o)
	if err != nil {
		promise(r, fmt.Errorf("publish to %s: %w", r.Topic, err))
		p.release()
		return
	}
	p.acks <- produced{o: o, f: f, promise: promise}
}

// collect resolves produced records in order; a failed one is sent again
// synchronously (same id) a few times before its promise gets the error.
func (p *producer) collect() {
	defer close(p.done)
	for pr := range p.acks {
		ctx := context.Background()
		ack, err := await(ctx, pr.f)
		for attempt := 1; err != nil && attempt < publishAttempts; attempt++ {
			time.Sleep(time.Duration(50<<attempt) * time.Millisecond)
			actx, cancel := context.WithTimeout(ctx, 15*time.Second)
			ack, err = p.b.js.PublishMsg(actx, pr.o.m, jetstream.WithMsgID(pr.o.id))
			cancel()
		}
		if err != nil {
			err = fmt.Errorf("publish to %s: %w", pr.o.r.Topic, err)
		} else {
			pr.o.stored(ack)
		}
		pr.promise(pr.o.r, err)
		p.release()
	}
}

func (p *producer) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n--
	if p.n == 0 {
		close(p.idle)
	}
}

// Flush waits until every record produced so far is acknowledged (its
// promise called) or ctx is done.
func (b *Bridge) Flush(ctx context.Context) error {
	p := &b.prod
	p.mu.Lock()
	if p.n == 0 {
		p.mu.Unlock()
		return nil
	}
	idle := p.idle
	p.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *producer) close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	if err := p.b.Flush(ctx); err != nil {
		// A Produce may still be handing its record over: leave the
		// collector running rather than close its channel under it.
		return err
	}
	close(p.acks)
	<-p.done
	return nil
}
