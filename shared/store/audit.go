package store

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// AuditReport compares a recount of the votes table with every tally view
// and with rejected_votes.
type AuditReport struct {
	RegisteredVoters int64
	Votes            int64
	// Rejected counts rejected_votes by reason.
	Rejected map[string]int64
	// Checks are the comparisons made, each with the two sides.
	Checks []AuditCheck
	// Partitions account for every record of votes_topic by partition.
	Partitions []PartitionAudit
}

// AuditCheck is one comparison of a recount with a tally.
type AuditCheck struct {
	Name     string
	Recount  int64
	Tally    int64
	Detail   string // what differs, when it does
	Mismatch bool
}

// PartitionAudit accounts for the records of one partition of votes_topic:
// every offset from Start to End must be either counted or rejected,
// exactly once; the records before Start belong to earlier elections.
type PartitionAudit struct {
	Partition int32
	// Start is the election's first offset (the records before it are
	// earlier elections').
	Start    int64
	Counted  int64
	Rejected int64
	// End is the partition's end offset on the broker (-1 when not known).
	End int64
	// Missing lists the ranges of offsets in [Start, End) that are neither
	// counted nor rejected (at most 10 ranges; MissingCount counts them all),
	// Overlap offsets that are both (at most 10).
	Missing      []OffsetRange
	MissingCount int64
	Overlap      []int64
}

// OffsetRange is the offsets From to To, both included.
type OffsetRange struct{ From, To int64 }

func (r OffsetRange) String() string {
	if r.From == r.To {
		return fmt.Sprint(r.From)
	}
	return fmt.Sprintf("%d-%d", r.From, r.To)
}

// Expected is how many records of the election the partition holds (-1
// when the end is not known).
func (p PartitionAudit) Expected() int64 {
	if p.End < 0 {
		return -1
	}
	return p.End - p.Start
}

func (p PartitionAudit) ok() bool {
	return len(p.Overlap) == 0 && p.MissingCount == 0 && (p.End < 0 || p.Counted+p.Rejected == p.Expected())
}

// OK reports whether every check and partition balances.
func (a AuditReport) OK() bool {
	for _, c := range a.Checks {
		if c.Mismatch {
			return false
		}
	}
	for _, p := range a.Partitions {
		if !p.ok() {
			return false
		}
	}
	return true
}

// Skipped returns how many records of the votes topic precede the election
// (on the partitions whose end is known).
func (a AuditReport) Skipped() int64 {
	var n int64
	for _, p := range a.Partitions {
		n += p.Start
	}
	return n
}

// dimensionCheck recounts votes by a dimension and compares with a view.
type dimensionCheck struct {
	name, recount, view string
}

var dimensionChecks = []dimensionCheck{
	{"votes per candidate", `SELECT candidate_id, count(*) FROM votes GROUP BY 1`,
		`SELECT candidate_id, total_votes FROM candidate_results`},
	{"turnout by state", `SELECT v.address_state, count(*) FROM votes JOIN voters v USING (voter_id) GROUP BY 1`,
		`SELECT state, total_votes FROM turnout_by_state`},
	{"turnout by gender", `SELECT v.gender, count(*) FROM votes JOIN voters v USING (voter_id) GROUP BY 1`,
		`SELECT gender, total_votes FROM turnout_by_gender`},
	{"turnout by age band", `SELECT v.age_band, count(*) FROM votes JOIN voters v USING (voter_id) GROUP BY 1`,
		`SELECT age_band, total_votes FROM turnout_by_age_band`},
	{"results by state", `SELECT v.address_state || ' / ' || candidate_id, count(*) FROM votes JOIN voters v USING (voter_id) GROUP BY 1`,
		`SELECT state || ' / ' || candidate_id, total_votes FROM results_by_state`},
	{"votes over time", `SELECT candidate_id || ' ' || date_trunc('second', voting_time)::text, count(*) FROM votes GROUP BY 1`,
		`SELECT candidate_id || ' ' || second::text, votes FROM votes_timeline`},
}

// Audit recounts the election. ends gives votes_topic's end offset per
// partition when the caller knows them (from the broker): every offset from
// the election's start to the end must then be counted or rejected once.
// Partitions not in ends are still checked for offsets counted and
// rejected both.
func (s *Store) Audit(ctx context.Context, topic string, ends map[int32]int64) (AuditReport, error) {
	var a AuditReport
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM voters), (SELECT count(*) FROM votes)`).Scan(&a.RegisteredVoters, &a.Votes); err != nil {
			return err
		}
		a.Rejected = map[string]int64{}
		rows, err := tx.Query(ctx, `SELECT reason, count(*) FROM rejected_votes WHERE topic = $1 GROUP BY 1`, topic)
		if err != nil {
			return err
		}
		for rows.Next() {
			var r string
			var n int64
			if err := rows.Scan(&r, &n); err != nil {
				return err
			}
			a.Rejected[r] = n
		}
		if err := rows.Err(); err != nil {
			return err
		}

		for _, dc := range dimensionChecks {
			recount, err := keyedCounts(ctx, tx, dc.recount)
			if err != nil {
				return fmt.Errorf("%s: %w", dc.name, err)
			}
			tally, err := keyedCounts(ctx, tx, dc.view)
			if err != nil {
				return fmt.Errorf("%s: %w", dc.name, err)
			}
			a.Checks = append(a.Checks, compare(dc.name, recount, tally))
		}

		// Every vote must refer to a registered voter and a standing candidate
		// (the references the schema does not check row by row).
		var dangling int64
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM votes v
			WHERE NOT EXISTS (SELECT 1 FROM voters r WHERE r.voter_id = v.voter_id)
			   OR NOT EXISTS (SELECT 1 FROM candidates c WHERE c.candidate_id = v.candidate_id)`).Scan(&dangling); err != nil {
			return err
		}
		a.Checks = append(a.Checks, AuditCheck{Name: "votes of registered voters for candidates",
			Recount: a.Votes - dangling, Tally: a.Votes, Mismatch: dangling != 0,
			Detail: map[bool]string{true: fmt.Sprintf("%d votes refer to a voter or candidate that does not exist", dangling)}[dangling != 0]})

		// Every duplicate or second ballot must belong to a voter whose vote is counted.
		var orphans int64
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM rejected_votes r WHERE r.reason IN ('duplicate', 'already_voted')
			AND NOT EXISTS (SELECT 1 FROM votes v WHERE v.voter_id = r.voter_id)`).Scan(&orphans); err != nil {
			return err
		}
		a.Checks = append(a.Checks, AuditCheck{Name: "second ballots whose first is counted",
			Recount: a.Rejected["duplicate"] + a.Rejected["already_voted"] - orphans,
			Tally:   a.Rejected["duplicate"] + a.Rejected["already_voted"], Mismatch: orphans != 0,
			Detail: map[bool]string{true: fmt.Sprintf("%d rejected as repeat ballots of voters with no counted vote", orphans)}[orphans != 0]})

		return auditPartitions(ctx, tx, topic, ends, &a)
	})
	if err != nil {
		return AuditReport{}, fmt.Errorf("audit: %w", err)
	}
	return a, nil
}

func auditPartitions(ctx context.Context, tx pgx.Tx, topic string, ends map[int32]int64, a *AuditReport) error {
	starts, err := readStarts(ctx, tx)
	if err != nil {
		return err
	}
	rows, err := tx.Query(ctx, `
		WITH c AS (SELECT src_partition AS p, count(*) AS n FROM votes WHERE src_partition IS NOT NULL GROUP BY 1),
		     r AS (SELECT partition AS p, count(*) AS n FROM rejected_votes WHERE topic = $1 GROUP BY 1)
		SELECT coalesce(c.p, r.p), coalesce(c.n, 0), coalesce(r.n, 0) FROM c FULL JOIN r USING (p) ORDER BY 1`, topic)
	if err != nil {
		return err
	}
	byPart := map[int32]*PartitionAudit{}
	for rows.Next() {
		var p PartitionAudit
		if err := rows.Scan(&p.Partition, &p.Counted, &p.Rejected); err != nil {
			return err
		}
		p.End = -1
		byPart[p.Partition] = &p
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for part, end := range ends {
		if byPart[part] == nil {
			byPart[part] = &PartitionAudit{Partition: part}
		}
		byPart[part].End = end
	}
	for _, p := range byPart {
		p.Start = starts.Of(topic, p.Partition)
		// Offsets both counted and rejected. Each vote's rejection is looked
		// up in rejected_votes' key (LATERAL ... OFFSET 0): left to itself,
		// the planner may pick, on fresh statistics, a nested loop that
		// compares every rejection with every vote, and an audit after a
		// few hundred thousand rejections then takes minutes.
		ov, err := offsets(ctx, tx, `SELECT v.src_offset FROM votes v
			CROSS JOIN LATERAL (SELECT 1 FROM rejected_votes r
				WHERE r.topic = $1 AND r.partition = v.src_partition AND r."offset" = v.src_offset OFFSET 0) r
			WHERE v.src_partition = $2 ORDER BY 1 LIMIT 10`, topic, p.Partition)
		if err != nil {
			return err
		}
		p.Overlap = ov
		if p.End >= 0 && p.Counted+p.Rejected != p.Expected() {
			if err := missingRanges(ctx, tx, topic, p); err != nil {
				return err
			}
		}
		a.Partitions = append(a.Partitions, *p)
	}
	slices.SortFunc(a.Partitions, func(x, y PartitionAudit) int { return int(x.Partition - y.Partition) })
	return nil
}

// missingRanges finds the ranges of offsets in [p.Start, p.End) that are
// neither counted nor rejected: the gaps between the offsets the database
// decided (gaps and islands over one pass of the partition's offsets).
func missingRanges(ctx context.Context, tx pgx.Tx, topic string, p *PartitionAudit) error {
	rows, err := tx.Query(ctx, `
		WITH seen AS (
			SELECT DISTINCT o FROM (
				SELECT src_offset AS o FROM votes WHERE src_partition = $2
				UNION ALL
				SELECT "offset" FROM rejected_votes WHERE topic = $1 AND partition = $2) d
			WHERE o >= $3 AND o < $4),
		gaps AS (
			SELECT coalesce(lag(o) OVER (ORDER BY o), $3 - 1) + 1 AS lo, o - 1 AS hi FROM seen
			UNION ALL
			SELECT coalesce(max(o), $3 - 1) + 1, $4 - 1 FROM seen)
		SELECT lo, hi FROM gaps WHERE lo <= hi ORDER BY lo`, topic, p.Partition, p.Start, p.End)
	if err != nil {
		return err
	}
	var r OffsetRange
	_, err = pgx.ForEachRow(rows, []any{&r.From, &r.To}, func() error {
		p.MissingCount += r.To - r.From + 1
		if len(p.Missing) < 10 {
			p.Missing = append(p.Missing, r)
		}
		return nil
	})
	return err
}

func offsets(ctx context.Context, tx pgx.Tx, sql string, args ...any) ([]int64, error) {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int64])
}

func keyedCounts(ctx context.Context, tx pgx.Tx, sql string) (map[string]int64, error) {
	rows, err := tx.Query(ctx, sql)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var k *string
		var n int64
		if err := rows.Scan(&k, &n); err != nil {
			return nil, err
		}
		if k != nil {
			out[*k] += n
		} else {
			out[""] += n
		}
	}
	return out, rows.Err()
}

func compare(name string, recount, tally map[string]int64) AuditCheck {
	c := AuditCheck{Name: name}
	var diffs []string
	for k, n := range recount {
		c.Recount += n
		if tally[k] != n {
			diffs = append(diffs, fmt.Sprintf("%s: recount %d, tally %d", k, n, tally[k]))
		}
	}
	for k, n := range tally {
		c.Tally += n
		if _, ok := recount[k]; !ok && n != 0 {
			diffs = append(diffs, fmt.Sprintf("%s: recount 0, tally %d", k, n))
		}
	}
	slices.Sort(diffs)
	if len(diffs) > 0 {
		c.Mismatch = true
		if len(diffs) > 5 {
			diffs = append(diffs[:5], fmt.Sprintf("... %d more", len(diffs)-5))
		}
		c.Detail = strings.Join(diffs, "; ")
	}
	return c
}

// Print writes the report as a table.
func (a AuditReport) Print(w io.Writer) {
	fmt.Fprintf(w, "registered voters  %d\ncounted votes      %d\n", a.RegisteredVoters, a.Votes)
	var reasons []string
	for r := range a.Rejected {
		reasons = append(reasons, r)
	}
	slices.Sort(reasons)
	for _, r := range reasons {
		fmt.Fprintf(w, "rejected %-18s %d\n", r, a.Rejected[r])
	}
	fmt.Fprintf(w, "\n%-40s %12s %12s  %s\n", "check", "recount", "tally", "result")
	for _, c := range a.Checks {
		res := "ok"
		if c.Mismatch {
			res = "MISMATCH " + c.Detail
		}
		fmt.Fprintf(w, "%-40s %12d %12d  %s\n", c.Name, c.Recount, c.Tally, res)
	}
	if len(a.Partitions) > 0 {
		fmt.Fprintf(w, "\n%-10s %10s %10s %10s %10s  %s\n", "partition", "start", "counted", "rejected", "end", "result")
		for _, p := range a.Partitions {
			res := "ok"
			switch {
			case len(p.Overlap) > 0:
				res = fmt.Sprintf("MISMATCH offsets both counted and rejected: %v", p.Overlap)
			case p.MissingCount > 0:
				rs := make([]string, len(p.Missing))
				for i, r := range p.Missing {
					rs[i] = r.String()
				}
				more := ""
				if len(p.Missing) == 10 {
					more = ", ..."
				}
				res = fmt.Sprintf("MISMATCH %d records never processed: offsets %s%s", p.MissingCount, strings.Join(rs, ", "), more)
			case p.End >= 0 && p.Counted+p.Rejected != p.Expected():
				res = fmt.Sprintf("MISMATCH %d decided of %d records (some before the election's start?)", p.Counted+p.Rejected, p.Expected())
			case p.End < 0:
				res = "ok (end offset unknown)"
			}
			fmt.Fprintf(w, "%-10d %10d %10d %10d %10d  %s\n", p.Partition, p.Start, p.Counted, p.Rejected, p.End, res)
		}
		if n := a.Skipped(); n > 0 {
			fmt.Fprintf(w, "(%d records before the election's start belong to earlier elections and are not part of it)\n", n)
		}
	}
	if a.OK() {
		fmt.Fprintln(w, "\naudit: OK — every vote counted once, every rejection accounted for")
	} else {
		fmt.Fprintln(w, "\naudit: MISMATCH")
	}
}

// Progress returns the votes counted so far (from the tallies) and the
// records of topic rejected.
func (s *Store) Progress(ctx context.Context, topic string) (counted, rejected int64, err error) {
	err = s.pool.QueryRow(ctx, `SELECT
		(SELECT coalesce(sum(votes), 0) FROM tally_candidate),
		(SELECT count(*) FROM rejected_votes WHERE topic = $1)`, topic).Scan(&counted, &rejected)
	if err != nil {
		return 0, 0, fmt.Errorf("read progress: %w", err)
	}
	return counted, rejected, nil
}
