package harness_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/votingpipe/voting/infra"
	"github.com/votingpipe/voting/local/harness"
	"github.com/votingpipe/voting/local/internal/testkit"
	"github.com/votingpipe/voting/local/trigger"
	"github.com/votingpipe/voting/shared/broker"
	"github.com/votingpipe/voting/shared/config"
	"github.com/votingpipe/voting/shared/kafkaevent"
	"github.com/votingpipe/voting/shared/stream"
)

var quiet = testLogger()

func testLogger() *slog.Logger {
	if os.Getenv("VOTING_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// newEnv opens a harness environment on a fresh database and an in-memory
// embedded broker with the given partition count.
func newEnv(t *testing.T, partitions int) *harness.Env {
	t.Helper()
	cfg, err := config.LoadFrom[config.Config](map[string]string{
		"DATABASE_URL":     testkit.NewDatabase(t),
		"DASHBOARD_DIR":    t.TempDir(),
		"KAFKA_PARTITIONS": fmt.Sprint(partitions),
	}, config.Local)
	if err != nil {
		t.Fatal(err)
	}
	env, err := harness.Open(context.Background(), cfg, quiet, harness.EnvOptions{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Close)
	return env
}

// recorder is an Invoker that records what it is given and fails on demand.
type recorder struct {
	mu      sync.Mutex
	seen    map[int32][]int64 // offsets per partition, in delivery order
	fail    func(recs []*stream.Record) (kafkaevent.Response, error)
	invokes atomic.Int64
}

func (r *recorder) Invoke(_ context.Context, payload []byte) ([]byte, error) {
	r.invokes.Add(1)
	var ev events.KafkaEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, err
	}
	recs := kafkaevent.Records(ev)
	resp := kafkaevent.Response{}
	if r.fail != nil {
		var err error
		if resp, err = r.fail(recs); err != nil {
			return nil, err
		}
	}
	done := len(recs)
	for i, rec := range recs {
		for _, f := range resp.BatchItemFailures {
			if rec.Offset >= f.ItemIdentifier.Offset && i < done {
				done = i
			}
		}
	}
	r.mu.Lock()
	for _, rec := range recs[:done] {
		r.seen[rec.Partition] = append(r.seen[rec.Partition], rec.Offset)
	}
	r.mu.Unlock()
	return json.Marshal(resp)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, s := range r.seen {
		n += len(s)
	}
	return n
}

func produce(t *testing.T, env *harness.Env, topic string, n int) {
	t.Helper()
	recs := make([]*stream.Record, n)
	for i := range recs {
		recs[i] = &stream.Record{Topic: topic, Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf(`{"i":%d}`, i))}
	}
	if err := (broker.Publisher{Client: env.Deps.Kafka}).Publish(context.Background(), recs...); err != nil {
		t.Fatal(err)
	}
}

func kafkaTrigger(env *harness.Env, inv trigger.Invoker, batch int) *trigger.KafkaTrigger {
	return &trigger.KafkaTrigger{
		Mapping: trigger.Mapping{Function: "test", Topic: "votes_topic", Group: "test-group", BatchSize: batch, Invoker: inv,
			Backoff: trigger.Backoff{Min: time.Millisecond, Max: 10 * time.Millisecond}, Log: quiet},
		ClientOpts: []kgo.Opt{kgo.SeedBrokers(env.Config.Kafka.Brokers...)}, CommitInterval: 100 * time.Millisecond,
	}
}

func runUntil(t *testing.T, tr *trigger.KafkaTrigger, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		select {
		case err := <-done:
			t.Fatalf("trigger stopped early: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatal("condition not reached in 20 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestTriggerRetriesAndKeepsOrder(t *testing.T) {
	env := newEnv(t, 3)
	produce(t, env, "votes_topic", 600)
	var calls atomic.Int64
	rec := &recorder{seen: map[int32][]int64{}, fail: func(recs []*stream.Record) (kafkaevent.Response, error) {
		switch calls.Add(1) % 5 {
		case 1: // a transient failure: the whole batch is retried
			return kafkaevent.Response{}, errors.New("database unavailable")
		case 3: // a partial failure: retried from the failed record
			if len(recs) > 1 {
				mid := recs[len(recs)/2]
				return kafkaevent.Response{BatchItemFailures: []kafkaevent.BatchItemFailure{{ItemIdentifier: kafkaevent.ItemIdentifier{
					Partition: kafkaevent.PartitionKey(mid.Topic, mid.Partition), Offset: mid.Offset}}}}, nil
			}
		}
		return kafkaevent.Response{}, nil
	}}
	tr := kafkaTrigger(env, rec, 50)
	runUntil(t, tr, func() bool { return rec.count() >= 600 })

	for p, offs := range rec.seen {
		for i, o := range offs {
			if o != int64(i) {
				t.Fatalf("partition %d: delivery %d is offset %d (out of order, skipped or repeated after success)", p, i, o)
			}
		}
	}
	if rec.count() != 600 {
		t.Fatalf("%d records processed, want 600", rec.count())
	}
	if tr.Stats.Failures.Load() == 0 || tr.Stats.Records.Load() != 600 {
		t.Fatalf("stats: failures %d records %d", tr.Stats.Failures.Load(), tr.Stats.Records.Load())
	}
}

func TestTriggerCommitsOnlyWhatSucceeded(t *testing.T) {
	env := newEnv(t, 2)
	produce(t, env, "votes_topic", 200)

	// The first consumer processes about half, then is stopped while its
	// invocations fail: what failed must come back to the next consumer.
	var stopAt atomic.Bool
	first := &recorder{seen: map[int32][]int64{}, fail: func(recs []*stream.Record) (kafkaevent.Response, error) {
		if stopAt.Load() {
			return kafkaevent.Response{}, errors.New("failing")
		}
		return kafkaevent.Response{}, nil
	}}
	tr := kafkaTrigger(env, first, 10)
	runUntil(t, tr, func() bool {
		if first.count() >= 100 {
			stopAt.Store(true)
			return true
		}
		return false
	})

	second := &recorder{seen: map[int32][]int64{}}
	runUntil(t, kafkaTrigger(env, second, 10), func() bool { return first.count()+second.count() >= 200 })
	seen := map[string]bool{}
	for _, r := range []*recorder{first, second} {
		for p, offs := range r.seen {
			for _, o := range offs {
				seen[fmt.Sprintf("%d/%d", p, o)] = true
			}
		}
	}
	if len(seen) != 200 {
		t.Fatalf("%d distinct records processed over both consumers, want 200 (lost records)", len(seen))
	}
	// The second consumer starts where the first one's successes ended.
	for p, offs := range second.seen {
		if len(offs) > 0 && len(first.seen[p]) > 0 && offs[0] > first.seen[p][len(first.seen[p])-1]+1 {
			t.Fatalf("partition %d: a gap between %d and %d", p, first.seen[p][len(first.seen[p])-1], offs[0])
		}
	}
}

// A small election end to end with the broker failing offset commits and
// fetches mid-run: every vote is still counted exactly once.
func TestElectionUnderBrokerFaults(t *testing.T) {
	env := newEnv(t, 4)
	var commits, fetches, commitFaults, fetchFaults atomic.Int64
	env.Embedded.Cluster.ControlKey(int16(kmsg.OffsetCommit), func(kmsg.Request) (kmsg.Response, error, bool) {
		env.Embedded.Cluster.KeepControl()
		if commits.Add(1)%2 == 0 {
			commitFaults.Add(1)
			return nil, errors.New("injected commit failure"), true
		}
		return nil, nil, false
	})
	env.Embedded.Cluster.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		env.Embedded.Cluster.KeepControl()
		if fetches.Add(1)%3 == 0 {
			fetchFaults.Add(1)
			return nil, errors.New("injected fetch failure"), true
		}
		return nil, nil, false
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	sum, err := harness.Run(ctx, env, harness.RunOptions{
		Voters: 8000, Seed: 42, Candidates: 3, UntilDone: true, Out: io.Discard,
		Functions: []string{infra.Register, infra.Ballot, infra.Tally},
		BatchSize: map[string]int{infra.Ballot: 100, infra.Tally: 100},
	})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Tallied != 8000 {
		t.Fatalf("tallied %d of 8000", sum.Tallied)
	}
	if commitFaults.Load() == 0 || fetchFaults.Load() == 0 {
		t.Fatalf("faults were not injected (%d of %d commits, %d of %d fetches failed)",
			commitFaults.Load(), commits.Load(), fetchFaults.Load(), fetches.Load())
	}
	t.Logf("survived %d failed commits and %d failed fetches", commitFaults.Load(), fetchFaults.Load())
	rep, err := harness.Audit(ctx, env, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Votes != 8000 {
		t.Fatalf("audit: %+v", rep)
	}
	// Every offset counted or rejected once is proven where the faults were:
	// against the broker's end offsets, not the database alone.
	var accounted int64
	for _, p := range rep.Partitions {
		if p.End < 0 {
			t.Fatalf("the audit did not check partition %d against the broker's end offset", p.Partition)
		}
		accounted += p.Counted + p.Rejected
	}
	if accounted != 8000 {
		t.Fatalf("the audit accounted for %d offsets, want 8000", accounted)
	}
}
