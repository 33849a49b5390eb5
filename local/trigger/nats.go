package trigger

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/votingpipe/voting/local/natsbridge"
	"github.com/votingpipe/voting/shared/stream"
)

// NATSTrigger feeds one function from JetStream with the semantics of
// KafkaTrigger (and of Lambda's Kafka event-source mapping): one durable
// consumer per topic-partition stream, one worker per partition, the same
// batching and delivery loop, acknowledgements (cumulative, like a Kafka
// commit) only for what the function processed. Several triggers of one
// group (in one or several processes) share its partitions: each holds a
// fair share through leases (natsbridge.Leases) and hands partitions over
// when members come and go.
type NATSTrigger struct {
	Mapping
	Bridge *natsbridge.Bridge
	// Partitions is the partition count of the topic.
	Partitions int
	// MaxAckPending bounds the records fetched ahead of the function per
	// partition (default 3 x BatchSize).
	MaxAckPending int
	// Owner names this trigger among the group's members (default: host,
	// pid and a random suffix); LeaseTTL is how long it holds a partition
	// without renewing it (default natsbridge.DefaultLeaseTTL).
	Owner    string
	LeaseTTL time.Duration
}

// Run consumes until ctx is done, then lets the invocations in flight
// finish, acknowledges what they processed and releases its partitions.
func (t *NATSTrigger) Run(ctx context.Context) error {
	t.Mapping = t.Mapping.withDefaults()
	if t.MaxAckPending <= 0 {
		t.MaxAckPending = 3 * t.BatchSize
	}
	if t.Partitions <= 0 {
		t.Partitions = t.Bridge.Partitions()
	}
	// The function's consumers get a connection of their own: on a shared
	// one, their deliveries would queue behind every publish acknowledgement.
	b, err := t.Bridge.Fork(ctx, t.Function)
	if err != nil {
		return err
	}
	defer b.Close()
	owner := t.Owner
	if owner == "" {
		owner = defaultOwner()
	}
	leases, err := b.Leases(ctx, t.Group, owner, t.LeaseTTL)
	if err != nil {
		return err
	}
	invokeCtx, cancelInvocations := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelInvocations()
	s := &natsShare{t: t, b: b, d: t.deliverer(), leases: leases, invokeCtx: invokeCtx, held: map[int32]*natsPart{}}
	tick := time.NewTicker(leases.TTL() / 4)
	defer tick.Stop()
	for {
		s.rebalance(ctx)
		select {
		case <-ctx.Done():
		case <-tick.C:
			continue
		}
		break
	}
	s.releaseAll()
	lctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	leases.Leave(lctx) //nolint:errcheck // the entry expires anyway
	return nil
}

// defaultOwner names this process among a consumer group's members.
func defaultOwner() string {
	host, _ := os.Hostname()
	var r [4]byte
	rand.Read(r[:]) //nolint:errcheck // crypto/rand does not fail
	return fmt.Sprintf("%s-%d-%x", host, os.Getpid(), r)
}

func (t *NATSTrigger) consumerOptions() natsbridge.ConsumerOptions {
	return natsbridge.ConsumerOptions{MaxAckPending: t.MaxAckPending}
}

// natsShare is a trigger's share of its consumer group's partitions: it
// holds a fair share of them (partitions / members, rounded up) through
// leases, consuming each it holds, and gives up those above its share when
// members join, as a Kafka group rebalances.
type natsShare struct {
	t         *NATSTrigger
	b         *natsbridge.Bridge
	d         *deliverer
	leases    *natsbridge.Leases
	invokeCtx context.Context
	held      map[int32]*natsPart
}

// natsPart is a held partition and its consumer.
type natsPart struct {
	rev    uint64
	cancel context.CancelFunc
	stop   chan struct{}
	done   chan struct{}
}

// rebalance renews what is held, releases what is above the fair share and
// acquires what is free below it.
func (s *natsShare) rebalance(ctx context.Context) {
	t := s.t
	log := t.Log.With("function", t.Function, "group", t.Group)
	if err := s.leases.Announce(ctx); err != nil {
		if ctx.Err() == nil {
			log.Warn("cannot renew group membership", "error", err)
		}
		return
	}
	for p, h := range s.held {
		rev, err := s.leases.Renew(ctx, t.Topic, p, h.rev)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Warn("lost the lease of a partition; stopping it", "partition", p, "error", err)
			s.stop(p, false)
			continue
		}
		h.rev = rev
	}
	members, err := s.leases.Members(ctx)
	if err != nil {
		return
	}
	fair := (t.Partitions + members - 1) / members
	for p := int32(t.Partitions) - 1; p >= 0 && len(s.held) > fair; p-- {
		if _, ok := s.held[p]; ok {
			log.Info("releasing a partition to another member", "partition", p, "members", members)
			s.stop(p, true)
		}
	}
	for p := range int32(t.Partitions) {
		if len(s.held) >= fair || ctx.Err() != nil {
			break
		}
		if _, ok := s.held[p]; !ok {
			s.acquire(ctx, p)
		}
	}
}

// acquire takes partition p if it is free and starts consuming it.
func (s *natsShare) acquire(ctx context.Context, p int32) {
	t := s.t
	rev, ok, _, err := s.leases.Acquire(ctx, t.Topic, p)
	if err != nil || !ok {
		return
	}
	cons, next, err := s.b.OpenConsumer(ctx, t.Topic, p, t.Group, t.consumerOptions())
	if err != nil {
		t.Log.Warn("cannot open a consumer; releasing its partition", "function", t.Function, "partition", p, "error", err)
		s.leases.Release(ctx, t.Topic, p, rev) //nolint:errcheck // it expires anyway
		return
	}
	pctx, cancel := context.WithCancel(ctx)
	h := &natsPart{rev: rev, cancel: cancel, stop: make(chan struct{}), done: make(chan struct{})}
	s.held[p] = h
	go func() {
		defer close(h.done)
		t.runPartition(pctx, s.invokeCtx, h.stop, s.d, s.b, p, cons, next)
	}()
}

// stop stops consuming a partition (after the invocation in flight) and,
// when release is set, gives its lease up.
func (s *natsShare) stop(p int32, release bool) {
	h := s.held[p]
	delete(s.held, p)
	close(h.stop)
	h.cancel()
	<-h.done
	if release {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.leases.Release(ctx, s.t.Topic, p, h.rev) //nolint:errcheck // it expires anyway
	}
}

func (s *natsShare) releaseAll() {
	for p := range s.held {
		s.stop(p, true)
	}
}

// runPartition consumes one partition until ctx is done, reopening the
// consumer (from its ack floor) after a failure such as its deletion.
func (t *NATSTrigger) runPartition(ctx, invokeCtx context.Context, stop <-chan struct{}, d *deliverer, b *natsbridge.Bridge,
	p int32, cons jetstream.Consumer, next uint64) {
	for attempt := 0; ; attempt++ {
		if cons != nil {
			err := t.consume(ctx, invokeCtx, stop, d, b, p, cons, next)
			if err == nil || ctx.Err() != nil {
				return
			}
			t.Log.Warn("consumer failed; reopening it", "function", t.Function, "topic", t.Topic, "partition", p, "error", err)
		}
		timer := time.NewTimer(t.Backoff.delay(attempt))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		// Rewind: whatever the failed consumer had delivered and not
		// acknowledged is delivered again, in order.
		o := t.consumerOptions()
		o.Rewind = true
		var err error
		if cons, next, err = b.OpenConsumer(ctx, t.Topic, p, t.Group, o); err != nil {
			cons = nil
			if ctx.Err() == nil {
				t.Log.Warn("cannot open consumer; retrying", "function", t.Function, "topic", t.Topic, "partition", p, "error", err)
			}
		}
	}
}

// consume feeds one partition's loop from a consumer, in stream order from
// next on, and acknowledges what the function processed. It returns nil
// when stopped and an error when the consumer failed or records went
// missing (the consumer must then be rewound).
func (t *NATSTrigger) consume(ctx, invokeCtx context.Context, stop <-chan struct{}, d *deliverer, b *natsbridge.Bridge,
	p int32, cons jetstream.Consumer, next uint64) error {
	sub, err := t.subscribe(cons, p)
	if err != nil {
		return err
	}
	defer sub.close()
	acks := &natsAcks{t: t, p: p, ctx: invokeCtx, acked: next - 1}
	in := make(chan []*stream.Record, t.BatchSize)
	loopCtx, stopLoop := context.WithCancel(ctx)
	defer stopLoop()
	loop := &partition{m: t.Mapping, d: d, in: in, stop: stop, done: acks.done}
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		loop.run(loopCtx, invokeCtx)
	}()
	defer func() {
		stopLoop()
		<-loopDone
	}()
	for {
		select {
		case m := <-sub.msgs:
			rec, err := t.accept(ctx, b, p, m, &next, acks.floor)
			if err != nil {
				return err
			}
			if rec == nil {
				continue
			}
			acks.push(m)
			select {
			case in <- []*stream.Record{rec}:
			case <-loopDone:
				return nil
			case <-ctx.Done():
				return nil
			}
		case err := <-sub.failed:
			return err
		case <-loopDone:
			return nil
		case <-ctx.Done():
			// Stopping: what is left unacknowledged is delivered again
			// from the ack floor next time.
			return nil
		}
	}
}

// natsSub is a consumer's deliveries: messages, and the error that ends it.
type natsSub struct {
	msgs   chan jetstream.Msg
	failed chan error
	quit   chan struct{}
	cc     jetstream.ConsumeContext
}

func (s *natsSub) close() {
	close(s.quit)
	s.cc.Stop()
}

// subscribe starts pulling a partition's consumer, MaxAckPending ahead.
func (t *NATSTrigger) subscribe(cons jetstream.Consumer, p int32) (*natsSub, error) {
	s := &natsSub{msgs: make(chan jetstream.Msg, t.MaxAckPending+t.BatchSize), failed: make(chan error, 1), quit: make(chan struct{})}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case s.msgs <- m:
		case <-s.quit:
		}
	},
		jetstream.PullMaxMessages(min(t.BatchSize, t.MaxAckPending)),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
				select {
				case s.failed <- err:
				default:
				}
				return
			}
			t.Log.Debug("consume", "function", t.Function, "topic", t.Topic, "partition", p, "error", err)
		}))
	if err != nil {
		return nil, err
	}
	s.cc = cc
	return s, nil
}

// natsAcks acknowledges the messages of the records the loop processed:
// the loop reports them in order, so their messages are acknowledged from
// a queue (one ack, for the last: AckAll).
type natsAcks struct {
	t     *NATSTrigger
	p     int32
	ctx   context.Context
	mu    sync.Mutex
	queue []jetstream.Msg
	acked uint64 // every sequence up to here is acknowledged
}

func (a *natsAcks) push(m jetstream.Msg) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.queue = append(a.queue, m)
}

func (a *natsAcks) floor() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.acked
}

func (a *natsAcks) done(processed []*stream.Record) {
	a.mu.Lock()
	last := a.queue[len(processed)-1]
	a.queue = a.queue[len(processed):]
	a.mu.Unlock()
	ctx, cancel := context.WithTimeout(a.ctx, 5*time.Second)
	defer cancel()
	if err := last.DoubleAck(ctx); err != nil {
		// The records are processed; at worst they are delivered again,
		// which the handlers absorb.
		a.t.Log.Warn("ack failed", "function", a.t.Function, "topic", a.t.Topic, "partition", a.p, "error", err)
		return
	}
	if md, err := last.Metadata(); err == nil {
		a.mu.Lock()
		a.acked = md.Sequence.Stream
		a.mu.Unlock()
	}
}

// accept returns the record a delivered message carries when it is the
// partition's next record, nil for a repeat. An error means records were
// skipped that the stream still holds (delivered to a pull request of a
// previous owner, say): the consumer must be rewound.
func (t *NATSTrigger) accept(ctx context.Context, b *natsbridge.Bridge, p int32, m jetstream.Msg, next *uint64, acked func() uint64) (*stream.Record, error) {
	md, err := m.Metadata()
	if err != nil {
		t.Log.Warn("message without JetStream metadata ignored", "subject", m.Subject(), "error", err)
		return nil, nil
	}
	seq := md.Sequence.Stream
	if seq < *next {
		// A repeat of a record held or processed already (its ack wait ran
		// out while the function was retrying).
		if seq <= acked() {
			_ = m.Ack()
		}
		return nil, nil
	}
	if seq > *next {
		first, err := b.FirstSequence(ctx, t.Topic, p)
		if err != nil || first < seq {
			return nil, fmt.Errorf("offsets %d-%d were delivered elsewhere (error: %v)", *next-1, seq-2, err)
		}
		t.Log.Warn("records removed by the stream's limits before they were delivered", "function", t.Function,
			"topic", t.Topic, "partition", p, "from_offset", *next-1, "to_offset", seq-2)
	}
	*next = seq + 1
	rec, err := natsbridge.Record(m, t.Topic, p)
	if err != nil {
		// Hand the value over anyway: the function judges it and
		// dead-letters it if need be, so the partition keeps moving.
		t.Log.Warn("record headers unreadable; delivering its value alone", "topic", t.Topic, "partition", p, "error", err)
		rec = &stream.Record{Topic: t.Topic, Partition: p, Offset: int64(seq) - 1, Timestamp: md.Timestamp, Value: m.Data()}
	}
	return rec, nil
}
