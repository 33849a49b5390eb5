// Package testkit sets up real parts for the harness's tests: a fresh
// Postgres database per test and a pool for a test's own checks. Only tests
// import it.
package testkit

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/votingpipe/voting/shared/config"
	"github.com/votingpipe/voting/shared/store"
)

// Server is the Postgres server the tests create their databases on
// (VOTING_TEST_DATABASE_URL, or the local one).
func Server() string {
	if s := os.Getenv("VOTING_TEST_DATABASE_URL"); s != "" {
		return s
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// NewDatabase creates an empty database for t, dropped when t ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	dsn, drop, err := store.CreateScratch(context.Background(), Server(), t.Name())
	if err != nil {
		t.Fatalf("the tests need Postgres at %s (start it, or set VOTING_TEST_DATABASE_URL): %v", config.RedactedURL(Server()), err)
	}
	t.Cleanup(drop)
	return dsn
}

// Pool opens a pool on dsn for the test's own queries; it closes when t ends.
func Pool(t testing.TB, dsn string) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}
