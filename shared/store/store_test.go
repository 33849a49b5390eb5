package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/votingpipe/voting/shared/election"
	"github.com/votingpipe/voting/shared/generator"
	"github.com/votingpipe/voting/shared/internal/testkit"
	"github.com/votingpipe/voting/shared/store"
)

const topic = "votes_topic"

// open returns a migrated store on a fresh database.
func open(t *testing.T) *store.Store { return openStore(t) }

func openStore(t testing.TB) *store.Store {
	st, _ := testkit.OpenStore(t)
	return st
}

// seed registers an election of n generated voters and 3 candidates.
func seed(t *testing.T, st *store.Store, n int) ([]election.Voter, []election.Candidate) {
	t.Helper()
	cands := generator.Candidates(42, 3)
	return testkit.Register(t, st, "test", 42, cands, n), cands
}

func ballot(off int64, v election.Voter, c election.Candidate) election.BallotAt {
	return election.BallotAt{Offset: off, Payload: []byte(v.VoterID),
		Ballot: election.Ballot{VoterID: v.VoterID, CandidateID: c.CandidateID, VotingTime: time.Date(2026, 11, 3, 10, 0, int(off%60), 0, time.UTC)}}
}

func audit(t *testing.T, st *store.Store, ends map[int32]int64) store.AuditReport {
	t.Helper()
	rep, err := st.Audit(context.Background(), topic, ends)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestMigrateIsIdempotentAndConcurrent(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, testkit.NewDatabase(t), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- st.Migrate(ctx) }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent migrate: %v", err)
		}
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("repeated migrate: %v", err)
	}
	names, err := st.Migrations(ctx)
	if err != nil || len(names) < 2 || names[0] != "0001_election.sql" {
		t.Fatalf("applied migrations %v (%v)", names, err)
	}
}

func TestEnsureDatabaseCreatesIt(t *testing.T) {
	ctx := context.Background()
	base := testkit.NewDatabase(t)
	name := fmt.Sprintf("vt_ensure_%d", rand.Int64())
	dsn, err := store.WithDatabase(base, name)
	if err != nil {
		t.Fatal(err)
	}
	defer store.DropDatabase(context.Background(), testkit.Server(), name) //nolint:errcheck
	for range 2 {                                                          // the second call finds it
		if err := store.EnsureDatabase(ctx, dsn); err != nil {
			t.Fatal(err)
		}
	}
	st, err := store.Open(ctx, dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
}

func TestBeginElectionRefusesAnotherElection(t *testing.T) {
	st := open(t)
	seed(t, st, 10)
	_, err := st.BeginElection(context.Background(), election.Election{Name: "other", Seed: 7, Voters: 10, Candidates: 3, Fingerprint: "other"}, nil)
	if err == nil {
		t.Fatal("a second, different election was accepted")
	}
}

func TestTallyOutcomes(t *testing.T) {
	st := open(t)
	ctx := context.Background()
	voters, cands := seed(t, st, 20)

	first, err := st.Tally(ctx, election.TallyBatch{Topic: topic, Partition: 0, Ballots: []election.BallotAt{
		ballot(0, voters[0], cands[0]),
		ballot(1, voters[1], cands[1]),
		ballot(2, voters[0], cands[0]), // same choice again: duplicate
		ballot(3, voters[1], cands[2]), // a different second ballot
		ballot(4, election.Voter{VoterID: "nobody"}, cands[0]),
		ballot(5, voters[2], election.Candidate{CandidateID: "ghost"}),
	}, Rejects: []election.RejectedRecord{{Offset: 6, Reason: election.ReasonMalformed, Detail: "invalid JSON", Payload: []byte("{")}}})
	if err != nil {
		t.Fatal(err)
	}
	if first.Counted != 2 {
		t.Errorf("counted %d, want 2", first.Counted)
	}
	want := map[int64]election.Reason{2: election.ReasonDuplicate, 3: election.ReasonAlreadyVoted, 4: election.ReasonUnknownVoter,
		5: election.ReasonUnknownCandidate, 6: election.ReasonMalformed}
	got := map[int64]election.Reason{}
	for _, r := range first.Rejected {
		got[r.Offset] = r.Reason
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("rejections %v, want %v", got, want)
	}
	if len(first.Candidates) != 2 || len(first.States) == 0 {
		t.Errorf("totals of what changed: %+v %+v", first.Candidates, first.States)
	}

	// The same batch again: nothing changes, the same rejections come back
	// (so their dead letters are produced even if the first attempt's were lost).
	again, err := st.Tally(ctx, election.TallyBatch{Topic: topic, Partition: 0, Ballots: []election.BallotAt{
		ballot(0, voters[0], cands[0]), ballot(1, voters[1], cands[1]), ballot(2, voters[0], cands[0]),
		ballot(3, voters[1], cands[2]), ballot(4, election.Voter{VoterID: "nobody"}, cands[0]),
		ballot(5, voters[2], election.Candidate{CandidateID: "ghost"}),
	}, Rejects: []election.RejectedRecord{{Offset: 6, Reason: election.ReasonMalformed}}})
	if err != nil {
		t.Fatal(err)
	}
	if again.Counted != 0 || again.Redelivered != 6 || len(again.Rejected) != 5 {
		t.Errorf("redelivery: counted %d redelivered %d rejected %d", again.Counted, again.Redelivered, len(again.Rejected))
	}
	details := map[int64]string{}
	for _, r := range first.Rejected {
		details[r.Offset] = r.Detail
	}
	for _, r := range again.Rejected {
		if r.Offset != 6 && r.Detail != details[r.Offset] {
			t.Errorf("offset %d: redelivered rejection says %q, first said %q", r.Offset, r.Detail, details[r.Offset])
		}
	}
	if len(again.Candidates) != 0 || len(again.States) != 0 {
		t.Errorf("a redelivered batch changed totals: %v %v", again.Candidates, again.States)
	}

	// A copy of voter 0's vote on another partition is a duplicate.
	other, err := st.Tally(ctx, election.TallyBatch{Topic: topic, Partition: 1, Ballots: []election.BallotAt{ballot(0, voters[0], cands[0]), ballot(1, voters[3], cands[0])}})
	if err != nil {
		t.Fatal(err)
	}
	if other.Counted != 1 || len(other.Rejected) != 1 || other.Rejected[0].Reason != election.ReasonDuplicate {
		t.Errorf("other partition: %+v", other)
	}

	rep := audit(t, st, map[int32]int64{0: 7, 1: 2})
	if !rep.OK() || rep.Votes != 3 {
		t.Fatalf("audit: votes %d ok %v %+v", rep.Votes, rep.OK(), rep)
	}
}

// The tally's central promise: however often and in whatever order batches
// are redelivered, and however many run at once on different partitions,
// every vote is counted exactly once.
func TestTallyExactlyOnceUnderRedeliveryAndConcurrency(t *testing.T) {
	st := open(t)
	ctx := context.Background()
	const n, parts, batch = 4000, 4, 250
	voters, cands := seed(t, st, n)

	// Partition p holds voters i%parts == p, in offset order, plus every
	// 50th voter's vote a second time (as a redelivered ballot stage would).
	streams := make([][]election.BallotAt, parts)
	for i, v := range voters {
		p := i % parts
		c := cands[election.Choose(42, v.VoterID, []float64{1, 1, 1})]
		streams[p] = append(streams[p], ballot(int64(len(streams[p])), v, c))
		if i%50 == 0 {
			streams[p] = append(streams[p], ballot(int64(len(streams[p])), v, c))
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, parts)
	for p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(1, uint64(p))) // one per goroutine: a Rand is not safe to share
			s := streams[p]
			var batches [][]election.BallotAt
			for i := 0; i < len(s); i += batch {
				batches = append(batches, s[i:min(i+batch, len(s))])
			}
			// Deliver in order, then redeliver every batch twice more in
			// shuffled order, as a consumer restarted from old offsets would.
			order := make([]int, 0, 3*len(batches))
			for i := range batches {
				order = append(order, i)
			}
			for range 2 {
				for _, i := range rng.Perm(len(batches)) {
					order = append(order, i)
				}
			}
			for _, i := range order {
				if _, err := st.Tally(ctx, election.TallyBatch{Topic: topic, Partition: int32(p), Ballots: batches[i]}); err != nil {
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
	ends := map[int32]int64{}
	for p := range parts {
		ends[int32(p)] = int64(len(streams[p]))
	}
	rep := audit(t, st, ends)
	if !rep.OK() {
		t.Fatalf("audit failed: %+v", rep)
	}
	if rep.Votes != n {
		t.Fatalf("votes %d, want %d", rep.Votes, n)
	}
	if rep.Rejected["duplicate"] != n/50 {
		t.Fatalf("duplicates %d, want %d", rep.Rejected["duplicate"], n/50)
	}
}

func TestAuditDetectsTampering(t *testing.T) {
	tests := []struct{ name, sql string }{
		{"nothing", ``},
		{"inflated tally", `UPDATE tally_candidate SET votes = votes + 1 WHERE shard = 0 AND candidate_id = (SELECT min(candidate_id) FROM tally_candidate)`},
		{"vote without tally", `INSERT INTO votes (voter_id, candidate_id, voting_time, src_partition, src_offset)
			SELECT voter_id, (SELECT min(candidate_id) FROM candidates), now(), 0, 2 FROM voters WHERE voter_id NOT IN (SELECT voter_id FROM votes) LIMIT 1`},
		{"counted and rejected", `INSERT INTO rejected_votes (topic, partition, "offset", reason) VALUES ('votes_topic', 0, 1, 'malformed')`},
		{"state tally lost", `DELETE FROM tally_state WHERE state = (SELECT min(state) FROM tally_state)`},
		{"result shard tampered", `UPDATE tally_state_candidate SET votes = votes + 1 WHERE shard = 0 AND state = (SELECT min(state) FROM tally_state_candidate)`},
		{"result moved to another candidate", `UPDATE tally_state_candidate SET candidate_id = (SELECT min(candidate_id) FROM candidates WHERE candidate_id NOT IN (SELECT candidate_id FROM votes))
			WHERE ctid = (SELECT min(ctid) FROM tally_state_candidate)`},
		{"vote of no voter", `UPDATE votes SET voter_id = 'nobody' WHERE src_offset = 0`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := open(t)
			ctx := context.Background()
			voters, cands := seed(t, st, 10)
			if _, err := st.Tally(ctx, election.TallyBatch{Topic: topic, Partition: 0, Ballots: []election.BallotAt{
				ballot(0, voters[0], cands[0]), ballot(1, voters[1], cands[1])}}); err != nil {
				t.Fatal(err)
			}
			ends := map[int32]int64{0: 2}
			if tt.sql != "" {
				if _, err := st.Pool().Exec(ctx, tt.sql); err != nil {
					t.Fatal(err)
				}
				if tt.name == "vote without tally" {
					ends[0] = 3
				}
			}
			rep := audit(t, st, ends)
			if rep.OK() != (tt.sql == "") {
				t.Fatalf("audit OK = %v after %s: %+v", rep.OK(), tt.name, rep)
			}
			if tt.sql == "" {
				// A record the broker has that the database does not account for.
				if rep := audit(t, st, map[int32]int64{0: 3}); rep.OK() {
					t.Fatal("audit did not notice an unaccounted offset")
				}
			}
		})
	}
}

func TestRollIsAppendOnly(t *testing.T) {
	st := open(t)
	ctx := context.Background()
	voters, cands := seed(t, st, 3)
	for _, sql := range []string{
		`DELETE FROM candidates`,
		`TRUNCATE candidates CASCADE`,
		`UPDATE candidates SET candidate_id = 'other' WHERE candidate_id = '` + cands[0].CandidateID + `'`,
		`DELETE FROM voters WHERE voter_id = '` + voters[0].VoterID + `'`,
		`TRUNCATE voters CASCADE`,
		`UPDATE voters SET voter_id = 'other' WHERE voter_id = '` + voters[0].VoterID + `'`,
	} {
		if _, err := st.Pool().Exec(ctx, sql); err == nil {
			t.Errorf("%s succeeded; votes could lose their candidate", sql)
		}
	}
	if _, err := st.Pool().Exec(ctx, `UPDATE candidates SET biography = 'new' WHERE candidate_id = $1`, cands[0].CandidateID); err != nil {
		t.Errorf("other columns must stay editable: %v", err)
	}
}

// The store's statements are short: JIT compilation only ever cost them
// (30-45 ms of compiling the totals' read under the publish lock).
func TestConnectionsRunWithoutJIT(t *testing.T) {
	st := openStore(t)
	var jit string
	if err := st.Pool().QueryRow(context.Background(), `SHOW jit`).Scan(&jit); err != nil {
		t.Fatal(err)
	}
	if jit != "off" {
		t.Errorf("jit is %q on the store's connections, want off", jit)
	}
}
