package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/votingpipe/voting/shared/election"
)

const electionCols = `election_id::text, name, seed, voters, candidates, fingerprint, copied, roll_complete, published,
	registered_at, published_at, transport, broker, turnout, voting, token_key_id`

func scanElection(row pgx.Row) (*election.Election, error) {
	var e election.Election
	err := row.Scan(&e.ID, &e.Name, &e.Seed, &e.Voters, &e.Candidates, &e.Fingerprint, &e.Copied, &e.RollComplete,
		&e.Published, &e.RegisteredAt, &e.PublishedAt, &e.Carrier.Transport, &e.Carrier.Broker, &e.Turnout, &e.Voting, &e.TokenKeyID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &e, nil
}

// election.Election returns the registered election with its start positions, or
// nil when there is none.
func (s *Store) Election(ctx context.Context) (*election.Election, error) {
	var e *election.Election
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var err error
		if e, err = scanElection(tx.QueryRow(ctx, `SELECT `+electionCols+` FROM election`)); err != nil || e == nil {
			return err
		}
		e.Starts, err = readStarts(ctx, tx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read election: %w", err)
	}
	return e, nil
}

// ElectionID returns the registered election's ID, or "" when there is none.
func (s *Store) ElectionID(ctx context.Context) (string, error) {
	var id string
	err := s.pool.QueryRow(ctx, `SELECT coalesce((SELECT election_id::text FROM election), '')`).Scan(&id)
	if err != nil {
		return "", fmt.Errorf("read election: %w", err)
	}
	return id, nil
}

func readStarts(ctx context.Context, q pgx.Tx) (election.Starts, error) {
	rows, err := q.Query(ctx, `SELECT topic, partition, start_offset FROM election_starts`)
	if err != nil {
		return nil, err
	}
	starts := election.Starts{}
	var topic string
	var part int32
	var off int64
	_, err = pgx.ForEachRow(rows, []any{&topic, &part, &off}, func() error {
		starts.Set(topic, part, off)
		return nil
	})
	return starts, err
}

// registerLock is the advisory lock key held while registering.
const registerLock = 0x726567697374 // "regist"

// LockRegistration takes a session advisory lock so that only one register
// invocation works on the election at a time. Call the returned function to
// release it.
func (s *Store) LockRegistration(ctx context.Context) (func(), error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock registration: %w", err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, registerLock); err != nil {
		conn.Release()
		return nil, fmt.Errorf("lock registration: %w", err)
	}
	return func() {
		conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, registerLock) //nolint:errcheck
		conn.Release()
	}, nil
}

// BeginElection records the election, its carrier, its start positions and
// its candidates, or checks that the recorded one is the same (same
// fingerprint: seed and candidates; same carrier) and leaves its starts as
// they are: a resumed election keeps the positions of its first
// registration. A larger voter count extends the roll; a smaller one is kept
// as it is. It returns the election as now recorded.
func (s *Store) BeginElection(ctx context.Context, e election.Election, candidates []election.WeightedCandidate) (*election.Election, error) {
	var out *election.Election
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		turnout := e.Turnout
		if turnout == 0 {
			turnout = 1
		}
		tag, err := tx.Exec(ctx, `INSERT INTO election (name, seed, voters, candidates, fingerprint, transport, broker, turnout, token_key_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING`,
			e.Name, e.Seed, e.Voters, e.Candidates, e.Fingerprint, e.Carrier.Transport, e.Carrier.Broker, turnout, e.TokenKeyID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 1 {
			// A new election: its records start where the topics end now.
			var topics, parts, offs = []string{}, []int32{}, []int64{}
			for t, ps := range e.Starts {
				for p, o := range ps {
					topics, parts, offs = append(topics, t), append(parts, p), append(offs, o)
				}
			}
			if _, err := tx.Exec(ctx, `INSERT INTO election_starts (topic, partition, start_offset)
				SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[])`, topics, parts, offs); err != nil {
				return err
			}
		}
		cur, err := scanElection(tx.QueryRow(ctx, `SELECT `+electionCols+` FROM election FOR UPDATE`))
		if err != nil {
			return err
		}
		if cur.Fingerprint != e.Fingerprint {
			return fmt.Errorf("%w: %q (seed %d, %d candidates, turnout %g); register with the same seed, candidates and turnout to resume it, or start over (reset) or use another database",
				election.ErrDifferentElection, cur.Name, cur.Seed, cur.Candidates, cur.Turnout)
		}
		if cur.Carrier.Known() && e.Carrier.Known() && cur.Carrier != e.Carrier {
			return fmt.Errorf("%w: %q is carried by %s, not %s", election.ErrOtherCarrier, cur.Name, cur.Carrier, e.Carrier)
		}
		if cur.TokenKeyID != "" && e.TokenKeyID != "" && cur.TokenKeyID != e.TokenKeyID && cur.Copied > 0 {
			return fmt.Errorf("%w: %q's tokens were issued under key %s, this register has %s (the key of the first registration: TOKEN_KEY, or <state-dir>/token.key)",
				election.ErrOtherTokenKey, cur.Name, keyName(cur.TokenKeyID), keyName(e.TokenKeyID))
		}
		if cur.TokenKeyID == "" && e.TokenKeyID != "" {
			if _, err := tx.Exec(ctx, `UPDATE election SET token_key_id = $1`, e.TokenKeyID); err != nil {
				return err
			}
			cur.TokenKeyID = e.TokenKeyID
		}
		if cur.Starts, err = readStarts(ctx, tx); err != nil {
			return err
		}
		if e.Voters > cur.Voters {
			if _, err := tx.Exec(ctx, `UPDATE election SET voters = $1, roll_complete = false, published_at = NULL`, e.Voters); err != nil {
				return err
			}
			cur.Voters, cur.RollComplete, cur.PublishedAt = e.Voters, false, nil
		}
		b := &pgx.Batch{}
		for _, c := range candidates {
			b.Queue(`INSERT INTO candidates (candidate_id, candidate_name, party_affiliation, biography,
				campaign_platform, photo_url, ballot_weight) VALUES ($1, $2, $3, $4, $5, $6, $7)
				ON CONFLICT (candidate_id) DO NOTHING`,
				c.CandidateID, c.CandidateName, c.PartyAffiliation, c.Biography, c.CampaignPlatform, c.PhotoURL, c.Weight)
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		out = cur
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("begin election: %w", err)
	}
	return out, nil
}

func keyName(id string) string {
	if id == "" {
		return "none"
	}
	return id
}

var voterColumns = []string{"voter_id", "voter_name", "date_of_birth", "gender", "nationality",
	"registration_number", "address_street", "address_city", "address_state", "address_country",
	"address_postcode", "email", "phone_number", "cell_number", "picture", "registered_age"}

// CopyVoters writes a chunk of the roll with COPY (the voters, and their
// token hashes when it has them) and advances the election's copied mark and
// its count of voters who vote in the same transaction, so a chunk is either
// wholly in the database and recorded, or not at all.
func (s *Store) CopyVoters(ctx context.Context, c election.RollChunk) error {
	if c.TokenHashes != nil && len(c.TokenHashes) != len(c.Voters) {
		return fmt.Errorf("copy voters %d-%d: %d token hashes for %d voters", c.From, c.From+int64(len(c.Voters)), len(c.TokenHashes), len(c.Voters))
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var copied int64
		if err := tx.QueryRow(ctx, `SELECT copied FROM election FOR UPDATE`).Scan(&copied); err != nil {
			return err
		}
		if copied != c.From {
			return fmt.Errorf("roll is copied up to %d, not %d (another register running?)", copied, c.From)
		}
		if err := copyRoll(ctx, tx, c.Voters); err != nil {
			return err
		}
		if c.TokenHashes != nil {
			i := 0
			_, err := tx.CopyFrom(ctx, pgx.Identifier{"ballot_tokens"}, []string{"voter_id", "token_hash"}, pgx.CopyFromFunc(func() ([]any, error) {
				if i == len(c.Voters) {
					return nil, nil
				}
				i++
				return []any{c.Voters[i-1].VoterID, c.TokenHashes[i-1]}, nil
			}))
			if err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `UPDATE election SET copied = $1, voting = voting + $2`, c.From+int64(len(c.Voters)), c.Voting)
		return err
	})
	if err != nil {
		return fmt.Errorf("copy voters %d-%d: %w", c.From, c.From+int64(len(c.Voters)), err)
	}
	return nil
}

func copyRoll(ctx context.Context, tx pgx.Tx, voters []election.Voter) error {
	i := 0
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"voters"}, voterColumns, pgx.CopyFromFunc(func() ([]any, error) {
		if i == len(voters) {
			return nil, nil
		}
		v := &voters[i]
		i++
		dob, err := time.Parse(election.DateLayout, v.DateOfBirth)
		if err != nil {
			return nil, fmt.Errorf("voter %s: %w", v.VoterID, err)
		}
		return []any{v.VoterID, v.VoterName, dob, v.Gender, v.Nationality, v.RegistrationNumber,
			v.Address.Street, v.Address.City, v.Address.State, v.Address.Country, v.Address.Postcode,
			v.Email, v.PhoneNumber, v.CellNumber, v.Picture, v.RegisteredAge}, nil
	}))
	return err
}

// CompleteRoll computes the registered counts per state, gender and age band
// (used for turnout percentages) once the whole roll is copied.
func (s *Store) CompleteRoll(ctx context.Context) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, q := range []string{
			`DELETE FROM registered_by_state`,
			`INSERT INTO registered_by_state (state, registered) SELECT address_state, count(*) FROM voters GROUP BY 1`,
			`DELETE FROM registered_by_gender`,
			`INSERT INTO registered_by_gender (gender, registered) SELECT gender, count(*) FROM voters GROUP BY 1`,
			`DELETE FROM registered_by_age_band`,
			`INSERT INTO registered_by_age_band (age_band, registered) SELECT age_band, count(*) FROM voters GROUP BY 1`,
			`UPDATE election SET roll_complete = true`,
			// Fresh statistics for the tally's voter lookups.
			`ANALYZE voters`,
		} {
			if _, err := tx.Exec(ctx, q); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("complete roll: %w", err)
	}
	return nil
}

// MarkPublished records that voters[0:n] are on voters_topic; done marks the
// publication finished.
func (s *Store) MarkPublished(ctx context.Context, n int64, done bool) error {
	_, err := s.pool.Exec(ctx, `UPDATE election SET published = greatest(published, $1),
		published_at = CASE WHEN $2 THEN now() ELSE published_at END`, n, done)
	if err != nil {
		return fmt.Errorf("mark published: %w", err)
	}
	return nil
}

// Candidates returns the candidates with their weights, ordered by ID.
func (s *Store) Candidates(ctx context.Context) ([]election.WeightedCandidate, error) {
	rows, err := s.pool.Query(ctx, `SELECT candidate_id, candidate_name, party_affiliation, biography,
		campaign_platform, photo_url, ballot_weight FROM candidates ORDER BY candidate_id`)
	if err != nil {
		return nil, fmt.Errorf("read candidates: %w", err)
	}
	defer rows.Close()
	var out []election.WeightedCandidate
	for rows.Next() {
		var c election.WeightedCandidate
		if err := rows.Scan(&c.CandidateID, &c.CandidateName, &c.PartyAffiliation, &c.Biography,
			&c.CampaignPlatform, &c.PhotoURL, &c.Weight); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read candidates: %w", err)
	}
	return out, nil
}
