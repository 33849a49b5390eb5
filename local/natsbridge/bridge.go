package natsbridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/votingpipe/voting/shared/config"
	"github.com/votingpipe/voting/shared/election"
)

// Options configure a Bridge.
type Options struct {
	// URL of the NATS server (NATS_URL).
	URL string
	// Prefix starts every stream and subject name (NATS_STREAM_PREFIX).
	Prefix string
	// Partitions of every topic (KAFKA_PARTITIONS, shared by both transports).
	Partitions int
	// MaxAge and MaxBytes limit each stream (NATS_STREAM_MAX_AGE,
	// NATS_STREAM_MAX_BYTES); 0 and -1 mean no limit.
	MaxAge   time.Duration
	MaxBytes int64
	// DuplicateWindow is how long a stream remembers message ids (default
	// 2 minutes, never more than MaxAge).
	DuplicateWindow time.Duration
	// Name identifies the connection to the server.
	Name string
	Log  *slog.Logger
}

// OptionsFrom returns the bridge options of a configuration: the NATS
// part, and the partition count and client name of the Kafka part (both
// transports lay the topics out alike).
func OptionsFrom(n config.NATS, k config.Kafka) Options {
	return Options{
		URL:        n.URL,
		Prefix:     n.StreamPrefix,
		Partitions: k.Partitions,
		MaxAge:     n.StreamMaxAge,
		MaxBytes:   n.StreamMaxBytes,
		Name:       k.ClientID,
	}
}

// DefaultDuplicateWindow is JetStream's own default.
const DefaultDuplicateWindow = 2 * time.Minute

// Bridge is a connection to JetStream laid out as the pipeline's topics.
// It is safe for concurrent use.
type Bridge struct {
	opts Options
	nc   *nats.Conn
	js   jetstream.JetStream
	log  *slog.Logger

	prod producer
}

// Connect connects to the server and checks that it has JetStream.
func Connect(ctx context.Context, o Options) (*Bridge, error) {
	if o.Partitions < 1 {
		return nil, fmt.Errorf("natsbridge: %d partitions, want at least 1", o.Partitions)
	}
	if o.DuplicateWindow <= 0 {
		o.DuplicateWindow = DefaultDuplicateWindow
	}
	if o.MaxAge > 0 && o.DuplicateWindow > o.MaxAge {
		o.DuplicateWindow = o.MaxAge
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = -1
	}
	if o.Name == "" {
		o.Name = "voting-pipeline"
	}
	log := o.Log
	if log == nil {
		log = slog.Default()
	}
	nc, err := nats.Connect(o.URL,
		nats.Name(o.Name),
		nats.Timeout(5*time.Second),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("NATS connection lost; reconnecting", "error", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("NATS reconnected", "server", c.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			log.Warn("NATS error", "subject", subj, "error", err)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", config.RedactedURL(o.URL), err)
	}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(4096),
		jetstream.WithPublishAsyncTimeout(15*time.Second),
	)
	if err != nil {
		nc.Close()
		return nil, err
	}
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := js.AccountInfo(actx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("NATS at %s has no usable JetStream (start nats-server with -js): %w", config.RedactedURL(o.URL), err)
	}
	b := &Bridge{opts: o, nc: nc, js: js, log: log}
	b.prod.init(b)
	return b, nil
}

// Fork returns a bridge like b on a connection of its own, e.g. for one
// function's consumers, so that their deliveries and acknowledgements do
// not queue behind other traffic on b's connection. Close it when done.
func (b *Bridge) Fork(ctx context.Context, name string) (*Bridge, error) {
	o := b.opts
	o.Name = b.opts.Name + "-" + name
	o.Log = b.log
	return Connect(ctx, o)
}

// Close waits (up to 10 s) for records produced and not yet acknowledged,
// then drains the connection and waits until it is closed, so that none of
// its subscriptions outlives it (a consumer's next owner must not share
// deliveries with them).
func (b *Bridge) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.prod.close(ctx); err != nil {
		b.log.Warn("records still unacknowledged when closing the NATS bridge", "error", err)
	}
	if b.nc.IsClosed() {
		return
	}
	closed := make(chan struct{})
	b.nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := b.nc.Drain(); err != nil {
		b.nc.Close()
	}
	select {
	case <-closed:
	case <-ctx.Done():
		b.nc.Close()
	}
}

// JetStream returns the bridge's JetStream context.
func (b *Bridge) JetStream() jetstream.JetStream { return b.js }

// Partitions returns the partition count of every topic.
func (b *Bridge) Partitions() int { return b.opts.Partitions }

// Subject is the subject of a topic-partition: P+topic+"."+partition.
func (b *Bridge) Subject(topic string, partition int32) string {
	return b.opts.Prefix + topic + "." + strconv.Itoa(int(partition))
}

// Stream is the stream of a topic-partition: P+topic+"_"+partition, with
// the characters stream names cannot hold replaced by "_".
func (b *Bridge) Stream(topic string, partition int32) string {
	return safeName(b.opts.Prefix+topic) + "_" + strconv.Itoa(int(partition))
}

// ConsumerName is the durable consumer of a consumer group.
func ConsumerName(group string) string { return safeName(group) }

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '.' || r == '*' || r == '>' || r == '/' || r == '\\' || r <= ' ' || r == 0x7f:
			return '_'
		}
		return r
	}, s)
}

func (b *Bridge) streamConfig(topic string, p int32) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              b.Stream(topic, p),
		Description:       fmt.Sprintf("topic %s partition %d (voting pipeline)", topic, p),
		Subjects:          []string{b.Subject(topic, p)},
		Retention:         jetstream.LimitsPolicy,
		Discard:           jetstream.DiscardOld,
		MaxAge:            b.opts.MaxAge,
		MaxBytes:          b.opts.MaxBytes,
		MaxMsgs:           -1,
		MaxMsgsPerSubject: -1,
		MaxConsumers:      -1,
		Storage:           jetstream.FileStorage,
		Replicas:          1,
		Duplicates:        b.opts.DuplicateWindow,
	}
}

// EnsureStreams creates the streams of every partition of topics, or
// updates their limits to the configured ones. It is idempotent and safe
// to run from several processes at once: when two create a stream at the
// same moment, the server refuses the second (for instance "subjects
// overlap with an existing stream"), which then finds the stream and
// updates it instead.
func (b *Bridge) EnsureStreams(ctx context.Context, topics ...string) error {
	var errs []error
	for _, t := range topics {
		for p := range int32(b.opts.Partitions) {
			if err := b.ensureStream(ctx, b.streamConfig(t, p)); err != nil {
				errs = append(errs, fmt.Errorf("stream %s: %w", b.Stream(t, p), err))
			}
		}
	}
	return errors.Join(errs...)
}

func (b *Bridge) ensureStream(ctx context.Context, cfg jetstream.StreamConfig) error {
	var err error
	for attempt := range 5 {
		if _, err = b.js.CreateOrUpdateStream(ctx, cfg); err == nil {
			return nil
		}
		var apiErr *jetstream.APIError
		if !errors.As(err, &apiErr) || ctx.Err() != nil {
			return err
		}
		// Lost a race with another process creating it: look again.
		t := time.NewTimer(time.Duration(20*(attempt+1)) * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	return err
}

// Carrier identifies the bridge's broker for an election: the server and
// the stream prefix.
func (b *Bridge) Carrier(context.Context) (election.Carrier, error) {
	return election.Carrier{Transport: "nats", Broker: fmt.Sprintf("server %s, stream prefix %q",
		config.RedactedURL(b.opts.URL), b.opts.Prefix)}, nil
}

// DeleteStreams deletes the streams of topics (tests, resets); missing ones
// are skipped.
func (b *Bridge) DeleteStreams(ctx context.Context, topics ...string) error {
	var errs []error
	for _, t := range topics {
		for p := range int32(b.opts.Partitions) {
			if err := b.js.DeleteStream(ctx, b.Stream(t, p)); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Ends returns the end offset of every partition of topic: the last stream
// sequence, since offset = sequence - 1.
func (b *Bridge) Ends(ctx context.Context, topic string) (map[int32]int64, error) {
	out := make(map[int32]int64, b.opts.Partitions)
	for p := range int32(b.opts.Partitions) {
		s, err := b.js.Stream(ctx, b.Stream(topic, p))
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", b.Stream(topic, p), err)
		}
		out[p] = int64(s.CachedInfo().State.LastSeq)
	}
	return out, nil
}

// ConsumerOptions tune the durable consumers of a group.
type ConsumerOptions struct {
	// MaxAckPending bounds the records delivered and not yet acknowledged
	// (default 10,000).
	MaxAckPending int
	// AckWait is how long the server waits for an ack before delivering a
	// record again (default 30 s). The harness skips such repeats of
	// records it still holds, so it only bounds how long a record
	// delivered to a consumer that vanished waits before it is delivered
	// again.
	AckWait time.Duration
	// Rewind restarts an existing consumer from its ack floor even when it
	// has nothing unacknowledged (see OpenConsumer).
	Rewind bool
}

// OpenConsumer returns group's durable consumer of a topic-partition,
// creating it to start at the beginning of the stream when missing, and
// the stream sequence its first delivery will have (at least).
//
// A consumer left with deliveries not yet acknowledged (its previous owner
// stopped or died mid-batch) is rewound: deleted and created again to
// start just after its ack floor, so delivery resumes in order from the
// first record not processed, as a Kafka group resumes from its committed
// offset. Only one process may consume a group's partition at a time.
func (b *Bridge) OpenConsumer(ctx context.Context, topic string, p int32, group string, o ConsumerOptions) (jetstream.Consumer, uint64, error) {
	if o.MaxAckPending <= 0 {
		o.MaxAckPending = 10_000
	}
	if o.AckWait <= 0 {
		o.AckWait = 30 * time.Second
	}
	stream, name := b.Stream(topic, p), ConsumerName(group)
	want := jetstream.ConsumerConfig{
		Durable:       name,
		Description:   fmt.Sprintf("consumer group %s on %s partition %d", group, topic, p),
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckAllPolicy,
		AckWait:       o.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: o.MaxAckPending,
		ReplayPolicy:  jetstream.ReplayInstantPolicy,
	}
	c, err := b.js.Consumer(ctx, stream, name)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		c, err = b.js.CreateConsumer(ctx, stream, want)
		if errors.Is(err, jetstream.ErrConsumerExists) {
			c, err = b.js.Consumer(ctx, stream, name)
		}
		if err != nil {
			return nil, 0, fmt.Errorf("create consumer %s on %s: %w", name, stream, err)
		}
		return c, c.CachedInfo().AckFloor.Stream + 1, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("consumer %s on %s: %w", name, stream, err)
	}
	info := c.CachedInfo()
	start := info.AckFloor.Stream + 1
	if o.Rewind || info.NumAckPending > 0 || info.Config.AckPolicy != jetstream.AckAllPolicy {
		b.log.Info("rewinding consumer to its ack floor", "stream", stream, "consumer", name,
			"from_offset", start-1, "unacknowledged", info.NumAckPending)
		if err := b.js.DeleteConsumer(ctx, stream, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil, 0, fmt.Errorf("rewind consumer %s on %s: %w", name, stream, err)
		}
		want.DeliverPolicy, want.OptStartSeq = jetstream.DeliverByStartSequencePolicy, start
		c, err = b.js.CreateConsumer(ctx, stream, want)
		if err != nil {
			return nil, 0, fmt.Errorf("rewind consumer %s on %s: %w", name, stream, err)
		}
		return c, start, nil
	}
	if info.Config.MaxAckPending != want.MaxAckPending || info.Config.AckWait != want.AckWait {
		upd := info.Config
		upd.MaxAckPending, upd.AckWait = want.MaxAckPending, want.AckWait
		if c, err = b.js.UpdateConsumer(ctx, stream, upd); err != nil {
			return nil, 0, fmt.Errorf("update consumer %s on %s: %w", name, stream, err)
		}
	}
	return c, start, nil
}

// FirstSequence returns the first sequence a topic-partition's stream still
// holds (older ones were removed by its limits).
func (b *Bridge) FirstSequence(ctx context.Context, topic string, p int32) (uint64, error) {
	s, err := b.js.Stream(ctx, b.Stream(topic, p))
	if err != nil {
		return 0, err
	}
	return s.CachedInfo().State.FirstSeq, nil
}

// Lag returns how many records of a topic-partition group has not yet
// acknowledged; ok is false when the group has no consumer there yet.
func (b *Bridge) Lag(ctx context.Context, topic string, p int32, group string) (lag int64, ok bool, err error) {
	c, err := b.js.Consumer(ctx, b.Stream(topic, p), ConsumerName(group))
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	info := c.CachedInfo()
	return int64(info.NumPending) + int64(info.NumAckPending), true, nil
}

// producer tracks the records Produce has sent and not yet seen acknowledged.
type producer struct {
	b      *Bridge
	mu     sync.Mutex
	n      int
	idle   chan struct{} // closed when n drops to 0
	closed bool
	acks   chan produced
	done   chan struct{}
}
