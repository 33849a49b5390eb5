-- An election owns its records. Topics, state directories and streams
-- outlive elections: when an election is registered it records which
-- transport and broker carry it and, for each topic-partition, the position
-- its own records start from. Records before that position belong to an
-- earlier election: the stages skip them, and the audit accounts for every
-- record from the start on.
--
-- An election registered before this migration keeps an empty transport and
-- no start positions: all of its topics' records are its own, as before.

ALTER TABLE election
    -- A new identity for every registration: a stage that cached an election
    -- (its seed, candidates and start positions) notices when the database
    -- holds another one (it was reset and registered again).
    ADD COLUMN election_id uuid NOT NULL DEFAULT gen_random_uuid(),
    -- 'kafka' or 'nats' ('' when registered before this migration).
    ADD COLUMN transport   text NOT NULL DEFAULT '',
    -- Which broker: the Kafka cluster ID, or the NATS server and stream prefix.
    ADD COLUMN broker      text NOT NULL DEFAULT '';

-- Where the election's records start: the end offset of each partition of
-- the topics it reads (voters_topic, votes_topic) at registration, before it
-- published anything. On NATS an offset is the stream sequence - 1.
CREATE TABLE election_starts (
    topic        text   NOT NULL,
    partition    int    NOT NULL,
    start_offset bigint NOT NULL CHECK (start_offset >= 0),
    PRIMARY KEY (topic, partition)
);

-- Versions of the totals published on the aggregated topics: taken under the
-- totals lock (see store.PublishTotals), so a later version always carries
-- totals read later, and the last record per key is the newest.
CREATE SEQUENCE totals_version;
