package store

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/votingpipe/voting/shared/election"
)

// Snapshot reads what the dashboard shows, in one read-only REPEATABLE READ
// transaction, so every number on the page is of the same instant. It
// implements dashboard.Source (dashboard.Snapshot is an alias of
// election.Snapshot, so the store need not link the renderer). It reads
// the tally views, the election row and rejected_votes' counts; it never
// scans voters or votes. The votes-over-time series is bucketed in SQL to at
// most election.DefaultMaxPoints instants.
func (s *Store) Snapshot(ctx context.Context) (election.Snapshot, error) {
	var snap election.Snapshot
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		snap = election.Snapshot{Rejected: map[string]int64{}}
		var lo, hi *time.Time
		b := &pgx.Batch{}
		// now() is the transaction's start: the instant the snapshot shows.
		b.Queue(`SELECT now(), coalesce((SELECT name FROM election), ''),
				coalesce((SELECT copied FROM election), (SELECT sum(registered) FROM registered_by_state), 0)::bigint`).
			QueryRow(func(r pgx.Row) error {
				return r.Scan(&snap.TakenAt, &snap.Election, &snap.Registered)
			})
		// The voting time range, by two index lookups per tally shard and
		// candidate rather than min/max over votes_timeline, which groups
		// every second of every shard (250 ms against 3 ms for a three-hour
		// election).
		b.Queue(`SELECT min(f.second), max(l.second) FROM tally_candidate k
				CROSS JOIN LATERAL (SELECT second FROM tally_timeline t
					WHERE t.shard = k.shard AND t.candidate_id = k.candidate_id ORDER BY second LIMIT 1) f
				CROSS JOIN LATERAL (SELECT second FROM tally_timeline t
					WHERE t.shard = k.shard AND t.candidate_id = k.candidate_id ORDER BY second DESC LIMIT 1) l`).
			QueryRow(func(r pgx.Row) error { return r.Scan(&lo, &hi) })
		b.Queue(`SELECT candidate_id, candidate_name, party_affiliation, photo_url, total_votes
				FROM candidate_results ORDER BY candidate_id`).
			Query(func(rows pgx.Rows) error {
				var err error
				snap.Candidates, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (election.CandidateResult, error) {
					var c election.CandidateResult
					err := r.Scan(&c.ID, &c.Name, &c.Party, &c.PhotoURL, &c.Votes)
					return c, err
				})
				return err
			})
		queueTurnouts(b, &snap)
		var results []stateVotes
		queueResults(b, &results)
		b.Queue(`SELECT reason, count(*) FROM rejected_votes GROUP BY 1`).Query(func(rows pgx.Rows) error {
			var reason string
			var n int64
			_, err := pgx.ForEachRow(rows, []any{&reason, &n}, func() error {
				snap.Rejected[reason] = n
				return nil
			})
			return err
		})
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		for _, c := range snap.Candidates {
			snap.Counted += c.Votes
		}
		snap.Results = stateResults(results, snap.Candidates)
		if hi == nil {
			return nil
		}
		snap.NewestVote = *hi
		tl, err := timeline(ctx, tx, *lo, *hi, election.DefaultMaxPoints, snap.Candidates)
		snap.Timeline = tl
		return err
	})
	if err != nil {
		return election.Snapshot{}, fmt.Errorf("dashboard snapshot: %w", err)
	}
	return snap, nil
}

// timeline sums the per-second tallies into at most max equal buckets of
// whole seconds between lo and hi, and accumulates them per candidate. Each
// bucket is labelled with its last second (the last bucket with hi), so a
// point says "votes with a voting time up to this second".
//
// It reads the shards (tally_timeline) rather than votes_timeline: summing
// shards and seconds into buckets in one aggregation is the same sum at half
// the cost of first grouping every second in the view.
func timeline(ctx context.Context, tx pgx.Tx, lo, hi time.Time, max int, cands []election.CandidateResult) (election.Timeline, error) {
	span := int64(hi.Sub(lo)/time.Second) + 1
	width := int64(math.Ceil(float64(span) / float64(max)))
	if width < 1 {
		width = 1
	}
	rows, err := tx.Query(ctx, `
		SELECT candidate_id, date_bin(make_interval(secs => $2), second, $1::timestamptz) AS bucket, sum(votes)::bigint
		FROM tally_timeline GROUP BY 1, 2`, lo, float64(width))
	if err != nil {
		return election.Timeline{}, err
	}
	buckets := int((span + width - 1) / width)
	index := make(map[string]int, len(cands))
	tl := election.Timeline{Times: make([]time.Time, buckets), Series: make([]election.TimelineSeries, len(cands))}
	for i, c := range cands {
		index[c.ID] = i
		tl.Series[i] = election.TimelineSeries{CandidateID: c.ID, Cumulative: make([]int64, buckets)}
	}
	var id string
	var start time.Time
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&id, &start, &n}, func() error {
		bucket := int64(start.Sub(lo) / time.Second / time.Duration(width))
		i, ok := index[id]
		if !ok || bucket < 0 || bucket >= int64(buckets) {
			// A candidate or second outside the snapshot's read cannot
			// occur in one transaction; skip rather than fail the render.
			return nil
		}
		tl.Series[i].Cumulative[bucket] += n
		return nil
	})
	if err != nil {
		return election.Timeline{}, err
	}
	for k := range buckets {
		end := lo.Add(time.Duration(int64(k+1)*width-1) * time.Second)
		if end.After(hi) {
			end = hi
		}
		tl.Times[k] = end
	}
	for i := range tl.Series {
		c := tl.Series[i].Cumulative
		for k := 1; k < len(c); k++ {
			c[k] += c[k-1]
		}
	}
	return tl, nil
}

// stateVotes is a row of results_by_state.
type stateVotes struct {
	State, CandidateID string
	Votes              int64
}

// queueResults reads results_by_state's rows with votes, ordered by state and
// candidate.
func queueResults(b *pgx.Batch, dst *[]stateVotes) {
	b.Queue(`SELECT state, candidate_id, total_votes FROM results_by_state WHERE total_votes > 0 ORDER BY 1, 2`).
		Query(func(rows pgx.Rows) error {
			var err error
			*dst, err = pgx.CollectRows(rows, pgx.RowToStructByPos[stateVotes])
			return err
		})
}

// stateResults arranges results_by_state's rows (ordered by state) as votes
// per state in the snapshot's candidate order.
func stateResults(rows []stateVotes, cands []election.CandidateResult) []election.StateResult {
	index := make(map[string]int, len(cands))
	for i, c := range cands {
		index[c.ID] = i
	}
	var out []election.StateResult
	for _, r := range rows {
		i, ok := index[r.CandidateID]
		if !ok {
			continue // cannot occur in one transaction: candidates are append-only
		}
		if len(out) == 0 || out[len(out)-1].State != r.State {
			out = append(out, election.StateResult{State: r.State, Votes: make([]int64, len(cands))})
		}
		out[len(out)-1].Votes[i] = r.Votes
	}
	return out
}

// queueTurnouts reads the turnout views into snap.
func queueTurnouts(b *pgx.Batch, snap *election.Snapshot) {
	for _, q := range []struct {
		sql string
		dst *[]election.Turnout
	}{
		{`SELECT state, total_votes, registered FROM turnout_by_state ORDER BY 1`, &snap.States},
		{`SELECT gender, total_votes, registered FROM turnout_by_gender ORDER BY 1`, &snap.Genders},
		{`SELECT age_band, total_votes, registered FROM turnout_by_age_band ORDER BY 1`, &snap.AgeBands},
	} {
		b.Queue(q.sql).Query(func(rows pgx.Rows) error {
			var err error
			*q.dst, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (election.Turnout, error) {
				var t election.Turnout
				err := r.Scan(&t.Key, &t.Votes, &t.Registered)
				return t, err
			})
			return err
		})
	}
}
