-- Seed data: the same tables and fields as the original Python demo, plus the
-- election row that makes registration idempotent and resumable.
--
-- IDs are opaque: they compare byte-wise (COLLATE "C"), which keeps the
-- million-entry voter and vote indexes free of locale-aware comparisons.

CREATE TABLE election (
    id               int PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    name             text        NOT NULL,
    seed             bigint      NOT NULL,
    voters           bigint      NOT NULL,
    candidates       int         NOT NULL,
    fingerprint      text        NOT NULL,
    registered_at    timestamptz NOT NULL DEFAULT now(),
    -- voters[0:copied] are in the voters table; voters[0:published] are on
    -- voters_topic. Registration resumes from these after a crash.
    copied           bigint      NOT NULL DEFAULT 0,
    roll_complete    boolean     NOT NULL DEFAULT false,
    published        bigint      NOT NULL DEFAULT 0,
    published_at     timestamptz
);

CREATE TABLE candidates (
    candidate_id      text COLLATE "C" PRIMARY KEY,
    candidate_name    text NOT NULL,
    party_affiliation text NOT NULL,
    biography         text NOT NULL DEFAULT '',
    campaign_platform text NOT NULL DEFAULT '',
    photo_url         text NOT NULL DEFAULT '',
    -- relative share of simulated ballots (ballot stage)
    ballot_weight     double precision NOT NULL DEFAULT 1 CHECK (ballot_weight >= 0)
);

CREATE TABLE voters (
    voter_id            text COLLATE "C" PRIMARY KEY,
    voter_name          text NOT NULL,
    date_of_birth       date NOT NULL,
    gender              text NOT NULL,
    nationality         text NOT NULL,
    registration_number text NOT NULL,
    address_street      text NOT NULL,
    address_city        text NOT NULL,
    address_state       text NOT NULL,
    address_country     text NOT NULL,
    address_postcode    text NOT NULL,
    email               text NOT NULL,
    phone_number        text NOT NULL,
    cell_number         text NOT NULL,
    picture             text NOT NULL,
    registered_age      int  NOT NULL,
    age_band            text GENERATED ALWAYS AS (
        CASE
            WHEN registered_age < 25 THEN '18-24'
            WHEN registered_age < 35 THEN '25-34'
            WHEN registered_age < 45 THEN '35-44'
            WHEN registered_age < 55 THEN '45-54'
            WHEN registered_age < 65 THEN '55-64'
            ELSE '65+'
        END) STORED
);

-- One row per voter who voted. src_partition/src_offset say which record of
-- votes_topic was counted, so a redelivery of that same record is a no-op and
-- the audit can account for every offset.
--
-- voter_id and candidate_id reference voters and candidates without FOREIGN
-- KEY constraints, on purpose. The tally inserts a vote only for a voter and
-- a candidate it has just looked up in the same statement (it must look them
-- up anyway, to tell unknown_voter from unknown_candidate and to count by
-- state), and the triggers below make voters and candidates append-only, so
-- no reference can dangle; `audit` checks it. A per-row FK check repeats the
-- lookup and share-locks the referenced row: measured on this machine it
-- halved the tally's throughput with two batches at once (77k vs 141k
-- votes/s), and on the three candidate rows every lock became a multixact.
CREATE TABLE votes (
    voter_id      text COLLATE "C" NOT NULL UNIQUE,
    candidate_id  text COLLATE "C" NOT NULL,
    voting_time   timestamptz NOT NULL,
    vote          int         NOT NULL DEFAULT 1,
    src_partition int,
    src_offset    bigint
);

-- Registered voters per dimension, written once by register so that turnout
-- percentages never scan the voters table.
CREATE TABLE registered_by_state (
    state      text PRIMARY KEY,
    registered bigint NOT NULL
);
CREATE TABLE registered_by_gender (
    gender     text PRIMARY KEY,
    registered bigint NOT NULL
);
CREATE TABLE registered_by_age_band (
    age_band   text PRIMARY KEY,
    registered bigint NOT NULL
);

-- The roll and the candidates are append-only once registered: votes refer to
-- them by ID.
CREATE FUNCTION roll_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows cannot be deleted or have their ID changed: votes refer to them', TG_TABLE_NAME;
END $$;
CREATE TRIGGER candidates_no_delete BEFORE DELETE OR TRUNCATE ON candidates
    FOR EACH STATEMENT EXECUTE FUNCTION roll_is_append_only();
CREATE TRIGGER candidates_fixed_id BEFORE UPDATE OF candidate_id ON candidates
    FOR EACH ROW WHEN (OLD.candidate_id IS DISTINCT FROM NEW.candidate_id)
    EXECUTE FUNCTION roll_is_append_only();
CREATE TRIGGER voters_no_delete BEFORE DELETE OR TRUNCATE ON voters
    FOR EACH STATEMENT EXECUTE FUNCTION roll_is_append_only();
CREATE TRIGGER voters_fixed_id BEFORE UPDATE OF voter_id ON voters
    FOR EACH ROW WHEN (OLD.voter_id IS DISTINCT FROM NEW.voter_id)
    EXECUTE FUNCTION roll_is_append_only();
