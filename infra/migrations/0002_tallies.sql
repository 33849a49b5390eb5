-- Tallies are sharded by the Kafka partition that produced them: one tally
-- worker owns a partition at a time, so concurrent writers never update the
-- same row. The views sum the shards.

CREATE TABLE tally_candidate (
    shard        int    NOT NULL,
    candidate_id text COLLATE "C" NOT NULL,
    votes        bigint NOT NULL,
    PRIMARY KEY (shard, candidate_id)
);

CREATE TABLE tally_state (
    shard int    NOT NULL,
    state text   NOT NULL,
    votes bigint NOT NULL,
    PRIMARY KEY (shard, state)
);

CREATE TABLE tally_gender (
    shard  int    NOT NULL,
    gender text   NOT NULL,
    votes  bigint NOT NULL,
    PRIMARY KEY (shard, gender)
);

CREATE TABLE tally_age_band (
    shard    int    NOT NULL,
    age_band text   NOT NULL,
    votes    bigint NOT NULL,
    PRIMARY KEY (shard, age_band)
);

-- Votes per candidate per second of voting_time, for the votes-over-time chart.
CREATE TABLE tally_timeline (
    shard        int         NOT NULL,
    candidate_id text COLLATE "C" NOT NULL,
    second       timestamptz NOT NULL,
    votes        bigint      NOT NULL,
    PRIMARY KEY (shard, candidate_id, second)
);

-- Every record of votes_topic that the tally did not count, with its reason:
-- malformed, oversized, unknown_voter, unknown_candidate, already_voted
-- (a second, different ballot) or duplicate (the same choice sent again).
CREATE TABLE rejected_votes (
    topic       text        NOT NULL,
    partition   int         NOT NULL,
    "offset"    bigint      NOT NULL,
    reason      text        NOT NULL,
    detail      text        NOT NULL DEFAULT '',
    voter_id    text COLLATE "C",
    payload     bytea,
    rejected_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition, "offset")
);

CREATE VIEW candidate_results AS
SELECT c.candidate_id, c.candidate_name, c.party_affiliation, c.photo_url,
       coalesce(t.total_votes, 0)::bigint AS total_votes
FROM candidates c
LEFT JOIN (SELECT candidate_id, sum(votes) AS total_votes
           FROM tally_candidate GROUP BY candidate_id) t USING (candidate_id);

CREATE VIEW turnout_by_state AS
SELECT coalesce(r.state, t.state) AS state,
       coalesce(t.total_votes, 0)::bigint AS total_votes,
       coalesce(r.registered, 0)::bigint AS registered
FROM registered_by_state r
FULL JOIN (SELECT state, sum(votes) AS total_votes
           FROM tally_state GROUP BY state) t USING (state);

CREATE VIEW turnout_by_gender AS
SELECT coalesce(r.gender, t.gender) AS gender,
       coalesce(t.total_votes, 0)::bigint AS total_votes,
       coalesce(r.registered, 0)::bigint AS registered
FROM registered_by_gender r
FULL JOIN (SELECT gender, sum(votes) AS total_votes
           FROM tally_gender GROUP BY gender) t USING (gender);

CREATE VIEW turnout_by_age_band AS
SELECT coalesce(r.age_band, t.age_band) AS age_band,
       coalesce(t.total_votes, 0)::bigint AS total_votes,
       coalesce(r.registered, 0)::bigint AS registered
FROM registered_by_age_band r
FULL JOIN (SELECT age_band, sum(votes) AS total_votes
           FROM tally_age_band GROUP BY age_band) t USING (age_band);

CREATE VIEW votes_timeline AS
SELECT candidate_id, second, sum(votes)::bigint AS votes
FROM tally_timeline GROUP BY candidate_id, second;
