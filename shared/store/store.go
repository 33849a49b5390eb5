// Package store is the pipeline's Postgres layer: connection and database
// creation, the ordered migrations from infra/, registration of the roll,
// the exactly-once tally of vote batches and the read side (results, audit).
//
// Every write is idempotent, so a redelivered Kafka batch changes nothing.
package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/votingpipe/voting/shared/config"
)

// Store is a pool of connections to the election database.
type Store struct {
	pool *pgxpool.Pool
	dsn  string
	// withoutResultsByState is Options.WithoutResultsByState.
	withoutResultsByState bool
}

// Options tune Open.
type Options struct {
	// MaxConns bounds the pool (default 8).
	MaxConns int32
	// CreateDatabase creates the database named in the URL when it does not
	// exist (local runs and tests; never in Lambda).
	CreateDatabase bool
	// Migrate applies the migrations not yet applied (see Migrate).
	Migrate bool
	// WithoutResultsByState is for benchmarks only: Tally then skips the
	// candidate-by-state result (tally_state_candidate, read as
	// results_by_state), so that the benchmark can measure what
	// maintaining it costs. Results by state stay empty; never set it for
	// an election whose results anyone reads.
	WithoutResultsByState bool
}

// Open connects to dsn and checks the connection. Errors never carry the
// password.
func Open(ctx context.Context, dsn string, o Options) (*Store, error) {
	if o.CreateDatabase {
		if err := EnsureDatabase(ctx, dsn); err != nil {
			return nil, err
		}
	}
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse DATABASE_URL: %s", config.RedactSecrets(err.Error(), dsn))
	}
	if o.MaxConns > 0 {
		pc.MaxConns = o.MaxConns
	}
	if _, set := pc.ConnConfig.RuntimeParams["jit"]; !set {
		// Every statement here is short. The planner overestimates the
		// small, often-updated tally tables, so the totals' read crossed
		// jit_above_cost and spent 30-45 ms compiling for a 4 ms query,
		// holding the lock that orders the publishes: measured, drains
		// with 6 partitions ran at half the rate of 2.
		pc.ConnConfig.RuntimeParams["jit"] = "off"
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %s", config.RedactedURL(dsn), config.RedactSecrets(err.Error(), dsn))
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to %s: %s", config.RedactedURL(dsn), config.RedactSecrets(err.Error(), dsn))
	}
	st := &Store{pool: pool, dsn: dsn, withoutResultsByState: o.WithoutResultsByState}
	if o.Migrate {
		if err := st.Migrate(ctx); err != nil {
			pool.Close()
			return nil, err
		}
	}
	return st, nil
}

// Close closes the pool.
func (s *Store) Close() { s.pool.Close() }

// EnsureDatabase creates the database named in dsn if it does not exist,
// connecting to the server's postgres database to do so.
func EnsureDatabase(ctx context.Context, dsn string) error {
	cc, err := pgx.ParseConfig(dsn)
	if err != nil {
		return fmt.Errorf("parse DATABASE_URL: %s", config.RedactSecrets(err.Error(), dsn))
	}
	name := cc.Database
	if name == "" || name == "postgres" {
		return nil
	}
	// Fast path: the database exists.
	if conn, err := pgx.ConnectConfig(ctx, cc); err == nil {
		conn.Close(ctx)
		return nil
	}
	admin := cc.Copy()
	admin.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, admin)
	if err != nil {
		return fmt.Errorf("connect to %s to create database %s: %s", config.RedactedURL(dsn), name, config.RedactSecrets(err.Error(), dsn))
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if err != nil && !(errors.As(err, &pgErr) && (pgErr.Code == "42P04" || pgErr.Code == "23505")) {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// DatabaseExists reports whether the database named in dsn exists, asking
// the server's postgres database.
func DatabaseExists(ctx context.Context, dsn string) (bool, error) {
	cc, err := pgx.ParseConfig(dsn)
	if err != nil {
		return false, fmt.Errorf("parse DATABASE_URL: %s", config.RedactSecrets(err.Error(), dsn))
	}
	name := cc.Database
	admin := cc.Copy()
	admin.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, admin)
	if err != nil {
		return false, fmt.Errorf("connect to %s: %s", config.RedactedURL(dsn), config.RedactSecrets(err.Error(), dsn))
	}
	defer conn.Close(ctx)
	var exists bool
	err = conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists)
	return exists, err
}

// WithDatabase returns dsn with its database name replaced.
func WithDatabase(dsn, name string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return "", fmt.Errorf("DATABASE_URL must be a postgres:// URL to derive a database from it")
	}
	u.Path = "/" + strings.TrimPrefix(name, "/")
	return u.String(), nil
}
