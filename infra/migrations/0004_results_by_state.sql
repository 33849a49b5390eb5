-- Results by state: votes per candidate per state, sharded by partition like
-- the other tallies (one tally worker owns a shard at a time), so the page can
-- say who leads each state. The view sums the shards.
CREATE TABLE tally_state_candidate (
    shard        int    NOT NULL,
    state        text   NOT NULL,
    candidate_id text COLLATE "C" NOT NULL,
    votes        bigint NOT NULL,
    PRIMARY KEY (shard, state, candidate_id)
);

-- An election tallied before this migration gets its results from its votes,
-- in the migration's transaction (the tally of a batch is one transaction, so
-- no batch is half in the backfill).
LOCK TABLE votes IN SHARE MODE;
INSERT INTO tally_state_candidate (shard, state, candidate_id, votes)
SELECT coalesce(v.src_partition, 0), r.address_state, v.candidate_id, count(*)
FROM votes v JOIN voters r USING (voter_id)
GROUP BY 1, 2, 3;

CREATE VIEW results_by_state AS
SELECT state, candidate_id, sum(votes)::bigint AS total_votes
FROM tally_state_candidate
GROUP BY state, candidate_id;
