package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/votingpipe/voting/shared/election"
	"github.com/votingpipe/voting/shared/generator"
	"github.com/votingpipe/voting/shared/store"
)

// An election records where its records start and what carries them when
// it is first registered; resuming it keeps both, and registering it on
// another carrier is refused. The audit accounts from the starts on and
// names the offset ranges nobody decided.
func TestElectionOwnsItsRecordsFromItsStarts(t *testing.T) {
	st := open(t)
	ctx := context.Background()
	cands := generator.Candidates(42, 3)
	rows := []election.WeightedCandidate{{Candidate: cands[0], Weight: 1}, {Candidate: cands[1], Weight: 1}, {Candidate: cands[2], Weight: 1}}
	carrier := election.Carrier{Transport: "kafka", Broker: "cluster a"}
	starts := election.Starts{}
	starts.Set(topic, 0, 100)
	starts.Set(topic, 1, 7)
	starts.Set("voters_topic", 0, 40)
	e := election.Election{Name: "second", Seed: 42, Voters: 4, Candidates: 3, Fingerprint: "f", Carrier: carrier, Starts: starts}
	first, err := st.BeginElection(ctx, e, rows)
	if err != nil {
		t.Fatal(err)
	}
	if first.ID == "" || first.Carrier != carrier || first.Starts.Of(topic, 0) != 100 || first.Starts.Of("voters_topic", 0) != 40 {
		t.Fatalf("registered %+v", first)
	}

	// Resuming later, when the topics have grown: the starts stay.
	later := election.Starts{}
	later.Set(topic, 0, 500)
	e.Starts = later
	again, err := st.BeginElection(ctx, e, rows)
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != first.ID || again.Starts.Of(topic, 0) != 100 || again.Starts.Of(topic, 1) != 7 {
		t.Fatalf("a resumed election must keep its identity and starts: %+v", again)
	}
	read, err := st.Election(ctx)
	if err != nil || read.ID != first.ID || read.Starts.String() != first.Starts.String() {
		t.Fatalf("Election() = %+v, %v", read, err)
	}

	e.Carrier = election.Carrier{Transport: "nats", Broker: "server x"}
	if _, err := st.BeginElection(ctx, e, rows); !errors.Is(err, election.ErrOtherCarrier) {
		t.Fatalf("registering on another carrier: %v, want ErrOtherCarrier", err)
	}

	// Partition 0 holds offsets 0-109: 100-104 counted or rejected, the
	// rest never processed. Partition 1 holds 7-8, both counted.
	voters := make([]election.Voter, 4)
	for i := range voters {
		voters[i] = generator.Voter(42, i)
	}
	if err := st.CopyVoters(ctx, election.RollChunk{Voters: voters, Voting: int64(len(voters))}); err != nil {
		t.Fatal(err)
	}
	if err := st.CompleteRoll(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Tally(ctx, election.TallyBatch{Election: first.ID, Topic: topic, Partition: 0,
		Ballots: []election.BallotAt{ballot(100, voters[0], cands[0]), ballot(101, voters[1], cands[1])},
		Rejects: []election.RejectedRecord{{Offset: 102, Reason: election.ReasonMalformed}, {Offset: 104, Reason: election.ReasonMalformed}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Tally(ctx, election.TallyBatch{Election: first.ID, Topic: topic, Partition: 1,
		Ballots: []election.BallotAt{ballot(7, voters[2], cands[0]), ballot(8, voters[3], cands[2])}}); err != nil {
		t.Fatal(err)
	}
	rep := audit(t, st, map[int32]int64{0: 110, 1: 9})
	if rep.OK() {
		t.Fatal("the audit passed with offsets never processed")
	}
	p0, p1 := rep.Partitions[0], rep.Partitions[1]
	want := []store.OffsetRange{{From: 103, To: 103}, {From: 105, To: 109}}
	if p0.Start != 100 || p0.MissingCount != 6 || !slices.Equal(p0.Missing, want) {
		t.Errorf("partition 0: start %d, %d missing %v; want start 100, 6 missing %v", p0.Start, p0.MissingCount, p0.Missing, want)
	}
	if p1.Start != 7 || p1.MissingCount != 0 || p1.Counted != 2 || p1.Expected() != 2 {
		t.Errorf("partition 1: %+v", p1)
	}
	if rep.Skipped() != 107 {
		t.Errorf("skipped %d records of earlier elections, want 107", rep.Skipped())
	}
	var rest []election.RejectedRecord
	for _, o := range []int64{103, 105, 106, 107, 108, 109} {
		rest = append(rest, election.RejectedRecord{Offset: o, Reason: election.ReasonMalformed})
	}
	if _, err := st.Tally(ctx, election.TallyBatch{Election: first.ID, Topic: topic, Partition: 0, Rejects: rest}); err != nil {
		t.Fatal(err)
	}
	if rep := audit(t, st, map[int32]int64{0: 110, 1: 9}); !rep.OK() {
		t.Errorf("with offsets 100-109 all decided the audit must pass: %+v", rep.Partitions)
	}
}

// A batch judged against one election is refused once the database holds
// another (or none), so a stage never counts by stale start positions.
func TestTallyRefusesAnotherElection(t *testing.T) {
	st := open(t)
	ctx := context.Background()
	if _, err := st.Tally(ctx, election.TallyBatch{Topic: topic}); !errors.Is(err, election.ErrNoElection) {
		t.Fatalf("with no election: %v, want ErrNoElection", err)
	}
	voters, cands := seed(t, st, 2)
	if _, err := st.Tally(ctx, election.TallyBatch{Election: "00000000-0000-0000-0000-000000000000", Topic: topic,
		Ballots: []election.BallotAt{ballot(0, voters[0], cands[0])}}); !errors.Is(err, election.ErrElectionChanged) {
		t.Fatalf("judged against another election: %v, want ErrElectionChanged", err)
	}
	if n := count(t, st, `SELECT count(*) FROM votes`); n != 0 {
		t.Fatalf("%d votes counted for the wrong election", n)
	}
}

// Totals read under the lock are published in the order they were read:
// however many batches commit and publish at once, the last record of every
// key (what compaction keeps) equals the recount, versions increase in
// publish order, and no key's total ever goes down.
func TestPublishTotalsLastRecordIsTheRecount(t *testing.T) {
	st := open(t)
	ctx := context.Background()
	voters, cands := seed(t, st, 600)
	type rec struct {
		key     string
		total   int64
		version int64
	}
	var mu sync.Mutex
	var log []rec // the "topic": appended in publish order
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for p := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := 0; b < 10; b++ {
				var batch []election.BallotAt
				for i := p*100 + b*10; i < p*100+b*10+10; i++ {
					batch = append(batch, ballot(int64(i), voters[i], cands[i%3]))
				}
				res, err := st.Tally(ctx, election.TallyBatch{Topic: topic, Partition: int32(p), Ballots: batch})
				if err != nil {
					errs <- err
					return
				}
				err = st.PublishTotals(ctx, election.TotalsRequest{Candidates: res.Candidates, States: res.States}, func(t election.Totals) error {
					mu.Lock()
					defer mu.Unlock()
					for _, c := range t.Candidates {
						log = append(log, rec{"c:" + c.CandidateID, c.TotalVotes, c.Version})
					}
					for _, s := range t.States {
						log = append(log, rec{"s:" + s.State, s.TotalVotes, s.Version})
						var sum int64
						for c, n := range s.VotesByCandidate {
							log = append(log, rec{"r:" + s.State + "/" + c, n, s.Version})
							sum += n
						}
						if sum != s.TotalVotes {
							errs <- fmt.Errorf("state %s: votes by candidate sum to %d, total %d", s.State, sum, s.TotalVotes)
						}
					}
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	last := map[string]int64{}
	var version int64
	for i, r := range log {
		if r.version < version {
			t.Fatalf("record %d has version %d after version %d", i, r.version, version)
		}
		version = r.version
		if r.total < last[r.key] {
			t.Fatalf("%s went down from %d to %d", r.key, last[r.key], r.total)
		}
		last[r.key] = r.total
	}
	recount := map[string]int64{}
	rows, err := st.Pool().Query(ctx, `SELECT 'c:' || candidate_id, count(*) FROM votes GROUP BY 1
		UNION ALL SELECT 's:' || v.address_state, count(*) FROM votes JOIN voters v USING (voter_id) GROUP BY 1
		UNION ALL SELECT 'r:' || v.address_state || '/' || candidate_id, count(*) FROM votes JOIN voters v USING (voter_id) GROUP BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k string
		var n int64
		if err := rows.Scan(&k, &n); err != nil {
			t.Fatal(err)
		}
		recount[k] = n
	}
	if len(recount) == 0 || fmt.Sprint(recount) != fmt.Sprint(last) {
		t.Fatalf("last records %v\nrecount      %v", last, recount)
	}
}

// Reset drops every object the migrations create, so a new election can be
// registered in the same database; a migration that adds an object without
// its DROP in infra/reset.sql fails this test.
func TestResetDropsEverythingTheMigrationsCreate(t *testing.T) {
	st := open(t)
	ctx := context.Background()
	seed(t, st, 3)
	if err := st.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	rows, err := st.Pool().Query(ctx, `
		SELECT c.relkind::text || ' ' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public'
		UNION ALL
		SELECT 'function ' || p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'
		UNION ALL
		SELECT 'type ' || t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
		WHERE n.nspname = 'public' AND t.typtype NOT IN ('b', 'p') AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.reltype = t.oid)`)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		left = append(left, s)
	}
	if len(left) > 0 {
		t.Fatalf("reset left %v: add their DROP to infra/reset.sql", left)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	seed(t, st, 3)
}

func TestIsTransient(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	_, unreachable := pgconn.Connect(ctx, "postgres://postgres@127.0.0.1:1/x?connect_timeout=2")
	cancel()
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"unreachable server", unreachable, true},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"connection failure", fmt.Errorf("tally: %w", &pgconn.PgError{Code: "08006"}), true},
		{"serialization failure", &pgconn.PgError{Code: "40001"}, true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"bad password", &pgconn.PgError{Code: "28P01"}, false},
		{"another election", fmt.Errorf("begin: %w", election.ErrDifferentElection), false},
		{"canceled", context.Canceled, false},
		{"nil", nil, false},
	} {
		if got := store.IsTransient(c.err); got != c.want {
			t.Errorf("%s (%v): transient %v, want %v", c.name, c.err, got, c.want)
		}
	}
}

func count(t *testing.T, st *store.Store, sql string) int64 {
	t.Helper()
	var n int64
	if err := st.Pool().QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// An election tallied before results_by_state existed gets its results from
// its votes when the migration adds them: the audit balances straight after.
func TestResultsMigrationBackfillsATalliedElection(t *testing.T) {
	st := open(t)
	ctx := context.Background()
	voters, cands := seed(t, st, 30)
	for p := range int32(2) {
		var b []election.BallotAt
		for i := int(p); i < len(voters); i += 2 {
			b = append(b, ballot(int64(len(b)), voters[i], cands[i%3]))
		}
		if _, err := st.Tally(ctx, election.TallyBatch{Topic: topic, Partition: p, Ballots: b}); err != nil {
			t.Fatal(err)
		}
	}
	// Back to the schema before the migration.
	if _, err := st.Pool().Exec(ctx, `DROP VIEW results_by_state; DROP TABLE tally_state_candidate;
		DELETE FROM schema_migrations WHERE name = '0004_results_by_state.sql'`); err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	rep := audit(t, st, map[int32]int64{0: 15, 1: 15})
	if !rep.OK() {
		t.Fatalf("audit after the migration: %+v", rep.Checks)
	}
	if n := count(t, st, `SELECT sum(total_votes) FROM results_by_state`); n != 30 {
		t.Fatalf("results_by_state sums to %d votes, want 30", n)
	}
	if n := count(t, st, `SELECT count(DISTINCT shard) FROM tally_state_candidate`); n != 2 {
		t.Errorf("the backfill filled %d shards, want the 2 partitions", n)
	}
}
