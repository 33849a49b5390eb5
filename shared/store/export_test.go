package store

import "github.com/jackc/pgx/v5/pgxpool"

// Pool exposes the connection pool to this package's tests, which check
// the database directly.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// ResultsByStateSet and TallySQL let the tests check that
// Options.WithoutResultsByState still finds the grouping set it removes.
const ResultsByStateSet = resultsByStateSet

// TallySQL is the tally statement.
const TallySQL = tallySQL
