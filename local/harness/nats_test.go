package harness_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/votingpipe/voting/shared/stream"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/nats-io/nats.go"

	"github.com/votingpipe/voting/infra"
	"github.com/votingpipe/voting/local/harness"
	"github.com/votingpipe/voting/local/internal/testkit"
	"github.com/votingpipe/voting/local/natsbridge"
	"github.com/votingpipe/voting/local/trigger"
	"github.com/votingpipe/voting/shared/config"
	"github.com/votingpipe/voting/shared/kafkaevent"
)

// The NATS tests need the real nats-server with JetStream (NATS_URL, default
// nats://127.0.0.1:4222; .ci/run starts it). Each test has its own stream
// prefix and deletes its streams when it ends.

var natsTestSeq atomic.Int64

// natsEnv opens a harness environment on a fresh database, switched to the
// NATS transport with streams of its own.
func natsEnv(t *testing.T, partitions int) (*harness.Env, *natsbridge.Bridge) {
	t.Helper()
	return natsEnvWith(t, partitions, fmt.Sprintf("t%d_%d_", os.Getpid()%100000, natsTestSeq.Add(1)), testkit.NewDatabase(t))
}

// natsEnvWith opens a harness environment on database dsn, switched to the
// NATS transport with the streams of prefix (deleted when the test ends).
func natsEnvWith(t *testing.T, partitions int, prefix, dsn string) (*harness.Env, *natsbridge.Bridge) {
	t.Helper()
	url := os.Getenv("NATS_URL")
	if url == "" {
		url = "nats://127.0.0.1:4222"
	}
	cfg, err := config.LoadFrom[config.Config](map[string]string{
		"DATABASE_URL":        dsn,
		"DASHBOARD_DIR":       t.TempDir(),
		"KAFKA_PARTITIONS":    fmt.Sprint(partitions),
		"NATS_URL":            url,
		"NATS_STREAM_PREFIX":  prefix,
		"NATS_STREAM_MAX_AGE": "1h",
	}, config.Local)
	if err != nil {
		t.Fatal(err)
	}
	env, err := harness.Open(context.Background(), cfg, quiet, harness.EnvOptions{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	closeNATS, err := harness.UseNATS(context.Background(), env)
	if err != nil {
		env.Close()
		t.Fatalf("the NATS tests need nats-server with JetStream at %s: %v", url, err)
	}
	b, _ := env.Bridge()
	env.OnClose(closeNATS)
	t.Cleanup(func() {
		env.Close()
		// A new bridge: the environment's is closed. Streams another
		// environment of the test deleted already are skipped.
		o := natsbridge.OptionsFrom(cfg.NATS, cfg.Kafka)
		o.Log = quiet
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cleaner, err := natsbridge.Connect(ctx, o)
		if err != nil {
			t.Errorf("delete streams: %v", err)
			return
		}
		defer cleaner.Close()
		if err := cleaner.DeleteStreams(ctx, cfg.Topics.All()...); err != nil {
			t.Errorf("delete streams: %v", err)
		}
	})
	return env, b
}

var natsElectionFunctions = []string{infra.Register, infra.Ballot, infra.Tally}

func natsAuditOK(t *testing.T, env *harness.Env) {
	t.Helper()
	var out bytes.Buffer
	rep, err := harness.Audit(context.Background(), env, &out)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("audit failed:\n%s", out.String())
	}
	for _, p := range rep.Partitions {
		if p.End < 0 {
			t.Fatalf("audit did not check partition %d against the stream's end:\n%s", p.Partition, out.String())
		}
	}
}

func natsCount(t *testing.T, env *harness.Env, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db(t, env).QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func natsSum(m map[int32]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

func TestNATSElectionEndToEnd(t *testing.T) {
	env, _ := natsEnv(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sum1, err := harness.Run(ctx, env, harness.RunOptions{
		Voters: 3000, Candidates: 3, Seed: 11, UntilDone: true, Functions: natsElectionFunctions, Out: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	if sum1.Tallied != 3000 || sum1.Rejected != 0 {
		t.Fatalf("tallied %d, rejected %d; want 3000, 0", sum1.Tallied, sum1.Rejected)
	}
	natsAuditOK(t, env)
	ends, err := env.Transport().VoteEnds(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ends) != 3 || natsSum(ends) != 3000 {
		t.Fatalf("votes streams end at %v; want 3 partitions holding 3000 votes", ends)
	}
	// Every vote went to the partition Kafka's partitioner gives its voter.
	if n := natsCount(t, env, `SELECT count(*) FROM votes v WHERE v.src_partition IS NULL`); n != 0 {
		t.Fatalf("%d votes without a source partition", n)
	}
	if got := sum1.Stats[infra.Tally].Get("counted"); got != 3000 {
		t.Fatalf("tally responses counted %d; want 3000", got)
	}
}

// natsKillingInvoker runs the real function and, on its call number at,
// fails after the function did its work (so none of it is acknowledged)
// and, when kill is set, kills the whole run.
type natsKillingInvoker struct {
	inner  trigger.Invoker
	at     int64
	calls  atomic.Int64
	kill   context.CancelFunc
	killed atomic.Bool
}

func (k *natsKillingInvoker) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	out, err := k.inner.Invoke(ctx, payload)
	if k.calls.Add(1) == k.at && err == nil {
		k.killed.Store(true)
		if k.kill != nil {
			k.kill()
		}
		return nil, errors.New("worker died after processing the batch")
	}
	return out, err
}

func TestNATSRedeliveryAfterWorkerKilled(t *testing.T) {
	env, _ := natsEnv(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const voters = 4000

	// First run: the ballot worker fails its second batch after
	// publishing its votes (the batch is retried and the votes published
	// again); the tally worker dies in its third batch, having counted it
	// without acknowledging it, and takes the run down with it.
	ctx1, kill := context.WithCancel(ctx)
	ballot, err := env.Invoker(infra.Ballot)
	if err != nil {
		t.Fatal(err)
	}
	tally, err := env.Invoker(infra.Tally)
	if err != nil {
		t.Fatal(err)
	}
	kb := &natsKillingInvoker{inner: ballot, at: 2}
	kt := &natsKillingInvoker{inner: tally, at: 3, kill: kill}
	_, err = harness.Run(ctx1, env, harness.RunOptions{
		Voters: voters, Candidates: 4, Seed: 5, Rate: 8000, UntilDone: true, Functions: natsElectionFunctions, Out: io.Discard,
		BatchSize: map[string]int{infra.Ballot: 300, infra.Tally: 300},
		Invokers:  map[string]trigger.Invoker{infra.Ballot: kb, infra.Tally: kt},
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if !kb.killed.Load() || !kt.killed.Load() {
		t.Fatalf("ballot failed %v, tally killed %v; the test proves nothing", kb.killed.Load(), kt.killed.Load())
	}
	tallied := natsCount(t, env, `SELECT count(*) FROM votes`)
	if tallied == 0 || tallied >= voters {
		t.Fatalf("first run tallied %d of %d; want a part", tallied, voters)
	}

	// Second run: resumes registration, gets the unacknowledged batches
	// again and finishes.
	sum2, err := harness.Run(ctx, env, harness.RunOptions{
		Voters: voters, Candidates: 4, Seed: 5, UntilDone: true, Functions: natsElectionFunctions, Out: io.Discard,
		BatchSize: map[string]int{infra.Ballot: 300, infra.Tally: 300},
	})
	if err != nil {
		t.Fatal(err)
	}
	natsAuditOK(t, env)
	if n := natsCount(t, env, `SELECT count(*) FROM votes`); n != voters {
		t.Fatalf("%d votes counted; want %d, each once", n, voters)
	}
	if sum2.Stats[infra.Tally].Get("redelivered") == 0 {
		t.Fatal("the second run's tally saw no redelivered vote: the killed batch was acknowledged")
	}
	// The ballot function published the failed batch's votes again (and
	// the second run republished what the killed run had published); their
	// ids made JetStream store each vote once.
	ends, err := env.Transport().VoteEnds(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := natsSum(ends); got != voters {
		t.Fatalf("votes streams hold %d records; want %d (the republished votes stored once)", got, voters)
	}
	if n := natsCount(t, env, `SELECT count(*) FROM rejected_votes`); n != 0 {
		t.Fatalf("%d votes rejected; want none", n)
	}
}

func TestNATSDeadLetters(t *testing.T) {
	env, b := natsEnv(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	js := b.JetStream()
	topics := env.Config.Topics
	// The election first (records before its start would be an earlier
	// election's, skipped), then garbage straight onto the subjects, as a
	// misbehaving producer would put it: a vote that is not JSON, and a
	// voter that is not a voter.
	if _, err := registerElectionSeed(ctx, env, 500, 2, 3); err != nil {
		t.Fatal(err)
	}
	badVote, err := js.Publish(ctx, b.Subject(topics.Votes, 1), []byte("this is not a vote"))
	if err != nil {
		t.Fatal(err)
	}
	badVoter, err := js.Publish(ctx, b.Subject(topics.Voters, 0), []byte(`{"voter_id": 42}`))
	if err != nil {
		t.Fatal(err)
	}
	sum, err := harness.Run(ctx, env, harness.RunOptions{
		Voters: 500, Candidates: 2, Seed: 3, UntilDone: true, Functions: natsElectionFunctions, Out: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Tallied != 500 || sum.Rejected != 1 {
		t.Fatalf("tallied %d, rejected %d; want 500 and the garbage vote", sum.Tallied, sum.Rejected)
	}
	natsAuditOK(t, env)
	if n := natsCount(t, env, `SELECT count(*) FROM rejected_votes WHERE partition = 1 AND reason = 'malformed'`); n != 1 {
		t.Fatalf("rejected_votes has no malformed record on partition 1")
	}
	for _, c := range []struct {
		dlq, source, stage string
		offset             uint64
	}{
		{topics.VotesDLQ, topics.Votes, "tally", badVote.Sequence - 1},
		{topics.VotersDLQ, topics.Voters, "ballot", badVoter.Sequence - 1},
	} {
		var found []*nats.Header
		for p := range int32(b.Partitions()) {
			s, err := js.Stream(ctx, b.Stream(c.dlq, p))
			if err != nil {
				t.Fatal(err)
			}
			for seq := uint64(1); seq <= s.CachedInfo().State.LastSeq; seq++ {
				m, err := s.GetMsg(ctx, seq)
				if err != nil {
					t.Fatal(err)
				}
				h := m.Header
				found = append(found, &h)
			}
		}
		if len(found) != 1 {
			t.Fatalf("%s holds %d dead letters; want 1", c.dlq, len(found))
		}
		h := *found[0]
		if h.Get("source_topic") != c.source || h.Get("stage") != c.stage || h.Get("source_offset") != fmt.Sprint(c.offset) ||
			!strings.HasPrefix(h.Get("Nats-Msg-Id"), "dead:"+c.stage+":") {
			t.Fatalf("%s dead letter headers %v", c.dlq, h)
		}
	}
}

// natsOffsets records the offsets each partition was invoked with.
type natsOffsets struct {
	mu    sync.Mutex
	seen  map[int32][]int64
	delay time.Duration
}

func (o *natsOffsets) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	var ev events.KafkaEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, err
	}
	time.Sleep(o.delay)
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, r := range kafkaevent.Records(ev) {
		o.seen[r.Partition] = append(o.seen[r.Partition], r.Offset)
	}
	return []byte(`{"batchItemFailures":[]}`), nil
}

// A trigger stopped with a backlog returns promptly, leaving the backlog
// unacknowledged; the next one delivers it, every record once and in
// offset order.
func TestNATSTriggerStopsPromptlyAndResumesInOrder(t *testing.T) {
	env, b := natsEnv(t, 2)
	topic := env.Config.Topics.Votes
	var recs []*stream.Record
	for i := range 3000 {
		recs = append(recs, &stream.Record{Topic: topic, Key: []byte(fmt.Sprintf("voter-%d", i)), Value: []byte("{}")})
	}
	if err := b.Publish(context.Background(), recs...); err != nil {
		t.Fatal(err)
	}
	inv := &natsOffsets{seen: map[int32][]int64{}, delay: 20 * time.Millisecond}
	trig := func() *trigger.NATSTrigger {
		return &trigger.NATSTrigger{Mapping: trigger.Mapping{Function: "probe", Topic: topic, Group: "probe", BatchSize: 50,
			Invoker: inv, Log: quiet}, Bridge: b}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- trig().Run(ctx) }()
	eventually(t, 10*time.Second, "a first part delivered", func() (bool, error) {
		inv.mu.Lock()
		defer inv.mu.Unlock()
		return len(inv.seen[0])+len(inv.seen[1]) >= 200, nil
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the trigger did not stop within 3 s of its context ending")
	}
	first := len(inv.seen[0]) + len(inv.seen[1])
	if first == 0 || first >= 3000 {
		t.Fatalf("first run delivered %d of 3000; want a part", first)
	}

	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	inv.delay = 0
	go func() { done <- trig().Run(ctx2) }()
	ends, err := b.Ends(ctx2, topic)
	if err != nil {
		t.Fatal(err)
	}
	for {
		inv.mu.Lock()
		n := len(inv.seen[0]) + len(inv.seen[1])
		inv.mu.Unlock()
		if n >= 3000 {
			break
		}
		if ctx2.Err() != nil {
			t.Fatalf("delivered %d of 3000", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Stopped, the trigger delivers nothing more: what it delivered twice
	// (if anything) is in inv.seen now.
	cancel2()
	<-done
	for p, offs := range inv.seen {
		if int64(len(offs)) != ends[p] {
			t.Fatalf("partition %d: %d deliveries of %d records", p, len(offs), ends[p])
		}
		for i, o := range offs {
			if o != int64(i) {
				t.Fatalf("partition %d: delivery %d is offset %d; want every offset once, in order", p, i, o)
			}
		}
	}
}
