package harness

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/votingpipe/voting/shared/kafkaevent"
)

// KafkaTrigger feeds one function from Kafka as an MSK event-source mapping
// does: one consumer group per function, one worker per assigned partition
// (so at most one invocation per partition at a time and per-partition order
// is kept), batches of up to BatchSize records gathered for at most Window,
// offsets committed only for records the function processed.
type KafkaTrigger struct {
	// Function names the function in logs and statistics.
	Function string
	Topics   []string
	Group    string
	// BatchSize and Window are the mapping's BatchSize and
	// MaximumBatchingWindowInSeconds.
	BatchSize int
	Window    time.Duration
	Invoker   Invoker
	Meta      kafkaevent.Meta
	// ClientOpts reach the brokers (seed brokers, TLS, SASL).
	ClientOpts []kgo.Opt
	Backoff    Backoff
	// GiveUp, when set, ends the retries of a failed batch (nil: forever).
	GiveUp *GiveUp
	// CommitInterval is how often processed offsets are committed (default
	// 500 ms); they are also committed on revocation and shutdown.
	CommitInterval time.Duration
	Log            *slog.Logger
	Stats          *Stats
	// Limiter, when set, is waited on before each invocation with the batch
	// size (e.g. to pace the pipeline).
	Limiter func(ctx context.Context, n int) error

	mu      sync.Mutex
	workers map[tp]*worker
}

type tp struct {
	topic     string
	partition int32
}

type worker struct {
	in     chan []*kgo.Record
	stop   chan struct{} // closed on revocation: finish the invocation in flight, start no more
	cancel context.CancelFunc
	done   chan struct{}
}

// Run consumes until ctx is done, then commits what was processed and leaves
// the group.
func (t *KafkaTrigger) Run(ctx context.Context) error {
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
	if t.CommitInterval <= 0 {
		t.CommitInterval = 500 * time.Millisecond
	}
	t.CommitInterval = max(t.CommitInterval, 100*time.Millisecond) // franz-go's minimum
	t.workers = map[tp]*worker{}
	d := &deliverer{name: t.Function, invoker: t.Invoker, meta: t.Meta, backoff: t.Backoff, giveUp: t.GiveUp, stats: t.Stats, log: t.Log}

	opts := append([]kgo.Opt{}, t.ClientOpts...)
	opts = append(opts,
		kgo.ConsumerGroup(t.Group),
		kgo.ConsumeTopics(t.Topics...),
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
			select {
			case w.in <- p.Records:
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
	w := &worker{in: make(chan []*kgo.Record, 1), stop: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	t.workers[k] = w
	go t.runWorker(wctx, cl, d, w)
	return w
}

// runWorker gathers batches of one partition and delivers them in order.
func (t *KafkaTrigger) runWorker(ctx context.Context, cl *kgo.Client, d *deliverer, w *worker) {
	defer close(w.done)
	var pending []*kgo.Record
	for {
		if len(pending) == 0 {
			select {
			case recs := <-w.in:
				pending = append(pending, recs...)
			case <-w.stop:
				return
			case <-ctx.Done():
				return
			}
		}
		// Gather until the batch is full or the window closes.
		if t.Window > 0 && len(pending) < t.BatchSize {
			timer := time.NewTimer(t.Window)
		gather:
			for len(pending) < t.BatchSize {
				select {
				case recs := <-w.in:
					pending = append(pending, recs...)
				case <-timer.C:
					break gather
				case <-w.stop:
					timer.Stop()
					return
				case <-ctx.Done():
					timer.Stop()
					return
				}
			}
			timer.Stop()
		} else {
			// Window 0: take whatever else has already arrived.
		drain:
			for len(pending) < t.BatchSize {
				select {
				case recs := <-w.in:
					pending = append(pending, recs...)
				default:
					break drain
				}
			}
		}
		n := min(len(pending), t.BatchSize)
		batch := pending[:n:n]
		if t.Limiter != nil {
			if err := t.Limiter(ctx, n); err != nil {
				return
			}
		}
		err := d.deliver(ctx, w.stop, batch, func(ok []*kgo.Record) { cl.MarkCommitRecords(ok...) })
		if err != nil {
			return
		}
		pending = pending[n:]
	}
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
