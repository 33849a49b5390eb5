package trigger

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/votingpipe/voting/shared/broker"
	"github.com/votingpipe/voting/shared/stream"
)

// KafkaTrigger feeds one function from Kafka as an MSK event-source mapping
// does: one consumer group per function, one worker per assigned partition,
// offsets committed only for records the function processed, partitions
// handed over on rebalance after the invocation in flight.
type KafkaTrigger struct {
	Mapping
	// ClientOpts reach the brokers (seed brokers, TLS, SASL).
	ClientOpts []kgo.Opt
	// CommitInterval is how often processed offsets are committed (default
	// 500 ms); they are also committed on revocation and shutdown.
	CommitInterval time.Duration

	mu      sync.Mutex
	workers map[tp]*worker
}

type tp struct {
	topic     string
	partition int32
}

type worker struct {
	in     chan []*stream.Record
	stop   chan struct{} // closed on revocation: finish the invocation in flight, start no more
	cancel context.CancelFunc
	done   chan struct{}
	// fetched are the franz-go records handed to the loop and not yet
	// processed, in order: the loop reports processed ones as stream
	// records, and the offsets are committed from these.
	mu      sync.Mutex
	fetched []*kgo.Record
}

// Run consumes until ctx is done, then commits what was processed and leaves
// the group.
func (t *KafkaTrigger) Run(ctx context.Context) error {
	t.Mapping = t.Mapping.withDefaults()
	if t.CommitInterval <= 0 {
		t.CommitInterval = 500 * time.Millisecond
	}
	t.CommitInterval = max(t.CommitInterval, 100*time.Millisecond) // franz-go's minimum
	t.workers = map[tp]*worker{}
	d := t.deliverer()

	opts := append([]kgo.Opt{}, t.ClientOpts...)
	opts = append(opts,
		kgo.ConsumerGroup(t.Group),
		kgo.ConsumeTopics(t.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), // StartingPosition TRIM_HORIZON
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(t.CommitInterval),
		kgo.OnPartitionsRevoked(t.revoked),
		kgo.OnPartitionsLost(t.lost),
		// Small fetches bound what a backlog can put in memory: a partition
		// holds at most its queue (one fetch), the fetch the poll loop is
		// handing over, and the batch being invoked. 2 MiB of compressed
		// records is about 3,000 votes. A fetch must have room for every
		// partition (6 by default), or some partitions wait while others are
		// fed, and fewer invocations run at once.
		kgo.FetchMaxBytes(32<<20),
		kgo.FetchMaxPartitionBytes(2<<20),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()

	workerCtx, cancelWorkers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWorkers()

	for {
		fetches := cl.PollRecords(ctx, 0)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			break
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				t.Log.Warn("fetch error", "function", t.Function, "topic", topic, "partition", p, "error", err)
			}
		})
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) == 0 {
				return
			}
			w := t.worker(workerCtx, cl, d, p.Topic, p.Partition)
			recs := make([]*stream.Record, len(p.Records))
			for i, r := range p.Records {
				recs[i] = broker.FromKgo(r)
			}
			w.mu.Lock()
			w.fetched = append(w.fetched, p.Records...)
			w.mu.Unlock()
			select {
			case w.in <- recs:
			case <-w.stop:
				// Revoked meanwhile: the new owner will fetch these again.
			case <-ctx.Done():
			}
		})
	}

	// Shutting down: let invocations in flight finish (their work is
	// idempotent either way), commit, leave the group.
	t.stopWorkers(nil, false)
	commitCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.CommitMarkedOffsets(commitCtx); err != nil {
		t.Log.Warn("final commit failed; the last batches will be redelivered", "function", t.Function, "error", err)
	}
	return nil
}

func (t *KafkaTrigger) worker(ctx context.Context, cl *kgo.Client, d *deliverer, topic string, partition int32) *worker {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := tp{topic, partition}
	if w := t.workers[k]; w != nil {
		return w
	}
	wctx, cancel := context.WithCancel(ctx)
	w := &worker{in: make(chan []*stream.Record, 1), stop: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	t.workers[k] = w
	go t.runWorker(wctx, cl, d, w)
	return w
}

// runWorker runs the partition's batching and delivery loop, marking the
// offsets of what the function processed for the next commit.
func (t *KafkaTrigger) runWorker(ctx context.Context, cl *kgo.Client, d *deliverer, w *worker) {
	defer close(w.done)
	p := &partition{m: t.Mapping, d: d, in: w.in, stop: w.stop, done: func(processed []*stream.Record) {
		w.mu.Lock()
		last := w.fetched[len(processed)-1]
		w.fetched = w.fetched[len(processed):]
		w.mu.Unlock()
		cl.MarkCommitRecords(last)
	}}
	p.run(ctx, ctx)
}

// revoked stops the workers of revoked partitions (after their invocation in
// flight) and commits what they processed, so the next owner starts there.
func (t *KafkaTrigger) revoked(ctx context.Context, cl *kgo.Client, parts map[string][]int32) {
	t.stopWorkers(parts, false)
	if err := cl.CommitMarkedOffsets(ctx); err != nil {
		t.Log.Warn("commit on revoke failed; records will be redelivered", "function", t.Function, "error", err)
	}
}

// lost abandons the workers of lost partitions at once: their commits would fail.
func (t *KafkaTrigger) lost(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
	t.stopWorkers(parts, true)
}

// stopWorkers stops the workers of parts (all when nil) and waits for them.
func (t *KafkaTrigger) stopWorkers(parts map[string][]int32, abort bool) {
	t.mu.Lock()
	var stopping []*worker
	for k, w := range t.workers {
		if parts != nil && !contains(parts[k.topic], k.partition) {
			continue
		}
		close(w.stop)
		if abort {
			w.cancel()
		}
		stopping = append(stopping, w)
		delete(t.workers, k)
	}
	t.mu.Unlock()
	for _, w := range stopping {
		<-w.done
		w.cancel()
	}
}

func contains(s []int32, v int32) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
