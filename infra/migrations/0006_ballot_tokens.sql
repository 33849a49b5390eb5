-- Real ballots. Every voter of the roll has a ballot token; the database
-- keeps only its keyed hash (HMAC-SHA-256 under a key it never sees), copied
-- in the same transaction as the voter. The cast function looks a token up
-- by its hash.
CREATE TABLE ballot_tokens (
    voter_id   text COLLATE "C" PRIMARY KEY,
    token_hash bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32)
);

-- A ballot the cast function accepted: its claim, taken before producing
-- the vote, so that a second cast of the same voter is answered 409 without
-- producing. The tally stays the authority: a vote counts when it is in
-- votes, whatever this table says. A claim whose vote is not counted a
-- minute on (its cast failed mid-way) can be taken again.
CREATE TABLE ballots_cast (
    voter_id     text COLLATE "C" PRIMARY KEY,
    candidate_id text COLLATE "C" NOT NULL,
    claimed_at   timestamptz NOT NULL DEFAULT now()
);

-- Which key the election's tokens are hashed under (a digest of it, not
-- the key): a register resumed, or a cast function started, with another
-- key is refused rather than issuing or checking tokens no one can use.
ALTER TABLE election ADD COLUMN token_key_id text NOT NULL DEFAULT '';
