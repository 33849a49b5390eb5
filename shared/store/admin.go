package store

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/votingpipe/voting/shared/config"
)

// CreateDatabase creates the database name on the server of serverDSN
// (dropping a leftover of the same name) and returns its connection
// string: scratch databases for the benchmark and the tests.
func CreateDatabase(ctx context.Context, serverDSN, name string) (string, error) {
	dsn, err := WithDatabase(serverDSN, name)
	if err != nil {
		return "", err
	}
	DropDatabase(ctx, serverDSN, name)
	if err := EnsureDatabase(ctx, dsn); err != nil {
		return "", err
	}
	return dsn, nil
}

// DropDatabase drops the database name on the server of serverDSN,
// disconnecting its sessions; a missing database is no error.
func DropDatabase(ctx context.Context, serverDSN, name string) error {
	admin, err := WithDatabase(serverDSN, "postgres")
	if err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return fmt.Errorf("connect to %s: %s", config.RedactedURL(serverDSN), config.RedactSecrets(err.Error(), serverDSN))
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	return err
}

// ResetTallies forgets every vote counted and record rejected, keeping the
// election and its roll: the tally can count the same records again from
// scratch (the benchmark's drain).
func (s *Store) ResetTallies(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `TRUNCATE votes, tally_candidate, tally_state, tally_gender, tally_age_band, tally_timeline, tally_state_candidate, rejected_votes, ballots_cast`)
	if err != nil {
		return fmt.Errorf("reset tallies: %w", err)
	}
	return nil
}

// Counted returns which of voterIDs have a counted vote.
func (s *Store) Counted(ctx context.Context, voterIDs []string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT voter_id FROM votes WHERE voter_id = ANY($1)`, voterIDs)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// CopyCeiling measures the storage ceiling the tally cannot beat: it COPYs
// the rows next gives (voter, candidate, partition, offset) into a new
// table shaped like votes with its indexes (the shape is read from the
// table itself, so it follows the migrations), then into one without
// indexes, and returns how long each took. The tables are dropped after.
func (s *Store) CopyCeiling(ctx context.Context, n int64, row func(i int64) (voterID, candidateID string)) (indexed, bare time.Duration, err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Release()
	at := time.Now()
	copyInto := func(table string) (time.Duration, error) {
		var i int64
		t0 := time.Now()
		_, err := conn.CopyFrom(ctx, pgx.Identifier{table},
			[]string{"voter_id", "candidate_id", "voting_time", "vote", "src_partition", "src_offset"},
			pgx.CopyFromFunc(func() ([]any, error) {
				if i == n {
					return nil, nil
				}
				v, c := row(i)
				r := []any{v, c, at, int32(1), int32(i % 6), i}
				i++
				return r, nil
			}))
		return time.Since(t0), err
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE copy_ceiling (LIKE votes INCLUDING ALL);
		CREATE TABLE copy_bare (LIKE votes)`); err != nil {
		return 0, 0, err
	}
	defer conn.Exec(context.WithoutCancel(ctx), `DROP TABLE IF EXISTS copy_ceiling, copy_bare`) //nolint:errcheck
	if indexed, err = copyInto("copy_ceiling"); err != nil {
		return 0, 0, err
	}
	if bare, err = copyInto("copy_bare"); err != nil {
		return 0, 0, err
	}
	var c1, c2 int64
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM copy_ceiling), (SELECT count(*) FROM copy_bare)`).Scan(&c1, &c2); err != nil || c1 != n || c2 != n {
		return 0, 0, fmt.Errorf("copied %d and %d of %d rows (%v)", c1, c2, n, err)
	}
	return indexed, bare, nil
}

var scratchSeq atomic.Int64

var unsafeName = regexp.MustCompile(`[^a-z0-9_]+`)

// CreateScratch creates a database of its own on the server of serverDSN,
// named after label (a test's name, a benchmark's step) and this process,
// and returns its connection string and a function that drops it.
func CreateScratch(ctx context.Context, serverDSN, label string) (dsn string, drop func(), err error) {
	l := strings.Trim(unsafeName.ReplaceAllString(strings.ToLower(label), "_"), "_")
	if len(l) > 30 {
		l = l[:30]
	}
	name := fmt.Sprintf("vt_%s_%d_%d", l, os.Getpid(), scratchSeq.Add(1))
	if dsn, err = CreateDatabase(ctx, serverDSN, name); err != nil {
		return "", nil, err
	}
	return dsn, func() { DropDatabase(context.Background(), serverDSN, name) }, nil //nolint:errcheck // scratch
}
