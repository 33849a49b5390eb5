package harness_test

// An election owns its records: topics, state directories and streams
// outlive elections, and a new election must count exactly its own records
// whatever an earlier one left there.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/votingpipe/voting/infra"
	"github.com/votingpipe/voting/local/harness"
	"github.com/votingpipe/voting/local/internal/testkit"
	"github.com/votingpipe/voting/shared/broker/embedded"
	"github.com/votingpipe/voting/shared/config"
)

var electionFunctions = []string{infra.Register, infra.Ballot, infra.Tally}

type electionCase struct {
	voters int64
	seed   int64
	// resumed: voters republished on resume give duplicate votes, which
	// are rejected as such (and only as such).
	resumed bool
}

// runElection registers and runs an election to the end on env and checks
// it counted exactly its own voters, rejected nothing, and that the audit
// accounts for every record from its start.
func runElection(t *testing.T, env *harness.Env, c electionCase) harness.Summary {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	sum, err := harness.Run(ctx, env, harness.RunOptions{Voters: c.voters, Candidates: 3, Seed: c.seed, UntilDone: true,
		Functions: electionFunctions, Out: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Tallied != c.voters {
		t.Fatalf("tallied %d; want %d", sum.Tallied, c.voters)
	}
	if n := count(t, env, `SELECT count(*) FROM rejected_votes WHERE NOT ($1 AND reason = 'duplicate')`, c.resumed); n != 0 {
		t.Fatalf("%d records rejected: an earlier election's records were judged", n)
	}
	auditOK(t, env, c.voters)
	return sum
}

// interruptElection registers an election and stops the pipeline after a
// part of it is tallied, its consumer groups lagging behind the rest.
func interruptElection(t *testing.T, env *harness.Env, c electionCase) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		// Registration takes five seconds, so cancelling once a tenth is
		// tallied interrupts it even when the tally catches up in one batch.
		_, err := harness.Run(ctx, env, harness.RunOptions{Voters: c.voters, Candidates: 3, Seed: c.seed, Rate: float64(c.voters) / 5,
			Functions: electionFunctions, Out: io.Discard})
		done <- err
	}()
	eventually(t, time.Minute, "a part of the first election tallied", func() (bool, error) {
		return count(t, env, `SELECT count(*) FROM votes`) >= c.voters/10, nil
	})
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if n := count(t, env, `SELECT count(*) FROM votes`); n >= c.voters {
		t.Fatalf("the first election was not interrupted: %d of %d tallied", n, c.voters)
	}
}

// The scenario of a new user: an election on the embedded broker, the
// database dropped, and a new election on the same state directory; then
// another with another seed; then one after an election interrupted
// mid-way, its consumer groups lagging. Each counts exactly its own voters.
func TestNewElectionsOnALeftoverStateDir(t *testing.T) {
	state := t.TempDir()
	open := func() *harness.Env {
		env := drillEnv(t, 3, nil, harness.EnvOptions{StateDir: state}) // a fresh database each time
		if !env.Persistent {
			t.Fatal("the embedded broker does not keep its state")
		}
		return env
	}
	env := open()
	runElection(t, env, electionCase{voters: 600, seed: 42})
	env.Close()

	env = open()
	sum := runElection(t, env, electionCase{voters: 900, seed: 42}) // the same seed: the same voter IDs
	if rep := auditOK(t, env, 900); rep.Skipped() != 600 {
		t.Errorf("the audit says %d records of earlier elections precede this one, want 600", rep.Skipped())
	}
	_ = sum
	env.Close()

	env = open()
	runElection(t, env, electionCase{voters: 500, seed: 7})
	env.Close()

	env = open()
	interruptElection(t, env, electionCase{voters: 4000, seed: 42})
	env.Close()

	env = open()
	sum = runElection(t, env, electionCase{voters: 700, seed: 42})
	if sum.Skipped == 0 {
		t.Error("the run skipped no records, yet the interrupted election left its groups lagging")
	}
}

// Topics of a real Kafka cluster hold older elections (the normal case in
// production): elections on fresh databases share the same topics, one of
// them interrupted mid-way.
func TestNewElectionsOnAnExternalKafka(t *testing.T) {
	ext, err := embedded.Start(embedded.Options{}) // a broker this harness does not own
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ext.Close)
	brokers := map[string]string{"KAFKA_BROKERS": ext.Addrs()[0]}
	for _, step := range []struct {
		c         electionCase
		interrupt bool
	}{{electionCase{500, 42, false}, false}, {electionCase{3000, 42, false}, true}, {electionCase{800, 42, false}, false}, {electionCase{300, 9, false}, false}} {
		env := drillEnv(t, 2, brokers, harness.EnvOptions{})
		if env.Embedded != nil {
			t.Fatal("the harness started its own broker")
		}
		if step.interrupt {
			interruptElection(t, env, step.c)
		} else {
			runElection(t, env, step.c)
		}
		env.Close()
	}
}

// Stopping the harness mid-election and reopening the same persistent
// state directory and database resumes it exactly.
func TestKafkaResumesOnItsStateDir(t *testing.T) {
	state := t.TempDir()
	dsn := testkit.NewDatabase(t)
	vars := map[string]string{"DATABASE_URL": dsn}
	env := drillEnv(t, 3, vars, harness.EnvOptions{StateDir: state})
	interruptElection(t, env, electionCase{voters: 3000, seed: 42})
	before := count(t, env, `SELECT count(*) FROM votes`)
	env.Close()

	env = drillEnv(t, 3, vars, harness.EnvOptions{StateDir: state})
	sum := runElection(t, env, electionCase{voters: 3000, seed: 42, resumed: true})
	if sum.Tallied-sum.TalliedHere != before {
		t.Errorf("the resumed run says %d votes were counted before it, the database had %d", sum.Tallied-sum.TalliedHere, before)
	}
	if sum.Skipped != 0 {
		t.Errorf("the resumed election skipped %d of its own records", sum.Skipped)
	}
}

// NATS streams keep earlier runs' records: elections on fresh databases
// reuse one stream prefix deliberately, with the same seed and another,
// and after an interrupted one.
func TestNewElectionsOnLeftoverNATSStreams(t *testing.T) {
	prefix := natsPrefix()
	for _, step := range []struct {
		c         electionCase
		interrupt bool
	}{{electionCase{400, 42, false}, false}, {electionCase{3000, 42, false}, true}, {electionCase{600, 42, false}, false}, {electionCase{300, 5, false}, false}} {
		env, _ := natsEnvWith(t, 2, prefix, testkit.NewDatabase(t))
		if step.interrupt {
			interruptElection(t, env, step.c)
		} else {
			sum := runElection(t, env, step.c)
			natsAuditOK(t, env)
			if step.c.voters == 600 && sum.Skipped == 0 {
				t.Error("the run after an interrupted election skipped no records")
			}
		}
		env.Close()
	}
}

// Two harnesses started together on NATS, each running the tally, share
// the consumer group's partitions (neither exits, both count) and count
// every vote once.
func TestTwoNATSHarnessesShareTheTally(t *testing.T) {
	prefix, dsn := natsPrefix(), testkit.NewDatabase(t)
	front, _ := natsEnvWith(t, 4, prefix, dsn)
	backs := make([]*harness.Env, 2)
	for i := range backs {
		backs[i], _ = natsEnvWith(t, 4, prefix, dsn)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const voters = 6000
	var wg sync.WaitGroup
	sums := make([]harness.Summary, len(backs))
	errs := make(chan error, len(backs)+1)
	for i, env := range backs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			sums[i], err = harness.Run(ctx, env, harness.RunOptions{UntilDone: true, Functions: []string{infra.Tally},
				Out: io.Discard, LeaseTTL: 900 * time.Millisecond})
			errs <- err
		}()
	}
	// The votes arrive at a pace, so both tallies are up before the end.
	if _, err := harness.Run(ctx, front, harness.RunOptions{Voters: voters, Candidates: 3, Seed: 42, Rate: 2000, UntilDone: true,
		Functions: []string{infra.Register, infra.Ballot}, Out: io.Discard}); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range sums {
		if n := s.Stats[infra.Tally].Records.Load(); n == 0 {
			t.Errorf("harness %d counted nothing: the group's partitions were not shared", i)
		}
	}
	if n := count(t, front, `SELECT count(*) FROM votes`); n != voters {
		t.Fatalf("%d of %d votes counted", n, voters)
	}
	natsAuditOK(t, front)
	t.Logf("the two tallies processed %d and %d records", sums[0].Stats[infra.Tally].Records.Load(), sums[1].Stats[infra.Tally].Records.Load())
}

func natsPrefix() string {
	return fmt.Sprintf("e%d_%d_", time.Now().UnixNano()%1_000_000, natsTestSeq.Add(1))
}

// Two harnesses with state directories of their own write two dashboards,
// not one page they overwrite in turn; DASHBOARD_DIR still decides when set.
func TestTheDashboardLivesInItsStateDir(t *testing.T) {
	for _, c := range []struct{ env, want func(state string) string }{
		{func(string) string { return "" }, func(state string) string { return filepath.Join(state, "dashboard") }},
		{func(state string) string { return filepath.Join(state, "elsewhere") }, func(state string) string { return filepath.Join(state, "elsewhere") }},
	} {
		state := t.TempDir()
		vars := map[string]string{"DATABASE_URL": testkit.NewDatabase(t)}
		if d := c.env(state); d != "" {
			vars["DASHBOARD_DIR"] = d
		}
		cfg, err := config.LoadFrom[config.Config](vars, config.Local)
		if err != nil {
			t.Fatal(err)
		}
		env, err := harness.Open(context.Background(), cfg, quiet, harness.EnvOptions{StateDir: state})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := env.Config.Dashboard.Dir, c.want(state); got != want {
			t.Errorf("DASHBOARD_DIR=%q, state dir %s: the dashboard goes to %s, want %s", vars["DASHBOARD_DIR"], state, got, want)
		}
		env.Close()
	}
}
