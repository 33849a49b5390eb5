package harness_test

// Fault drills: the pipeline is run against faults an election must survive
// (workers killed at any point, the whole topic replayed, the database cut
// off), then audited: every voter's vote counted exactly once, every record
// of votes_topic accounted for, every tally equal to the recount.
//
// The normal variants run in `go test ./...`; `make chaos` (-drill.long)
// runs longer elections with many more faults.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/votingpipe/voting/shared/stream"
	"io"
	"maps"
	"math/rand/v2"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/votingpipe/voting/infra"
	"github.com/votingpipe/voting/local/harness"
	"github.com/votingpipe/voting/local/harness/internal/faultproxy"
	"github.com/votingpipe/voting/local/internal/testkit"
	"github.com/votingpipe/voting/local/trigger"
	"github.com/votingpipe/voting/shared/broker"
	"github.com/votingpipe/voting/shared/deadletter"
)

var errCrashed = errors.New("worker process killed")

// crashInvoker is a function as one worker process runs it. Once the process
// is killed, invocations in flight are cancelled (a Postgres transaction in
// progress rolls back; one whose COMMIT was sent may or may not be durable)
// and no answer reaches the event-source mapping, so nothing more is
// committed to Kafka.
type crashInvoker struct {
	inner trigger.Invoker
	// killAfter crashes the process right after the killAfter-th successful
	// invocation returns, before the mapping hears of it (0: never).
	killAfter int64
	calls     atomic.Int64
	dead      atomic.Bool
	killed    context.Context // done when the process is killed
	crashed   chan struct{}   // closed by a post-commit crash
	cut       atomic.Int64    // invocations whose answer a kill lost
}

func (c *crashInvoker) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	if c.dead.Load() {
		return nil, errCrashed
	}
	ictx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(c.killed, cancel)()
	out, err := c.inner.Invoke(ictx, payload)
	if c.dead.Load() {
		c.cut.Add(1)
		return nil, errCrashed
	}
	if err == nil && c.killAfter > 0 && c.calls.Add(1) == c.killAfter {
		// The batch's Postgres transaction is committed and its records are
		// produced; the process dies before the offsets are committed.
		c.dead.Store(true)
		close(c.crashed)
		return nil, errCrashed
	}
	return out, err
}

// commitDropper makes the broker acknowledge, but forget, the offset commits
// of the groups it is told to: the commits a killed process would never have
// sent (the trigger commits on shutdown; a crash does not).
type commitDropper struct {
	mu      sync.Mutex
	groups  map[string]bool
	dropped atomic.Int64
}

func installCommitDropper(c *kfake.Cluster) *commitDropper {
	d := &commitDropper{groups: map[string]bool{}}
	c.ControlKey(int16(kmsg.OffsetCommit), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		r := req.(*kmsg.OffsetCommitRequest)
		d.mu.Lock()
		drop := d.groups[r.Group]
		d.mu.Unlock()
		if !drop {
			return nil, nil, false
		}
		resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, t := range r.Topics {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition = p.Partition
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		d.dropped.Add(1)
		return resp, nil, true
	})
	return d
}

func (d *commitDropper) set(group string, drop bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.groups[group] = drop
}

// crashLog counts one function's restarts.
type crashLog struct {
	mu          sync.Mutex
	timed       int // killed at a random moment, invocations in flight cut short
	postCommit  int // killed between the Postgres commit and the Kafka offset commit
	hard        int // of those, kills that also lost the offsets marked since the last commit
	cut         int64
	invocations int64
	failures    int64
	redelivered int64
	stats       []*trigger.Stats
}

func (l *crashLog) restarts() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.timed + l.postCommit
}

func (l *crashLog) sum(name string) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n int64
	for _, s := range l.stats {
		n += s.Get(name)
	}
	return n
}

// superviseCrashes runs function fn as a series of worker processes, each a
// cold start (its own Postgres pool and Kafka client) fed by its own
// event-source mapping, killing each at a random point, until ctx is done.
// Once calm is set, the next process runs undisturbed.
func superviseCrashes(ctx context.Context, t *testing.T, env *harness.Env, fn string, batch int, rng *rand.Rand,
	calm *atomic.Bool, drop *commitDropper, log *crashLog) {
	tr, _ := infra.TriggerFor(fn)
	for ctx.Err() == nil {
		deps, err := harness.Open(ctx, env.Config, quiet, harness.EnvOptions{}) // its own clients, on env's broker
		if err != nil {
			if ctx.Err() == nil {
				t.Errorf("%s: cold start: %v", fn, err)
			}
			return
		}
		h, err := deps.Handler(fn)
		if err != nil {
			t.Error(err)
			return
		}
		killed, kill := context.WithCancel(context.Background())
		inv := &crashInvoker{inner: h, killed: killed, crashed: make(chan struct{})}
		undisturbed := calm.Load()
		if !undisturbed && rng.IntN(4) > 0 {
			// Three processes in four crash after a few invocations; the
			// fourth lives until its timer kills it.
			inv.killAfter = 1 + rng.Int64N(6)
		}
		st := &trigger.Stats{}
		r := start(newTrigger(t, env, fn, inv, batch, st))

		var timer <-chan time.Time
		switch {
		case undisturbed:
		case inv.killAfter > 0:
			// It crashes after its invocations, however long they take
			// (the race detector slows them fivefold); the timer only
			// covers a process that gets no records.
			timer = time.After(5 * time.Second)
		default:
			timer = time.After(time.Duration(50+rng.IntN(550)) * time.Millisecond)
		}
		postCommit := false
		select {
		case <-inv.crashed:
			postCommit = true
		case <-timer:
		case <-ctx.Done():
		case err := <-r.done:
			t.Errorf("%s trigger stopped by itself: %v", fn, err)
			kill()
			deps.Close()
			return
		}
		crash := ctx.Err() == nil
		hard := crash && rng.IntN(2) == 0
		if crash {
			inv.dead.Store(true)
			kill()
			if hard {
				drop.set(tr.Group, true)
			}
		}
		if err := r.stop(); err != nil {
			t.Errorf("%s trigger: %v", fn, err)
		}
		drop.set(tr.Group, false)
		kill()
		deps.Close()

		log.mu.Lock()
		switch {
		case !crash:
		case postCommit:
			log.postCommit++
		default:
			log.timed++
		}
		if hard {
			log.hard++
		}
		log.cut += inv.cut.Load()
		log.invocations += st.Invocations.Load()
		log.failures += st.Failures.Load()
		log.stats = append(log.stats, st)
		log.mu.Unlock()
	}
}

// TestDrillCrashAndRestart runs an election while the ballot and tally
// workers are killed and restarted again and again: at random moments
// (cutting invocations short, sometimes losing the offsets not yet
// committed) and right after an invocation's Postgres commit but before its
// Kafka offset commit. The broker outlives them all. Every vote must be
// counted exactly once and the result must be the election's true result.
func TestDrillCrashAndRestart(t *testing.T) {
	voters := pick[int64](8_000, 100_000)
	rate := pick(800.0, 1_000.0) // voters published per second: ~10 s / ~100 s of voting
	minRestarts := pick(20, 150) // per function
	began := time.Now()

	env := drillEnv(t, 4, nil, harness.EnvOptions{InMemory: true})
	drop := installCommitDropper(env.Embedded.Cluster)
	ctx, cancel := context.WithTimeout(context.Background(), pick(150*time.Second, 30*time.Minute))
	defer cancel()

	regDone := make(chan error, 1)
	go func() {
		_, err := registerElection(ctx, env, voters, rate)
		regDone <- err
	}()

	var calm atomic.Bool
	runCtx, stopRun := context.WithCancel(ctx)
	var wg sync.WaitGroup
	logs := map[string]*crashLog{infra.Ballot: {}, infra.Tally: {}}
	batches := map[string]int{infra.Ballot: 100, infra.Tally: 250}
	for i, fn := range []string{infra.Ballot, infra.Tally} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			superviseCrashes(runCtx, t, env, fn, batches[fn], rand.New(rand.NewPCG(uint64(i+1), 7)), &calm, drop, logs[fn])
		}()
	}
	t.Cleanup(func() { stopRun(); wg.Wait() })

	// Vote while the workers crash.
	registered := false
	for !registered || logs[infra.Ballot].restarts() < minRestarts || logs[infra.Tally].restarts() < minRestarts {
		select {
		case err := <-regDone:
			if err != nil {
				t.Fatalf("register: %v", err)
			}
			registered = true
		case <-ctx.Done():
			t.Fatalf("crash phase did not finish: registered %v, restarts ballot %d tally %d",
				registered, logs[infra.Ballot].restarts(), logs[infra.Tally].restarts())
		case <-time.After(100 * time.Millisecond):
		}
	}
	crashPhase := time.Since(began)

	// No more crashes: the pipeline must finish on its own.
	calm.Store(true)
	ballotGroup, tallyGroup := mustGroup(t, infra.Ballot), mustGroup(t, infra.Tally)
	eventually(t, pick(90*time.Second, 10*time.Minute), "every vote counted after the crashes", func() (bool, error) {
		if n := count(t, env, `SELECT count(*) FROM votes`); n != voters {
			return false, fmt.Errorf("%d of %d votes counted", n, voters)
		}
		return caughtUp(ctx, env, ballotGroup, tallyGroup)
	})
	calmPhase := time.Since(began) - crashPhase
	stopRun()
	wg.Wait()
	checksFrom := time.Now()

	// Every record accounted for, every tally equal to the recount.
	rep := auditOK(t, env, voters)
	cast := topicEnd(t, env, env.Config.Topics.Votes)
	for reason, n := range rep.Rejected {
		if reason != "duplicate" && n > 0 {
			t.Errorf("%d votes rejected as %s: only duplicates (votes re-cast by a restarted ballot worker) may be", n, reason)
		}
	}
	if dup := rep.Rejected["duplicate"]; dup != cast-voters {
		t.Errorf("%d duplicates, but votes_topic holds %d records for %d voters", dup, cast, voters)
	}
	// The true result: each voter's deterministic choice, counted once.
	if got, want := candidateTotals(t, env), expectedTotals(t, env); !maps.Equal(got, want) {
		t.Errorf("candidate totals %v, want the true result %v", got, want)
	}
	// Every rejected record is on votes_dlq (at least once: a batch whose
	// answer a crash lost is dead-lettered again), no voter record was bad.
	coords := map[string]bool{}
	for _, r := range readTopic(t, env, env.Config.Topics.VotesDLQ) {
		if r.Header(deadletter.HeaderReason) != "duplicate" {
			t.Errorf("dead letter with reason %q", r.Header(deadletter.HeaderReason))
		}
		coords[r.Header(deadletter.HeaderSourcePartition)+"/"+r.Header(deadletter.HeaderSourceOffset)] = true
	}
	if int64(len(coords)) != rep.Rejected["duplicate"] {
		t.Errorf("%d distinct records on votes_dlq, %d rejected", len(coords), rep.Rejected["duplicate"])
	}
	if n := topicEnd(t, env, env.Config.Topics.VotersDLQ); n != 0 {
		t.Errorf("%d voter records dead-lettered; none was bad", n)
	}

	// The drill did what it says.
	b, ta := logs[infra.Ballot], logs[infra.Tally]
	if ta.postCommit == 0 || ta.timed == 0 || ta.hard == 0 || b.postCommit == 0 {
		t.Errorf("kinds of crash missing: tally post-commit %d timed %d hard %d, ballot post-commit %d",
			ta.postCommit, ta.timed, ta.hard, b.postCommit)
	}
	if ta.sum("redelivered") == 0 {
		t.Error("the tally never saw a redelivered record: the crashes did not hit between commit and offset commit")
	}
	t.Logf("crash drill: %d voters, %d votes counted once, %d restarts survived in %.1fs of crashes; caught up %.1fs later; checks %.1fs",
		voters, rep.Votes, b.restarts()+ta.restarts(), crashPhase.Seconds(), calmPhase.Seconds(), time.Since(checksFrom).Seconds())
	for _, fn := range []string{infra.Ballot, infra.Tally} {
		l := logs[fn]
		t.Logf("  %-6s restarts %3d: %3d between Postgres commit and Kafka offset commit, %3d at random moments; %d also lost uncommitted offsets; %d invocations cut short; %d invocations, %d failed",
			fn, l.restarts(), l.postCommit, l.timed, l.hard, l.cut, l.invocations, l.failures)
	}
	t.Logf("  votes_topic %d records: %d counted, %d duplicates rejected (re-cast by restarted ballot workers); tally re-read %d already-decided records; broker forgot %d offset commits",
		cast, rep.Votes, rep.Rejected["duplicate"], ta.sum("redelivered"), drop.dropped.Load())
}

func mustGroup(t testing.TB, fn string) string {
	t.Helper()
	tr, ok := infra.TriggerFor(fn)
	if !ok {
		t.Fatalf("no trigger for %s", fn)
	}
	return tr.Group
}

// tallyState is everything the tally decides, as text: every tally view,
// the votes, and every rejection.
func tallyState(t testing.TB, env *harness.Env) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for name, sql := range map[string]string{
		"candidate": `SELECT candidate_id, total_votes FROM candidate_results`,
		"state":     `SELECT state, total_votes FROM turnout_by_state`,
		"gender":    `SELECT gender, total_votes FROM turnout_by_gender`,
		"age":       `SELECT age_band, total_votes FROM turnout_by_age_band`,
		"timeline":  `SELECT candidate_id || ' ' || second::text, votes FROM votes_timeline`,
		"shards":    `SELECT 'candidate ' || shard || ' ' || candidate_id, votes FROM tally_candidate UNION ALL SELECT 'state ' || shard || ' ' || state, votes FROM tally_state`,
		"votes":     `SELECT voter_id || ' ' || candidate_id || ' ' || src_partition || '/' || src_offset, 1 FROM votes`,
		"rejected":  `SELECT partition || '/' || "offset" || ' ' || reason || ' ' || coalesce(voter_id, '') || ' ' || md5(detail) || ' ' || md5(coalesce(payload, '')), 1 FROM rejected_votes`,
	} {
		for k, v := range keyed(t, env, sql) {
			out[name+" "+k] = v
		}
	}
	return out
}

// resetToEarliest commits the earliest offset of every partition of topic
// for group, as an operator would with kafka-consumer-groups
// --reset-offsets --to-earliest. The group must have no members.
func resetToEarliest(t testing.TB, env *harness.Env, group, topic string) {
	t.Helper()
	ctx := context.Background()
	adm := kadm.NewClient(env.Deps.Kafka)
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if err := adm.CommitAllOffsets(ctx, group, starts.Offsets()); err != nil {
		t.Fatalf("reset %s to the earliest offsets: %v", group, err)
	}
	lags, err := adm.Lag(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if lag, end := lags[group].Lag.Total(), topicEnd(t, env, topic); lag != end {
		t.Fatalf("after the reset %s lags by %d, want the whole topic (%d)", group, lag, end)
	}
}

// TestDrillReplay counts an election (with bad records among the votes),
// then resets the tally's consumer group to the earliest offset and replays
// the whole of votes_topic, twice: nothing the tally decided may change.
func TestDrillReplay(t *testing.T) {
	voters := pick[int64](5_000, 200_000)
	env := drillEnv(t, 4, nil, harness.EnvOptions{}) // a persistent broker: the audit is `go run ./local audit`'s
	ctx, cancel := context.WithTimeout(context.Background(), pick(2*time.Minute, 15*time.Minute))
	defer cancel()
	if _, err := harness.Run(ctx, env, harness.RunOptions{Voters: voters, Seed: 42, Candidates: 3, UntilDone: true,
		Out: io.Discard, Functions: []string{infra.Register, infra.Ballot, infra.Tally}}); err != nil {
		t.Fatal(err)
	}
	// Bad records and repeated ballots after the election's votes.
	g := &garbage{rng: rand.New(rand.NewPCG(3, 3)), maxBytes: env.Config.Records.MaxBytes, at: time.Now()}
	for id := range candidateTotals(t, env) {
		g.cands = append(g.cands, id)
	}
	for _, r := range readTopic(t, env, env.Config.Topics.Votes)[:100] {
		var v struct {
			VoterID     string `json:"voter_id"`
			CandidateID string `json:"candidate_id"`
		}
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatal(err)
		}
		g.cast = append(g.cast, cast{voterID: v.VoterID, candidateID: v.CandidateID, value: r.Value})
	}
	var bad []*stream.Record
	for i := range 500 {
		k := badKinds[i%len(badKinds)]
		key, val := k.make(g)
		bad = append(bad, &stream.Record{Topic: env.Config.Topics.Votes, Key: []byte(key + "x"), Value: val})
	}
	if err := (broker.Publisher{Client: env.Deps.Kafka}).Publish(ctx, bad...); err != nil {
		t.Fatal(err)
	}
	group := mustGroup(t, infra.Tally)
	tally := startFunction(t, env, infra.Tally, 0)
	eventually(t, time.Minute, "the bad records are tallied", func() (bool, error) { return caughtUp(ctx, env, group) })
	if err := tally.stop(); err != nil {
		t.Fatal(err)
	}
	before := tallyState(t, env)
	rep := auditOK(t, env, voters)
	total := topicEnd(t, env, env.Config.Topics.Votes)

	var replayed int64
	dlqBefore := topicEnd(t, env, env.Config.Topics.VotesDLQ)
	began := time.Now()
	for round := 1; round <= 2; round++ {
		resetToEarliest(t, env, group, env.Config.Topics.Votes)
		r := startFunction(t, env, infra.Tally, 0)
		eventually(t, pick(time.Minute, 10*time.Minute), fmt.Sprintf("replay %d", round), func() (bool, error) { return caughtUp(ctx, env, group) })
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
		if n := r.Stats.Records.Load(); n != total {
			t.Errorf("replay %d processed %d records, want the whole topic (%d)", round, n, total)
		}
		if n := r.Stats.Get("counted"); n != 0 {
			t.Errorf("replay %d counted %d votes again", round, n)
		}
		replayed += r.Stats.Records.Load()
		after := tallyState(t, env)
		if !maps.Equal(before, after) {
			var diffs []string
			for k, v := range before {
				if after[k] != v {
					diffs = append(diffs, fmt.Sprintf("%s: %d -> %d", k, v, after[k]))
				}
			}
			for k, v := range after {
				if _, ok := before[k]; !ok {
					diffs = append(diffs, fmt.Sprintf("%s: new %d", k, v))
				}
			}
			t.Fatalf("replay %d changed what the tally decided (%d differences), e.g. %v", round, len(diffs), diffs[:min(5, len(diffs))])
		}
		auditOK(t, env, voters)
	}
	if got, want := candidateTotals(t, env), expectedTotals(t, env); !maps.Equal(got, want) {
		t.Errorf("candidate totals %v, want the true result %v", got, want)
	}
	// Dead letters are produced at least once: a replay produces the
	// rejected records' dead letters again.
	dlqAfter := topicEnd(t, env, env.Config.Topics.VotesDLQ)
	if want := dlqBefore + 2*(total-rep.Votes); dlqAfter != want {
		t.Errorf("votes_dlq holds %d records after two replays, want %d (each rejected record dead-lettered again per replay)", dlqAfter, want)
	}
	t.Logf("replay drill: votes_topic of %d records (%d votes counted, %d rejected %v) replayed twice from the earliest offset: %d records replayed in %.1fs, tallies, votes and rejections unchanged, audit OK; votes_dlq %d -> %d (re-dead-lettered on replay)",
		total, rep.Votes, total-rep.Votes, rep.Rejected, replayed, time.Since(began).Seconds(), dlqBefore, dlqAfter)
}

// pace returns a trigger Limiter shared by all of a function's partitions
// that lets through about rate records per second.
func pace(rate float64) func(ctx context.Context, n int) error {
	var mu sync.Mutex
	next := time.Now()
	return func(ctx context.Context, n int) error {
		mu.Lock()
		now := time.Now()
		if next.Before(now) {
			next = now
		}
		wait := next.Sub(now)
		next = next.Add(time.Duration(float64(n) / rate * float64(time.Second)))
		mu.Unlock()
		select {
		case <-time.After(wait):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// TestDrillDatabaseOutage runs the tally with Postgres behind a TCP proxy
// and, mid-run, loses the answers to some COMMITs (the transaction is
// durable, the tally sees an error) and then cuts every connection and
// refuses new ones for a few seconds: the pipeline stalls, retries with
// backoff, resumes and loses nothing.
func TestDrillDatabaseOutage(t *testing.T) {
	voters := pick[int64](20_000, 200_000)
	outage := pick(3*time.Second, 10*time.Second)
	outages := pick(1, 3)
	rate := pick(5_000.0, 10_000.0) // tally records per second, so the run spans the outages

	direct := testkit.NewDatabase(t)
	u, err := url.Parse(direct)
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := faultproxy.Start(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	env := drillEnv(t, 4, map[string]string{"DATABASE_URL": withHost(t, direct, proxy.Addr())}, harness.EnvOptions{InMemory: true})
	// Readings during the outage go around the proxy.
	observer, err := pgxpool.New(context.Background(), direct)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(observer.Close)
	tallied := func() int64 {
		var n int64
		if err := observer.QueryRow(context.Background(), `SELECT count(*) FROM votes`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	ctx, cancel := context.WithTimeout(context.Background(), pick(2*time.Minute, 15*time.Minute))
	defer cancel()
	if _, err := registerElection(ctx, env, voters, 0); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	ballot := startFunction(t, env, infra.Ballot, 0)
	inv, err := env.Invoker(infra.Tally)
	if err != nil {
		t.Fatal(err)
	}
	tr := newTrigger(t, env, infra.Tally, inv, 500, nil)
	// The retries the template gives the tally's mapping (the same table):
	// forever. A short backoff makes each outage last far longer than the
	// 10 retries after which Lambda would move past a batch that has a
	// failure destination.
	tallyTrigger, _ := infra.TriggerFor(infra.Tally)
	tr.GiveUp = env.GiveUp(tallyTrigger)
	if tr.GiveUp != nil {
		t.Fatalf("the tally's mapping gives up on failed batches after %d retries: votes would be skipped", tr.GiveUp.After)
	}
	tr.Backoff = trigger.Backoff{Min: 10 * time.Millisecond, Max: 100 * time.Millisecond}
	tr.Limiter = pace(rate)
	tally := start(tr)
	t.Cleanup(func() { tally.stop() }) //nolint:errcheck

	// Lost COMMIT acknowledgements.
	eventually(t, time.Minute, "a fifth of the votes tallied", func() (bool, error) { return tallied() >= voters/5, nil })
	const lostAcks = 3
	proxy.DropCommitAcks(lostAcks)
	eventually(t, 30*time.Second, "commit answers lost", func() (bool, error) { return proxy.AcksDropped.Load() == lostAcks, nil })

	// Outages: all connections cut, none accepted.
	var stalls []string
	for i := range outages {
		eventually(t, time.Minute, "more votes tallied", func() (bool, error) {
			return tallied() >= voters*int64(2+i)/int64(2+outages+1), nil
		})
		failures := tally.Stats.Failures.Load()
		proxy.Down()
		time.Sleep(300 * time.Millisecond) // transactions in flight fail
		at := tallied()
		time.Sleep(outage)
		if n := tallied(); n != at {
			t.Errorf("outage %d: %d votes counted while the database was unreachable", i+1, n-at)
		}
		if n := tally.Stats.Failures.Load() - failures; n <= 10 {
			t.Errorf("outage %d: %d invocations failed while the database was unreachable; want more than 10, the retries a mapping with a failure destination allows", i+1, n)
		}
		stalls = append(stalls, fmt.Sprintf("stalled at %d/%d votes for %s with %d failed invocations",
			at, voters, outage, tally.Stats.Failures.Load()-failures))
		proxy.Up()
	}

	eventually(t, pick(time.Minute, 10*time.Minute), "every vote counted after the outage", func() (bool, error) {
		if n := tallied(); n != voters {
			return false, fmt.Errorf("%d of %d", n, voters)
		}
		return caughtUp(ctx, env, mustGroup(t, infra.Ballot), mustGroup(t, infra.Tally))
	})
	if err := tally.stop(); err != nil {
		t.Fatal(err)
	}
	if err := ballot.stop(); err != nil {
		t.Fatal(err)
	}
	rep := auditOK(t, env, voters)
	if len(rep.Rejected) != 0 {
		t.Errorf("votes rejected: %v", rep.Rejected)
	}
	if got, want := candidateTotals(t, env), expectedTotals(t, env); !maps.Equal(got, want) {
		t.Errorf("candidate totals %v, want the true result %v", got, want)
	}
	// A batch whose COMMIT answer was lost is retried and found already counted.
	if n := tally.Stats.Get("redelivered"); n == 0 {
		t.Error("no retried batch found its votes already counted, yet COMMIT answers were lost")
	}
	t.Logf("database outage drill: %d voters, all counted once in %.1fs; %d COMMIT answers lost (batches retried, %d votes found already counted); %d outage(s) of %s: %v; %d connections cut, %d refused; %d tally invocations, %d failed and retried",
		voters, time.Since(began).Seconds(), proxy.AcksDropped.Load(), tally.Stats.Get("redelivered"), outages, outage,
		stalls, proxy.Cut.Load(), proxy.Refused.Load(), tally.Stats.Invocations.Load(), tally.Stats.Failures.Load())
}
