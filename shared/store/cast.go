package store

import (
	"context"
	"fmt"
	"time"

	"github.com/votingpipe/voting/shared/election"
)

// claimSQL looks a token's hash up and, when it is a voter's who has not
// voted, claims that voter's ballot for the candidate, all in one
// statement. A claim held by a cast that never got its vote stored (no
// position) for more than a minute is taken over. The claim commits without
// waiting for the WAL flush (synchronous_commit off for this transaction):
// losing one in a crash only lets the voter cast again, which the tally,
// the authority, then rejects as a second ballot.
const claimSQL = `
WITH t AS (SELECT voter_id, token_hash FROM ballot_tokens WHERE token_hash = $1),
r AS (SELECT * FROM voters WHERE voter_id = (SELECT voter_id FROM t)),
cand AS (SELECT EXISTS (SELECT 1 FROM candidates WHERE candidate_id = $2) AS ok),
counted AS (SELECT EXISTS (SELECT 1 FROM votes WHERE voter_id = (SELECT voter_id FROM t)) AS yes),
prior AS (SELECT partition, "offset" FROM ballots_cast WHERE voter_id = (SELECT voter_id FROM t)),
claim AS (
    INSERT INTO ballots_cast (voter_id, candidate_id)
    SELECT voter_id, $2 FROM r WHERE (SELECT ok FROM cand) AND NOT (SELECT yes FROM counted)
    ON CONFLICT (voter_id) DO UPDATE SET candidate_id = EXCLUDED.candidate_id, claimed_at = now()
        WHERE ballots_cast."offset" IS NULL AND ballots_cast.claimed_at < now() - interval '1 minute'
    RETURNING voter_id
)
SELECT coalesce((SELECT election_id::text FROM election), ''),
       set_config('synchronous_commit', 'off', true) = 'off',
       r.voter_id, r.voter_name, r.date_of_birth, r.gender, r.nationality, r.registration_number,
       r.address_street, r.address_city, r.address_state, r.address_country, r.address_postcode,
       r.email, r.phone_number, r.cell_number, r.picture, r.registered_age,
       (SELECT token_hash FROM t), (SELECT ok FROM cand), (SELECT yes FROM counted), EXISTS (SELECT 1 FROM claim),
       p.partition, p."offset"
FROM (SELECT 1) one LEFT JOIN r ON true LEFT JOIN prior p ON true`

// ClaimBallot claims the ballot of the voter whose token has the given keyed
// hash, for candidateID, and returns the voter (see election.Claim).
func (s *Store) ClaimBallot(ctx context.Context, tokenHash []byte, candidateID string) (election.Claim, error) {
	var c election.Claim
	var async bool
	var id, name, gender, nat, reg, street, city, state, country, postcode, email, phone, cell, pic *string
	var dob *time.Time
	var age *int
	var candOK, counted, claimed bool
	var part *int32
	var off *int64
	err := s.pool.QueryRow(ctx, claimSQL, tokenHash, candidateID).Scan(&c.Election, &async,
		&id, &name, &dob, &gender, &nat, &reg, &street, &city, &state, &country, &postcode, &email, &phone, &cell, &pic, &age,
		&c.TokenHash, &candOK, &counted, &claimed, &part, &off)
	if err != nil {
		return election.Claim{}, fmt.Errorf("claim ballot: %w", err)
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
	case !candOK:
		c.Status = election.ClaimUnknownCandidate
	case counted || !claimed:
		c.Status = election.ClaimAlreadyVoted
	default:
		c.Status = election.ClaimTaken
	}
	return c, nil
}

// ConfirmBallot records where the broker stored a claimed ballot's vote
// (the receipt's position). Like the claim, it does not wait for the WAL.
func (s *Store) ConfirmBallot(ctx context.Context, voterID string, partition int32, offset int64) error {
	_, err := s.pool.Exec(ctx, `WITH cfg AS (SELECT set_config('synchronous_commit', 'off', true))
		UPDATE ballots_cast SET partition = $2, "offset" = $3 WHERE voter_id = $1 AND EXISTS (SELECT 1 FROM cfg)`,
		voterID, partition, offset)
	if err != nil {
		return fmt.Errorf("confirm ballot: %w", err)
	}
	return nil
}

// ReleaseBallot gives a claim up when its vote could not be produced, so
// the voter may try again at once.
func (s *Store) ReleaseBallot(ctx context.Context, voterID string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM ballots_cast WHERE voter_id = $1 AND "offset" IS NULL`, voterID)
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
