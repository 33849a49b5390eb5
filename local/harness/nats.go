package harness

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/votingpipe/voting/shared/election"
	"github.com/votingpipe/voting/shared/kafkaevent"
	"github.com/votingpipe/voting/shared/natsbridge"
	"github.com/votingpipe/voting/shared/pipeline"
)

// Transports are the values of --transport.
var Transports = []string{"kafka", "nats"}

// SelectTransport switches env to the named transport: "kafka" (the
// default; nothing to do) or "nats" (UseNATS). The returned function
// releases what it opened.
func SelectTransport(ctx context.Context, env *Env, name string) (func(), error) {
	switch name {
	case "", "kafka":
		return func() {}, nil
	case "nats":
		return UseNATS(ctx, env)
	}
	return nil, fmt.Errorf("--transport: %q is not one of %s", name, strings.Join(Transports, ", "))
}

// UseNATS switches env to NATS JetStream (--transport nats): it connects to
// NATS_URL, creates the streams of every topic if missing, makes the
// functions publish and register produce through JetStream, and feeds
// their triggers from it. Call it before Run; the returned function closes
// the connection (after what was produced is acknowledged).
func UseNATS(ctx context.Context, env *Env) (func(), error) {
	o := natsbridge.OptionsFrom(env.Config)
	o.Log = env.Log
	b, err := natsbridge.Connect(ctx, o)
	if err != nil {
		return nil, err
	}
	if err := b.EnsureStreams(ctx, env.Config.Topics.All()...); err != nil {
		b.Close()
		return nil, err
	}
	t := &natsTransport{env: env, bridge: b, groups: map[string][]string{}}
	for _, tr := range pipeline.Triggers {
		t.groups[tr.Group] = tr.Topics(env.Config.Topics)
	}
	env.Deps.Publisher = b
	env.Deps.Producer = b
	env.Deps.Positions = b
	env.SetTransport(t)
	return b.Close, nil
}

// natsTransport is the NATS JetStream transport of an Env.
type natsTransport struct {
	env    *Env
	bridge *natsbridge.Bridge
	groups map[string][]string // consumer group -> topics
}

// Bridge returns the JetStream bridge of env when it uses the NATS
// transport.
func (e *Env) Bridge() (*natsbridge.Bridge, bool) {
	if t, ok := e.transport.(*natsTransport); ok {
		return t.bridge, true
	}
	return nil, false
}

func (n *natsTransport) meta() kafkaevent.Meta {
	m := kafkaevent.Meta{Source: kafkaevent.SourceSelfManaged}
	if u, err := url.Parse(n.env.Config.NATSURL); err == nil {
		m.BootstrapServers = u.Host
	}
	return m
}

func (n *natsTransport) Trigger(t pipeline.Trigger, o TriggerOptions, inv Invoker, stats *Stats) (Runner, error) {
	return &NATSTrigger{
		Function:  t.Function,
		Topics:    t.Topics(n.env.Config.Topics),
		Group:     t.Group,
		BatchSize: o.BatchSize,
		Window:    t.Window,
		Invoker:   inv,
		Meta:      n.meta(),
		LeaseTTL:  o.LeaseTTL,
		Bridge:    n.bridge,
		GiveUp:    n.env.GiveUp(t),
		Log:       n.env.Log,
		Stats:     stats,
	}, nil
}

func (n *natsTransport) Position(ctx context.Context, groups []string) (int64, map[string]int64, bool, error) {
	ends, err := n.bridge.Ends(ctx, n.env.Config.Topics.Votes)
	if err != nil {
		return 0, nil, false, err
	}
	var cast int64
	for _, e := range ends {
		cast += e
	}
	lag := map[string]int64{}
	caught := true
	for _, g := range groups {
		var total int64
		for _, topic := range n.groups[g] {
			for p := range int32(n.bridge.Partitions()) {
				l, ok, err := n.bridge.Lag(ctx, topic, p, g)
				if err != nil {
					return cast, nil, false, err
				}
				if !ok {
					caught = false
				}
				total += l
			}
		}
		lag[g] = total
		if total != 0 {
			caught = false
		}
	}
	return cast, lag, caught, nil
}

func (n *natsTransport) VoteEnds(ctx context.Context) (map[int32]int64, error) {
	return n.bridge.Ends(ctx, n.env.Config.Topics.Votes)
}

func (n *natsTransport) Carrier(ctx context.Context) (election.Carrier, error) {
	return n.bridge.Carrier(ctx)
}

// NATSTrigger feeds one function from JetStream with the semantics of
// KafkaTrigger (and of Lambda's Kafka event-source mapping): one durable
// consumer per topic-partition stream, one worker per partition (at most
// one invocation per partition at a time, in offset order), batches of up
// to BatchSize records gathered for at most Window, delivered as the same
// events.KafkaEvent JSON, acknowledged (cumulatively, like a Kafka commit)
// only once the function processed them, retried with backoff otherwise.
// Several triggers of one group (in one or several processes) share its
// partitions: each holds a fair share through leases (natsbridge.Leases)
// and hands partitions over when members come and go.
type NATSTrigger struct {
	Function  string
	Topics    []string
	Group     string
	BatchSize int
	Window    time.Duration
	Invoker   Invoker
	Meta      kafkaevent.Meta
	Bridge    *natsbridge.Bridge
	Backoff   Backoff
	// GiveUp, when set, ends the retries of a failed batch (nil: forever).
	GiveUp *GiveUp
	// MaxAckPending bounds the records fetched ahead of the function per
	// partition (default 3 x BatchSize).
	MaxAckPending int
	// Owner names this trigger among the group's members (default: host,
	// pid and a random suffix); LeaseTTL is how long it holds a partition
	// without renewing it (default natsbridge.DefaultLeaseTTL). Several
	// harnesses on one group share its partitions through these leases.
	Owner    string
	LeaseTTL time.Duration
	Log      *slog.Logger
	Stats    *Stats
	// Limiter, when set, is waited on before each invocation with the batch
	// size.
	Limiter func(ctx context.Context, n int) error
}

// Run consumes until ctx is done, then lets the invocations in flight
// finish and acknowledges what they processed.
func (t *NATSTrigger) Run(ctx context.Context) error {
	if t.Stats == nil {
		t.Stats = &Stats{}
	}
	if t.Log == nil {
		t.Log = slog.Default()
	}
	if t.Backoff == (Backoff{}) {
		t.Backoff = DefaultBackoff
	}
	if t.BatchSize <= 0 {
		t.BatchSize = 100
	}
	if t.MaxAckPending <= 0 {
		t.MaxAckPending = 3 * t.BatchSize
	}
	d := &deliverer{name: t.Function, invoker: t.Invoker, meta: t.Meta, backoff: t.Backoff, giveUp: t.GiveUp, stats: t.Stats, log: t.Log}
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
	workerCtx, cancelWorkers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWorkers()
	s := &natsShare{t: t, b: b, d: d, leases: leases, workerCtx: workerCtx, held: map[tp]*natsPart{}}
	for _, topic := range t.Topics {
		for p := range int32(t.Bridge.Partitions()) {
			s.parts = append(s.parts, tp{topic, p})
		}
	}
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
	// Stopping: invocations in flight finish (their work is idempotent
	// either way), what they processed is acknowledged, and the partitions
	// are released for the other members.
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

// natsShare is a trigger's share of its consumer group's partitions: it
// holds a fair share of them (partitions / members, rounded up) through
// leases, consuming each it holds, and gives up those above its share when
// members join, as a Kafka group rebalances.
type natsShare struct {
	t         *NATSTrigger
	b         *natsbridge.Bridge
	d         *deliverer
	leases    *natsbridge.Leases
	workerCtx context.Context
	parts     []tp
	held      map[tp]*natsPart
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
	log := s.t.Log.With("function", s.t.Function, "group", s.t.Group)
	if err := s.leases.Announce(ctx); err != nil {
		if ctx.Err() == nil {
			log.Warn("cannot renew group membership", "error", err)
		}
		return
	}
	for k, h := range s.held {
		rev, err := s.leases.Renew(ctx, k.topic, k.partition, h.rev)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Warn("lost the lease of a partition; stopping it", "topic", k.topic, "partition", k.partition, "error", err)
			s.stop(k, false)
			continue
		}
		h.rev = rev
	}
	members, err := s.leases.Members(ctx)
	if err != nil {
		return
	}
	fair := (len(s.parts) + members - 1) / members
	for i := len(s.parts) - 1; i >= 0 && len(s.held) > fair; i-- {
		if _, ok := s.held[s.parts[i]]; ok {
			log.Info("releasing a partition to another member", "topic", s.parts[i].topic, "partition", s.parts[i].partition, "members", members)
			s.stop(s.parts[i], true)
		}
	}
	for _, k := range s.parts {
		if len(s.held) >= fair || ctx.Err() != nil {
			break
		}
		if _, ok := s.held[k]; ok {
			continue
		}
		rev, ok, _, err := s.leases.Acquire(ctx, k.topic, k.partition)
		if err != nil || !ok {
			continue
		}
		cons, next, err := s.b.OpenConsumer(ctx, k.topic, k.partition, s.t.Group, s.t.consumerOptions())
		if err != nil {
			log.Warn("cannot open a consumer; releasing its partition", "topic", k.topic, "partition", k.partition, "error", err)
			s.leases.Release(ctx, k.topic, k.partition, rev) //nolint:errcheck // it expires anyway
			continue
		}
		pctx, cancel := context.WithCancel(ctx)
		h := &natsPart{rev: rev, cancel: cancel, stop: make(chan struct{}), done: make(chan struct{})}
		s.held[k] = h
		go func() {
			defer close(h.done)
			s.t.runPartition(pctx, s.workerCtx, h.stop, s.d, s.b, k.topic, k.partition, cons, next)
		}()
	}
}

// stop stops consuming a partition (after the invocation in flight) and,
// when release is set, gives its lease up.
func (s *natsShare) stop(k tp, release bool) {
	h := s.held[k]
	delete(s.held, k)
	close(h.stop)
	h.cancel()
	<-h.done
	if release {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.leases.Release(ctx, k.topic, k.partition, h.rev) //nolint:errcheck // it expires anyway
	}
}

func (s *natsShare) releaseAll() {
	for k := range s.held {
		s.stop(k, true)
	}
}

func (t *NATSTrigger) consumerOptions() natsbridge.ConsumerOptions {
	return natsbridge.ConsumerOptions{MaxAckPending: t.MaxAckPending}
}

// runPartition consumes one partition until ctx is done, reopening the
// consumer (from its ack floor) after a failure such as its deletion.
func (t *NATSTrigger) runPartition(ctx, workerCtx context.Context, stop <-chan struct{}, d *deliverer, b *natsbridge.Bridge,
	topic string, p int32, cons jetstream.Consumer, next uint64) {
	for attempt := 0; ; attempt++ {
		if cons != nil {
			err := t.consume(ctx, workerCtx, stop, d, b, topic, p, cons, next)
			if err == nil || ctx.Err() != nil {
				return
			}
			t.Log.Warn("consumer failed; reopening it", "function", t.Function, "topic", topic, "partition", p, "error", err)
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
		if cons, next, err = b.OpenConsumer(ctx, topic, p, t.Group, o); err != nil {
			cons = nil
			if ctx.Err() == nil {
				t.Log.Warn("cannot open consumer; retrying", "function", t.Function, "topic", topic, "partition", p, "error", err)
			}
		}
	}
}

type natsEntry struct {
	rec *kgo.Record
	msg jetstream.Msg
	seq uint64
}

// consume runs one partition's worker: it gathers batches in stream order
// from next on, delivers them and acknowledges what was processed. It
// returns nil when stopped and an error when the consumer failed.
func (t *NATSTrigger) consume(ctx, workerCtx context.Context, stop <-chan struct{}, d *deliverer, b *natsbridge.Bridge,
	topic string, p int32, cons jetstream.Consumer, next uint64) error {
	in := make(chan jetstream.Msg, t.MaxAckPending+t.BatchSize)
	quit := make(chan struct{})
	failed := make(chan error, 1)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case in <- m:
		case <-quit:
		}
	},
		jetstream.PullMaxMessages(min(t.BatchSize, t.MaxAckPending)),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
				select {
				case failed <- err:
				default:
				}
				return
			}
			t.Log.Debug("consume", "function", t.Function, "topic", topic, "partition", p, "error", err)
		}))
	if err != nil {
		return err
	}
	defer func() {
		close(quit)
		cc.Stop()
	}()

	acked := next - 1 // every sequence up to here is acknowledged
	ack := func(e natsEntry) {
		actx, cancel := context.WithTimeout(workerCtx, 5*time.Second)
		defer cancel()
		if err := e.msg.DoubleAck(actx); err != nil {
			// The records are processed; at worst they are delivered
			// again, which the handlers absorb.
			t.Log.Warn("ack failed", "function", t.Function, "topic", topic, "partition", p, "offset", e.rec.Offset, "error", err)
			return
		}
		acked = e.seq
	}
	var batch []natsEntry
	// accept takes a delivered message into the batch when it is the next
	// record of the partition. An error means records were skipped that
	// the stream still holds (delivered to a pull request of a previous
	// owner, say): the consumer must be rewound.
	accept := func(m jetstream.Msg) error {
		md, err := m.Metadata()
		if err != nil {
			t.Log.Warn("message without JetStream metadata ignored", "subject", m.Subject(), "error", err)
			return nil
		}
		seq := md.Sequence.Stream
		if seq < next {
			// A repeat of a record held or processed already (its ack wait
			// ran out while the function was retrying).
			if seq <= acked {
				_ = m.Ack()
			}
			return nil
		}
		if seq > next {
			first, err := b.FirstSequence(ctx, topic, p)
			if err != nil || first < seq {
				return fmt.Errorf("offsets %d-%d were delivered elsewhere (error: %v)", next-1, seq-2, err)
			}
			t.Log.Warn("records removed by the stream's limits before they were delivered", "function", t.Function,
				"topic", topic, "partition", p, "from_offset", next-1, "to_offset", seq-2)
		}
		next = seq + 1
		rec, err := natsbridge.Record(m, topic, p)
		if err != nil {
			// Hand the value over anyway: the function judges it and
			// dead-letters it if need be, so the partition keeps moving.
			t.Log.Warn("record headers unreadable; delivering its value alone", "topic", topic, "partition", p, "error", err)
			rec = &kgo.Record{Topic: topic, Partition: p, Offset: int64(seq) - 1, Timestamp: md.Timestamp, Value: m.Data()}
		}
		batch = append(batch, natsEntry{rec: rec, msg: m, seq: seq})
		return nil
	}

	for {
		if ctx.Err() != nil {
			// Stopping: what is left unacknowledged is delivered again
			// from the ack floor next time.
			return nil
		}
		if len(batch) == 0 {
			select {
			case m := <-in:
				if err := accept(m); err != nil {
					return err
				}
				continue
			case err := <-failed:
				return err
			case <-ctx.Done():
				return nil
			}
		}
		if t.Window > 0 && len(batch) < t.BatchSize {
			timer := time.NewTimer(t.Window)
		gather:
			for len(batch) < t.BatchSize {
				select {
				case m := <-in:
					if err := accept(m); err != nil {
						timer.Stop()
						return err
					}
				case <-timer.C:
					break gather
				case <-ctx.Done():
					timer.Stop()
					return nil
				}
			}
			timer.Stop()
		} else {
		drain:
			for len(batch) < t.BatchSize {
				select {
				case m := <-in:
					if err := accept(m); err != nil {
						return err
					}
				default:
					break drain
				}
			}
		}
		n := min(len(batch), t.BatchSize)
		if t.Limiter != nil {
			if err := t.Limiter(ctx, n); err != nil {
				return nil
			}
		}
		recs := make([]*kgo.Record, n)
		for i := range n {
			recs[i] = batch[i].rec
		}
		processed := 0
		err := d.deliver(workerCtx, stop, recs, func(ok []*kgo.Record) {
			processed += len(ok)
			ack(batch[processed-1])
		})
		if err != nil {
			return nil
		}
		batch = batch[n:]
	}
}

var _ Transport = (*natsTransport)(nil)
