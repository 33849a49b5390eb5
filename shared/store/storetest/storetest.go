// Package storetest sets up real election databases for tests: a migrated
// store on a fresh Postgres database (see pgtest), and an election of
// generated voters registered through the store's own functions.
package storetest

import (
	"context"
	"testing"

	"github.com/votingpipe/voting/shared/election"
	"github.com/votingpipe/voting/shared/generator"
	"github.com/votingpipe/voting/shared/pgtest"
	"github.com/votingpipe/voting/shared/store"
)

// Open returns a migrated store on a fresh database; both go when t ends.
func Open(t testing.TB) *store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, pgtest.New(t), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return st
}

// Register registers an election named name of the candidates (weight 1
// each) and n voters generated from seed, and returns the voters.
func Register(t testing.TB, st *store.Store, name string, seed int64, cands []election.Candidate, n int) []election.Voter {
	t.Helper()
	ctx := context.Background()
	rows := make([]store.CandidateRow, len(cands))
	for i, c := range cands {
		rows[i] = store.CandidateRow{Candidate: c, Weight: 1}
	}
	if _, err := st.BeginElection(ctx, store.Election{Name: name, Seed: seed, Voters: int64(n),
		Candidates: len(cands), Fingerprint: name}, rows); err != nil {
		t.Fatal(err)
	}
	voters := make([]election.Voter, n)
	for i := range voters {
		voters[i] = generator.Voter(seed, i)
	}
	if err := st.CopyVoters(ctx, 0, voters); err != nil {
		t.Fatal(err)
	}
	if err := st.CompleteRoll(ctx); err != nil {
		t.Fatal(err)
	}
	return voters
}
