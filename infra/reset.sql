-- Drops every object the migrations create, so that `go run ./local reset`
-- starts over in the same database. Kept in step with migrations/ by a test
-- (shared/store: after Migrate and Reset the schema holds nothing): a
-- migration that adds an object adds its DROP here.
DROP VIEW IF EXISTS candidate_results, turnout_by_state, turnout_by_gender, turnout_by_age_band, votes_timeline, results_by_state;
DROP TABLE IF EXISTS
    election, election_starts, candidates, voters, votes,
    registered_by_state, registered_by_gender, registered_by_age_band,
    tally_candidate, tally_state, tally_gender, tally_age_band, tally_timeline, tally_state_candidate,
    rejected_votes, ballot_tokens, ballots_cast, schema_migrations;
DROP SEQUENCE IF EXISTS totals_version;
DROP FUNCTION IF EXISTS roll_is_append_only();
