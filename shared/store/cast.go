package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/votingpipe/voting/shared/election"
)

// claimSQL looks each ballot's token hash up and, when it is a voter's who
// has not voted, claims that voter's ballot for the candidate: a batch of
// ballots in one statement (the cast function groups the ballots that
// arrive together). A claim whose vote is not counted a minute on (its cast
// failed mid-way) is taken over. For a voter whose vote is counted it
// returns where that vote was on the votes topic (the receipt's position). The statement commits
// without waiting for the WAL flush (synchronous_commit off for its
// transaction): losing a claim in a crash only lets the voter cast again,
// which the tally, the authority, then rejects as a second ballot. The
// batch must not hold one token twice.
const claimSQL = `
WITH req AS (
    SELECT * FROM unnest($1::bytea[], $2::text[]) WITH ORDINALITY AS q(token_hash, candidate_id, n)
),
t AS MATERIALIZED (
    SELECT q.n, q.candidate_id, b.voter_id, b.token_hash,
           EXISTS (SELECT 1 FROM candidates c WHERE c.candidate_id = q.candidate_id) AS cand_ok,
           v.src_partition, v.src_offset, v.voter_id IS NOT NULL AS counted
    FROM req q
    -- Index lookups for the batch's few rows, never a scan of the roll's
    -- tokens (LATERAL ... OFFSET 0, as in the tally).
    LEFT JOIN LATERAL (SELECT voter_id, token_hash FROM ballot_tokens bt WHERE bt.token_hash = q.token_hash OFFSET 0) b ON true
    LEFT JOIN LATERAL (SELECT voter_id, src_partition, src_offset FROM votes v WHERE v.voter_id = b.voter_id OFFSET 0) v ON true
),
claim AS (
    INSERT INTO ballots_cast (voter_id, candidate_id)
    SELECT voter_id, candidate_id FROM t WHERE voter_id IS NOT NULL AND cand_ok AND NOT counted
    ORDER BY voter_id
    ON CONFLICT (voter_id) DO UPDATE SET candidate_id = EXCLUDED.candidate_id, claimed_at = now()
        WHERE ballots_cast.claimed_at < now() - interval '1 minute'
    RETURNING voter_id
)
SELECT coalesce((SELECT election_id::text FROM election), ''),
       set_config('synchronous_commit', 'off', true) = 'off',
       r.voter_id, r.voter_name, r.date_of_birth, r.gender, r.nationality, r.registration_number,
       r.address_street, r.address_city, r.address_state, r.address_country, r.address_postcode,
       r.email, r.phone_number, r.cell_number, r.picture, r.registered_age,
       t.token_hash, t.cand_ok, t.counted, EXISTS (SELECT 1 FROM claim c WHERE c.voter_id = t.voter_id),
       t.src_partition, t.src_offset
FROM t
LEFT JOIN LATERAL (SELECT * FROM voters v WHERE v.voter_id = t.voter_id OFFSET 0) r ON true
ORDER BY t.n`

// ClaimBallots claims the ballots of the voters whose tokens have the given
// keyed hashes, each for its candidate, and returns each ballot's outcome
// and voter (see election.Claim), in order. No token may be in the batch
// twice.
func (s *Store) ClaimBallots(ctx context.Context, ballots []election.BallotClaim) ([]election.Claim, error) {
	hashes, cands := make([][]byte, len(ballots)), make([]string, len(ballots))
	for i, b := range ballots {
		hashes[i], cands[i] = b.TokenHash, b.CandidateID
	}
	out := make([]election.Claim, 0, len(ballots))
	rows, err := s.pool.Query(ctx, claimSQL, hashes, cands)
	if err != nil {
		return nil, fmt.Errorf("claim ballots: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		c, err := scanClaim(rows)
		if err != nil {
			return nil, fmt.Errorf("claim ballots: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim ballots: %w", err)
	}
	if len(out) != len(ballots) {
		return nil, fmt.Errorf("claim ballots: %d outcomes for %d ballots", len(out), len(ballots))
	}
	return out, nil
}

func scanClaim(row pgx.Row) (election.Claim, error) {
	var c election.Claim
	var async bool
	var id, name, gender, nat, reg, street, city, state, country, postcode, email, phone, cell, pic *string
	var dob *time.Time
	var age *int
	var candOK, counted, claimed *bool
	var part *int32
	var off *int64
	err := row.Scan(&c.Election, &async,
		&id, &name, &dob, &gender, &nat, &reg, &street, &city, &state, &country, &postcode, &email, &phone, &cell, &pic, &age,
		&c.TokenHash, &candOK, &counted, &claimed, &part, &off)
	if err != nil {
		return c, err
	}
	if id == nil {
		c.Status = election.ClaimUnknownToken
		return c, nil
	}
	c.Voter = election.Voter{VoterID: *id, VoterName: *name, DateOfBirth: dob.Format(election.DateLayout), Gender: *gender,
		Nationality: *nat, RegistrationNumber: *reg, Email: *email, PhoneNumber: *phone, CellNumber: *cell, Picture: *pic,
		RegisteredAge: *age, Address: election.Address{Street: *street, City: *city, State: *state, Country: *country, Postcode: *postcode}}
	if part != nil && off != nil {
		c.Stored, c.Partition, c.Offset = true, *part, *off
	}
	switch {
	case !*candOK:
		c.Status = election.ClaimUnknownCandidate
	case *counted || !*claimed:
		c.Status = election.ClaimAlreadyVoted
	default:
		c.Status = election.ClaimTaken
	}
	return c, nil
}

// ReleaseBallot gives a claim up when its vote could not be produced, so
// the voter may try again at once.
func (s *Store) ReleaseBallot(ctx context.Context, voterID string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM ballots_cast WHERE voter_id = $1`, voterID)
	if err != nil {
		return fmt.Errorf("release ballot: %w", err)
	}
	return nil
}

// TokenCount returns how many voters have a ballot token.
func (s *Store) TokenCount(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM ballot_tokens`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count tokens: %w", err)
	}
	return n, nil
}
