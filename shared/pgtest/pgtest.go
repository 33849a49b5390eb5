// Package pgtest gives tests a fresh, real Postgres database: every test
// package (or test) gets its own, migrated by the code under test, and
// dropped when the test ends. Tests never mock the database.
package pgtest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultServer is the server tests use unless VOTING_TEST_DATABASE_URL names
// another (any database on it; tests create their own).
const DefaultServer = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

var counter atomic.Int64

func server() string {
	if s := os.Getenv("VOTING_TEST_DATABASE_URL"); s != "" {
		return s
	}
	return DefaultServer
}

var unsafe = regexp.MustCompile(`[^a-z0-9_]+`)

// New creates an empty database for t and returns its URL. The database is
// dropped when t finishes. The test fails at once, naming the server, when
// Postgres is unreachable.
func New(t testing.TB) string {
	t.Helper()
	name := strings.Trim(unsafe.ReplaceAllString(strings.ToLower(t.Name()), "_"), "_")
	if len(name) > 30 {
		name = name[:30]
	}
	name = fmt.Sprintf("vt_%s_%d_%d", name, os.Getpid(), counter.Add(1))
	dsn, err := Create(name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() { Drop(name) })
	return dsn
}

// Create creates the named database (dropping a leftover of the same name)
// and returns its URL.
func Create(name string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, server())
	if err != nil {
		return "", fmt.Errorf("the tests need Postgres at %s (start it, or set VOTING_TEST_DATABASE_URL): %w", server(), err)
	}
	defer conn.Close(ctx)
	id := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+id+" WITH (FORCE)"); err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+id); err != nil {
		return "", err
	}
	u, err := url.Parse(server())
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

// Drop drops the named database, disconnecting its sessions.
func Drop(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, server())
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)") //nolint:errcheck
}
