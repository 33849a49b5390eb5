package harness_test

// Helpers of the fault drills (drills_test.go, garbage_test.go,
// memory_test.go): environments, workers that can be killed and restarted,
// and the checks every drill ends with.

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/votingpipe/voting/infra"
	"github.com/votingpipe/voting/local/harness"
	"github.com/votingpipe/voting/local/internal/testkit"
	"github.com/votingpipe/voting/local/trigger"
	"github.com/votingpipe/voting/shared/broker"
	"github.com/votingpipe/voting/shared/config"
	"github.com/votingpipe/voting/shared/election"
	"github.com/votingpipe/voting/shared/register"
	"github.com/votingpipe/voting/shared/store"
	"github.com/votingpipe/voting/shared/stream"
)

// drillLong selects the long variants of the drills (make chaos).
var drillLong = flag.Bool("drill.long", false, "run the long variants of the fault drills (make chaos)")

// pick returns short normally and long under -drill.long.
func pick[T any](short, long T) T {
	if *drillLong {
		return long
	}
	return short
}

// drillEnv opens a harness environment on a fresh database with the given
// variables set (DATABASE_URL defaults to a fresh pgtest database).
func drillEnv(t testing.TB, partitions int, vars map[string]string, eo harness.EnvOptions) *harness.Env {
	t.Helper()
	env := map[string]string{
		"DASHBOARD_DIR":    t.TempDir(),
		"KAFKA_PARTITIONS": fmt.Sprint(partitions),
	}
	maps.Copy(env, vars)
	if env["DATABASE_URL"] == "" {
		env["DATABASE_URL"] = testkit.NewDatabase(t)
	}
	cfg, err := config.LoadFrom[config.Config](env, config.Local)
	if err != nil {
		t.Fatal(err)
	}
	if !eo.InMemory && eo.StateDir == "" {
		eo.StateDir = t.TempDir()
	}
	e, err := harness.Open(context.Background(), cfg, quiet, eo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// withHost returns dsn with its host:port replaced.
func withHost(t testing.TB, dsn, hostport string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = hostport
	return u.String()
}

// registerElection registers an election of n voters through the register
// function's Lambda handler; rate > 0 paces publication (voters per second).
func registerElection(ctx context.Context, env *harness.Env, n int64, rate float64) (register.Response, error) {
	return registerRequest(ctx, env, register.Request{Voters: n, Candidates: 3, Rate: rate})
}

// registerElectionSeed registers an election of n voters and cands
// candidates generated from seed.
func registerElectionSeed(ctx context.Context, env *harness.Env, n int64, cands int, seed int64) (register.Response, error) {
	return registerRequest(ctx, env, register.Request{Voters: n, Candidates: cands, Seed: &seed})
}

func registerRequest(ctx context.Context, env *harness.Env, req register.Request) (register.Response, error) {
	if req.Seed == nil {
		seed := int64(42)
		req.Seed = &seed
	}
	payload, err := json.Marshal(req)
	if err != nil {
		return register.Response{}, err
	}
	reg, err := env.Register()
	if err != nil {
		return register.Response{}, err
	}
	out, err := lambda.NewHandler(reg.Register).Invoke(ctx, payload)
	if err != nil {
		return register.Response{}, err
	}
	var resp register.Response
	return resp, json.Unmarshal(out, &resp)
}

// newTrigger is the MSK event-source mapping of function fn as the harness
// builds it, with short backoff and commit interval so drills stay quick.
func newTrigger(t testing.TB, env *harness.Env, fn string, inv trigger.Invoker, batch int, st *trigger.Stats) *trigger.KafkaTrigger {
	t.Helper()
	tr, ok := infra.TriggerFor(fn)
	if !ok {
		t.Fatalf("no trigger for %s", fn)
	}
	opts, err := env.ClientOpts()
	if err != nil {
		t.Fatal(err)
	}
	if batch <= 0 {
		batch = tr.BatchSize
	}
	if st == nil {
		st = &trigger.Stats{}
	}
	return &trigger.KafkaTrigger{
		Mapping: trigger.Mapping{Function: fn, Topic: tr.Topic(env.Config.Topics), Group: tr.Group, BatchSize: batch, Window: tr.Window,
			Invoker: inv, Meta: env.Meta(), Backoff: trigger.Backoff{Min: 20 * time.Millisecond, Max: 500 * time.Millisecond},
			Log: quiet, Stats: st},
		ClientOpts: opts, CommitInterval: 100 * time.Millisecond,
	}
}

// running is a trigger running in the background.
type running struct {
	cancel context.CancelFunc
	done   chan error
	Stats  *trigger.Stats
	once   sync.Once
	err    error
}

func start(tr *trigger.KafkaTrigger) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1), Stats: tr.Stats}
	go func() { r.done <- tr.Run(ctx) }()
	return r
}

// stop stops the trigger gracefully (in-flight invocations finish, offsets
// are committed) and returns Run's error; it may be called again.
func (r *running) stop() error {
	r.once.Do(func() {
		r.cancel()
		r.err = <-r.done
	})
	return r.err
}

// startFunction runs function fn on env's own clients.
func startFunction(t testing.TB, env *harness.Env, fn string, batch int) *running {
	t.Helper()
	inv, err := env.Invoker(fn)
	if err != nil {
		t.Fatal(err)
	}
	r := start(newTrigger(t, env, fn, inv, batch, nil))
	t.Cleanup(func() { r.stop() }) //nolint:errcheck // stopped already when the test stops it
	return r
}

// eventually polls cond every 50 ms until it holds, failing the test after d.
func eventually(t testing.TB, d time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(d)
	var lastErr error
	for {
		ok, err := cond()
		if ok {
			return
		}
		lastErr = err
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached in %s (last error: %v)", what, d, lastErr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// caughtUp reports whether the groups have consumed everything, twice in a
// row 100 ms apart (the second reading's end offsets include what the
// consumers produced last).
func caughtUp(ctx context.Context, env *harness.Env, groups ...string) (bool, error) {
	for i := range 2 {
		if i > 0 {
			time.Sleep(100 * time.Millisecond)
		}
		_, _, caught, err := env.Transport().Position(ctx, groups)
		if err != nil || !caught {
			return false, err
		}
	}
	return true, nil
}

// dbs are the test pools of the environments' databases.
var dbs sync.Map // *harness.Env -> *pgxpool.Pool

// db is a pool on env's database for the test's own checks.
func db(t testing.TB, env *harness.Env) *pgxpool.Pool {
	t.Helper()
	if p, ok := dbs.Load(env); ok {
		return p.(*pgxpool.Pool)
	}
	p := testkit.Pool(t, env.Config.Database.URL)
	dbs.Store(env, p)
	return p
}

// count runs a count query.
func count(t testing.TB, env *harness.Env, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db(t, env).QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// topicEnd returns the sum of the end offsets of topic's partitions.
func topicEnd(t testing.TB, env *harness.Env, topic string) int64 {
	t.Helper()
	ends, err := kadm.NewClient(env.Deps.Kafka).ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

// readTopic reads every record of topic, up to its end offsets now.
func readTopic(t testing.TB, env *harness.Env, topic string) []*stream.Record {
	t.Helper()
	var out []*stream.Record
	eachRecord(t, env, topic, func(r *stream.Record) { out = append(out, r) })
	return out
}

// eachRecord calls fn with every record of topic, up to its end offsets now.
func eachRecord(t testing.TB, env *harness.Env, topic string, fn func(*stream.Record)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	adm := kadm.NewClient(env.Deps.Kafka)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{} // the last offset to read, per partition
	ends.Each(func(o kadm.ListedOffset) {
		if s, ok := starts.Lookup(topic, o.Partition); ok && o.Offset > s.Offset {
			want[o.Partition] = o.Offset - 1
		}
	})
	if len(want) == 0 {
		return
	}
	opts, err := env.ClientOpts()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append(opts, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(64<<20))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	n := 0
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %s: %d records read, partitions left %v: %v", topic, n, want, ctx.Err())
		}
		fs.EachRecord(func(kr *kgo.Record) {
			r := broker.FromKgo(kr)
			last, ok := want[r.Partition]
			if !ok || r.Offset > last {
				return
			}
			n++
			fn(r)
			if r.Offset == last {
				delete(want, r.Partition)
			}
		})
	}
}

// expectedTotals is the true result of the registered election, computed
// from the roll without the pipeline: every voter's deterministic choice.
func expectedTotals(t testing.TB, env *harness.Env) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	e, err := env.Deps.Store.Election(ctx)
	if err != nil || e == nil {
		t.Fatalf("election: %v %v", e, err)
	}
	cands, err := env.Deps.Store.Candidates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	weights := make([]float64, len(cands))
	for i, c := range cands {
		weights[i] = c.Weight
	}
	rows, err := db(t, env).Query(ctx, `SELECT voter_id FROM voters`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	want := map[string]int64{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		want[cands[election.Choose(e.Seed, id, weights)].CandidateID]++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return want
}

// candidateTotals reads candidate_results.
func candidateTotals(t testing.TB, env *harness.Env) map[string]int64 {
	t.Helper()
	return keyed(t, env, `SELECT candidate_id, total_votes FROM candidate_results`)
}

// keyed reads a two-column (text, bigint) query into a map.
func keyed(t testing.TB, env *harness.Env, sql string) map[string]int64 {
	t.Helper()
	rows, err := db(t, env).Query(context.Background(), sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var k string
		var n int64
		if err := rows.Scan(&k, &n); err != nil {
			t.Fatal(err)
		}
		out[k] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// auditOK runs the audit (harness.Audit, the code of `go run ./local
// audit`) against votes_topic's end offsets on the broker and fails the test
// unless every record of the election is accounted for and every view
// equals the recount; wantVotes >= 0 is the number of votes that must be
// counted.
func auditOK(t testing.TB, env *harness.Env, wantVotes int64) store.AuditReport {
	t.Helper()
	var buf safeBuffer
	rep, err := harness.Audit(context.Background(), env, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("audit failed:\n%s", buf.String())
	}
	if wantVotes >= 0 && rep.Votes != wantVotes {
		t.Fatalf("audit: %d votes counted, want %d\n%s", rep.Votes, wantVotes, buf.String())
	}
	if len(rep.Partitions) == 0 {
		t.Fatal("audit checked no partition")
	}
	for _, p := range rep.Partitions {
		if p.End < 0 {
			t.Fatalf("audit: partition %d has no end offset; the audit did not reach the broker\n%s", p.Partition, buf.String())
		}
	}
	return rep
}

// safeBuffer is a bytes buffer safe for concurrent writers (slog handlers).
type safeBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}

// sortedKeys returns m's keys in order, for messages.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
