package trigger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/votingpipe/voting/shared/kafkaevent"
	"github.com/votingpipe/voting/shared/stream"
)

// Invoker invokes a function with a JSON payload and returns its JSON
// response. lambda.Handler (what lambda.NewHandler returns) is one; a client
// of the Lambda Invoke API is another. A function error must come back as an
// error.
type Invoker interface {
	Invoke(ctx context.Context, payload []byte) ([]byte, error)
}

// Backoff is the retry schedule of failed batches: exponential from Min to
// Max with full jitter. Retries never stop (Lambda's MaximumRetryAttempts -1),
// so a partition waits out a transient fault rather than skipping records.
type Backoff struct {
	Min, Max time.Duration
}

// DefaultBackoff retries after 100 ms, doubling up to 5 s.
var DefaultBackoff = Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}

func (b Backoff) delay(attempt int) time.Duration {
	d := b.Min << min(attempt, 20)
	if d > b.Max || d <= 0 {
		d = b.Max
	}
	return d/2 + rand.N(d/2+1)
}

// Stats count what a trigger has done; safe for concurrent use.
type Stats struct {
	Invocations atomic.Int64 // handler invocations, including retries
	Failures    atomic.Int64 // failed invocations (errors and partial failures)
	Records     atomic.Int64 // records processed successfully
	GivenUp     atomic.Int64 // records of batches given up after their retries
	lastDone    atomic.Int64 // unix nanoseconds of the last records processed

	mu      sync.Mutex
	summary map[string]int64 // sums of the responses' summary fields
}

// LastProcessed returns when records were last processed (zero: never).
func (s *Stats) LastProcessed() time.Time {
	if n := s.lastDone.Load(); n > 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// Add adds n to the named summary counter.
func (s *Stats) Add(name string, n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.summary == nil {
		s.summary = map[string]int64{}
	}
	s.summary[name] += n
}

// Get returns the named summary counter (e.g. "counted", "votes").
func (s *Stats) Get(name string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.summary[name]
}

// GiveUp ends the retries of a failed batch, as an event-source mapping
// with a finite MaximumRetryAttempts does: after After retries the batch is
// recorded at Destination (when set; the mapping's OnFailure destination)
// and the partition moves past it. A trigger without a GiveUp retries a
// failed batch forever (MaximumRetryAttempts -1), so a partition waits out
// a fault rather than skipping records.
type GiveUp struct {
	After       int
	Destination FailedBatches
}

// FailedBatches is a failure destination: where a batch that failed every
// retry is recorded (FailedBatchesQueue in AWS).
type FailedBatches interface {
	Record(ctx context.Context, f FailedBatch) error
}

// FailedBatch describes a batch that failed every retry, as Lambda's
// on-failure record for a Kafka event source does: the records themselves
// stay on the topic.
type FailedBatch struct {
	Function    string    `json:"function"`
	Condition   string    `json:"condition"`
	Attempts    int       `json:"approximateInvokeCount"`
	Error       string    `json:"error"`
	Topic       string    `json:"topic"`
	Partition   int32     `json:"partition"`
	FirstOffset int64     `json:"firstOffset"`
	LastOffset  int64     `json:"lastOffset"`
	BatchSize   int       `json:"batchSize"`
	At          time.Time `json:"timestamp"`
}

// deliverer invokes a function with batches of one partition.
type deliverer struct {
	name    string
	invoker Invoker
	meta    kafkaevent.Meta
	backoff Backoff
	giveUp  *GiveUp
	stats   *Stats
	log     *slog.Logger
}

// errStopped means delivery was abandoned because the partition was revoked
// or the harness is stopping; the records are left uncommitted.
var errStopped = errors.New("delivery stopped")

// deliver invokes the function with recs (one partition, in offset order)
// until every record is processed, calling done with each prefix that
// succeeded. It gives up only when ctx is done or stop is closed.
func (d *deliverer) deliver(ctx context.Context, stop <-chan struct{}, recs []*stream.Record, done func([]*stream.Record)) error {
	var lastErr error
	for attempt := 0; len(recs) > 0; attempt++ {
		if d.giveUp != nil && attempt > d.giveUp.After {
			return d.skip(ctx, recs, attempt, lastErr, done)
		}
		if attempt > 0 {
			t := time.NewTimer(d.backoff.delay(attempt - 1))
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-stop:
				t.Stop()
				return errStopped
			}
		}
		size := 256
		for _, r := range recs {
			size += 200 + (len(r.Key)+len(r.Value))*4/3
		}
		payload := kafkaevent.AppendJSON(make([]byte, 0, size), d.meta, recs)
		d.stats.Invocations.Add(1)
		out, err := d.invoker.Invoke(ctx, payload)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			d.stats.Failures.Add(1)
			lastErr = err
			d.log.Warn("invocation failed; retrying the batch", "function", d.name,
				"partition", recs[0].Partition, "from_offset", recs[0].Offset, "records", len(recs),
				"attempt", attempt+1, "error", err)
			continue
		}
		var resp kafkaevent.Response
		if len(out) > 0 && out[0] == '{' {
			if err := json.Unmarshal(out, &resp); err != nil {
				d.log.Warn("unreadable response; treating the batch as failed", "function", d.name, "error", err)
				d.stats.Failures.Add(1)
				continue
			}
		}
		for k, v := range resp.Summary {
			if k != "records" {
				d.stats.Add(k, int64(v))
			}
		}
		from, failed, err := firstFailure(recs, resp.BatchItemFailures)
		if err != nil {
			d.stats.Failures.Add(1)
			d.log.Warn("invalid partial batch response; retrying the whole batch", "function", d.name, "error", err)
			continue
		}
		if failed {
			d.stats.Failures.Add(1)
			lastErr = errors.New("partial batch failure")
			d.log.Warn("partial batch failure; retrying from the first failed record", "function", d.name,
				"partition", recs[0].Partition, "from_offset", recs[from].Offset, "attempt", attempt+1)
		}
		if from > 0 {
			done(recs[:from])
			d.stats.Records.Add(int64(from))
			d.stats.lastDone.Store(time.Now().UnixNano())
		}
		recs = recs[from:]
	}
	return nil
}

// skip gives up on recs after their retries: it records them at the
// failure destination and reports them done, so the partition moves on.
func (d *deliverer) skip(ctx context.Context, recs []*stream.Record, attempts int, cause error, done func([]*stream.Record)) error {
	f := FailedBatch{Function: d.name, Condition: "RetryAttemptsExhausted", Attempts: attempts, Topic: recs[0].Topic,
		Partition: recs[0].Partition, FirstOffset: recs[0].Offset, LastOffset: recs[len(recs)-1].Offset,
		BatchSize: len(recs), At: time.Now().UTC()}
	if cause != nil {
		f.Error = cause.Error()
	}
	d.log.Error("batch failed every retry; moving past it", "function", d.name, "topic", f.Topic, "partition", f.Partition,
		"from_offset", f.FirstOffset, "to_offset", f.LastOffset, "attempts", attempts, "error", f.Error)
	if d.giveUp.Destination != nil {
		if err := d.giveUp.Destination.Record(ctx, f); err != nil {
			return fmt.Errorf("record failed batch: %w", err)
		}
	}
	d.stats.GivenUp.Add(int64(len(recs)))
	done(recs)
	return nil
}

// firstFailure returns the index of the first record to retry (len(recs)
// when everything succeeded) and whether any failure was reported. As
// Lambda does, it takes the lowest offset listed for the partition.
func firstFailure(recs []*stream.Record, fails []kafkaevent.BatchItemFailure) (int, bool, error) {
	if len(fails) == 0 {
		return len(recs), false, nil
	}
	lowest := int64(-1)
	for _, f := range fails {
		topic, part, err := kafkaevent.ParseItemPartition(f.ItemIdentifier.Partition)
		if err != nil {
			return 0, true, err
		}
		if topic != recs[0].Topic || part != recs[0].Partition {
			return 0, true, fmt.Errorf("failure names %s, which is not in the batch", f.ItemIdentifier.Partition)
		}
		if lowest < 0 || f.ItemIdentifier.Offset < lowest {
			lowest = f.ItemIdentifier.Offset
		}
	}
	for i, r := range recs {
		if r.Offset >= lowest {
			return i, true, nil
		}
	}
	return 0, true, fmt.Errorf("failure offset %d is past the batch", lowest)
}
