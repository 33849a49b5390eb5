-- Turnout: the share of the roll that votes in the simulation (the ballot
-- stage casts the votes of the voters who vote; election.Votes decides who;
-- 0: nobody, real ballots only). voting counts
-- the voters of voters[0:copied] who vote, so a run knows how many votes to
-- wait for. Elections registered before this migration: everyone votes.
ALTER TABLE election
    ADD COLUMN turnout double precision NOT NULL DEFAULT 1 CHECK (turnout >= 0 AND turnout <= 1),
    ADD COLUMN voting  bigint NOT NULL DEFAULT 0 CHECK (voting >= 0);
UPDATE election SET voting = copied;
