// Package testkit sets up real parts for the tests of the shared packages:
// a fresh Postgres database per test (never a mock), a migrated store on it,
// an election of generated voters registered through the store's own
// functions, and a pool for a test's own checks of the tables. Only tests
// import it.
package testkit

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/votingpipe/voting/shared/election"
	"github.com/votingpipe/voting/shared/generator"
	"github.com/votingpipe/voting/shared/store"
	"github.com/votingpipe/voting/shared/store/storetest"
)

// DefaultServer, Server, NewDatabase and Pool are storetest's.
const DefaultServer = storetest.DefaultServer

var (
	Server      = storetest.Server
	NewDatabase = storetest.NewDatabase
	Pool        = storetest.Pool
)

// Count runs a query returning one number.
func Count(t testing.TB, p *pgxpool.Pool, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := p.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// OpenStore returns a migrated store on a fresh database, and a pool on the
// same database for the test's checks; both go when t ends.
func OpenStore(t testing.TB) (*store.Store, *pgxpool.Pool) {
	t.Helper()
	dsn := NewDatabase(t)
	st, err := store.Open(context.Background(), dsn, store.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st, Pool(t, dsn)
}

// Register registers an election named name of the candidates (weight 1
// each) and n voters generated from seed, and returns the voters.
func Register(t testing.TB, st *store.Store, name string, seed int64, cands []election.Candidate, n int) []election.Voter {
	t.Helper()
	ctx := context.Background()
	rows := make([]election.WeightedCandidate, len(cands))
	for i, c := range cands {
		rows[i] = election.WeightedCandidate{Candidate: c, Weight: 1}
	}
	if _, err := st.BeginElection(ctx, election.Election{Name: name, Seed: seed, Voters: int64(n),
		Candidates: len(cands), Fingerprint: name}, rows); err != nil {
		t.Fatal(err)
	}
	voters := make([]election.Voter, n)
	for i := range voters {
		voters[i] = generator.Voter(seed, i)
	}
	if err := st.CopyVoters(ctx, election.RollChunk{Voters: voters, Voting: int64(n)}); err != nil {
		t.Fatal(err)
	}
	if err := st.CompleteRoll(ctx); err != nil {
		t.Fatal(err)
	}
	return voters
}
