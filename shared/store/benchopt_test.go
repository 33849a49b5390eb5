package store_test

import (
	"context"
	"strings"
	"testing"

	"github.com/votingpipe/voting/shared/election"
	"github.com/votingpipe/voting/shared/internal/testkit"
	"github.com/votingpipe/voting/shared/store"
)

// Options.WithoutResultsByState (benchmarks only) leaves out the
// candidate-by-state result and nothing else: every other total is the same.
func TestTallyWithoutResultsByState(t *testing.T) {
	if n := strings.Count(store.TallySQL, store.ResultsByStateSet); n != 1 {
		t.Fatalf("the tally statement contains the candidate-by-state grouping set %d times, want once", n)
	}
	ctx := context.Background()
	dsn := testkit.NewDatabase(t)
	st, err := store.Open(ctx, dsn, store.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	without, err := store.Open(ctx, dsn, store.Options{WithoutResultsByState: true})
	if err != nil {
		t.Fatal(err)
	}
	defer without.Close()
	voters, cands := seed(t, st, 20)
	tally := func(s *store.Store, partition int32, from int) {
		t.Helper()
		var b election.TallyBatch
		b.Topic, b.Partition = topic, partition
		for i := from; i < from+10; i++ {
			b.Ballots = append(b.Ballots, ballot(int64(i), voters[i], cands[i%3]))
		}
		if res, err := s.Tally(ctx, b); err != nil || res.Counted != 10 {
			t.Fatalf("counted %d (%v), want 10", res.Counted, err)
		}
	}
	check := func(counted, byState int64) {
		t.Helper()
		snap, err := st.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var cs, ss, rs int64
		for _, c := range snap.Candidates {
			cs += c.Votes
		}
		for _, s := range snap.States {
			ss += s.Votes
		}
		for _, r := range snap.Results {
			for _, v := range r.Votes {
				rs += v
			}
		}
		if snap.Counted != counted || cs != counted || ss != counted || rs != byState {
			t.Errorf("counted %d, by candidate %d, by state %d, results by state %d; want %d, %d, %d, %d",
				snap.Counted, cs, ss, rs, counted, counted, counted, byState)
		}
	}
	tally(without, 0, 0)
	check(10, 0)
	tally(st, 1, 10)
	check(20, 10)
}
