// Package storetest gives tests a fresh Postgres database of their own on
// the local server (or VOTING_TEST_DATABASE_URL's), dropped when they end,
// and a pool for their own checks. It is for tests only, as httptest is.
package storetest

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/votingpipe/voting/shared/config"
	"github.com/votingpipe/voting/shared/store"
)

// DefaultServer is the server tests use unless VOTING_TEST_DATABASE_URL names
// another (any database on it; tests create their own).
const DefaultServer = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// Server is the Postgres server the tests create their databases on.
func Server() string {
	if s := os.Getenv("VOTING_TEST_DATABASE_URL"); s != "" {
		return s
	}
	return DefaultServer
}

// NewDatabase creates an empty database for t and returns its URL; it is
// dropped when t ends. The test fails at once, naming the server, when
// Postgres is unreachable.
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
