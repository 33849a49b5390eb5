package ballot_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/votingpipe/voting/shared/ballot"
	"github.com/votingpipe/voting/shared/deadletter"
	"github.com/votingpipe/voting/shared/election"
	"github.com/votingpipe/voting/shared/generator"
	"github.com/votingpipe/voting/shared/internal/testkit"
	"github.com/votingpipe/voting/shared/store"
	"github.com/votingpipe/voting/shared/stream"
)

// capture is a Publisher that keeps what it is given.
type capture struct {
	mu   sync.Mutex
	recs []*stream.Record
}

func (c *capture) Publish(_ context.Context, recs ...*stream.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recs = append(c.recs, recs...)
	return nil
}

func (c *capture) take() []*stream.Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.recs
	c.recs = nil
	return out
}

// FuzzBallotProcess sends any voter record through the ballot stage (its
// sheet read from a real database): the batch never fails; a record that
// decodes as a voter becomes exactly one vote, keyed by the voter, that the
// tally decodes as that voter's ballot for a standing candidate; any other
// record becomes exactly one dead letter on voters_dlq, the original record
// with its headers.
func FuzzBallotProcess(f *testing.F) {
	ctx := context.Background()
	st, err := store.Open(ctx, testkit.NewDatabase(f), store.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(st.Close)
	if err := st.Migrate(ctx); err != nil {
		f.Fatal(err)
	}
	cands := generator.Candidates(9, 3)
	rows := make([]election.WeightedCandidate, len(cands))
	standing := map[string]bool{}
	for i, c := range cands {
		rows[i] = election.WeightedCandidate{Candidate: c, Weight: float64(i + 1)}
		standing[c.CandidateID] = true
	}
	if _, err := st.BeginElection(ctx, election.Election{Name: "f", Seed: 9, Voters: 1, Candidates: 3, Fingerprint: "f"}, rows); err != nil {
		f.Fatal(err)
	}
	pub := &capture{}
	p := &ballot.Processor{Roll: st, Publisher: pub, VotesTopic: "votes_topic", VotersDLQ: "voters_dlq", MaxRecordBytes: 4096}

	for i := range 5 {
		b, _ := json.Marshal(generator.Voter(9, i))
		f.Add(b)
		f.Add(append(append([]byte(" \n"), b...), " \t"...))
	}
	v, _ := json.Marshal(generator.Voter(9, 7))
	rec := string(v)
	for _, s := range []string{
		strings.Replace(rec, `"voter_id":"`, `"voter_id":"dup","voter_id":"`, 1),
		strings.Replace(rec, `"voter_id":`, `"VOTER_ID":"upper","voter_id":`, 1),
		strings.Replace(rec, `{`, `{"candidate_id":"mine",`, 1),
		strings.Replace(rec, `{`, `{"vote":2,`, 1),
		strings.Replace(rec, `{`, `{"candidate_name":"mine","nested":{"vote":1,"voting_time":"x"},`, 1),
		strings.Replace(rec, `"registered_age":`, `"registered_age":1e1,"x":`, 1),
		strings.Replace(rec, `"voter_id":"`, `"voter_id":"\u0000`, 1),
		strings.Replace(rec, `"voter_name":"`, `"voter_name":"\ud83d\uddf3 '); DROP TABLE votes; -- `, 1),
		rec + `x`, rec[:len(rec)-1], `{}`, `[]`, `null`, ``, "\xff",
	} {
		f.Add([]byte(s))
	}
	at := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, value []byte) {
		r := &stream.Record{Topic: "voters_topic", Partition: 1, Offset: 5, Key: []byte("k"), Value: value, Timestamp: at}
		sum, err := p.Process(ctx, []*stream.Record{r})
		if err != nil {
			t.Fatalf("a voter record failed its batch (it would be retried forever): %v", err)
		}
		out := pub.take()
		if len(out) != 1 {
			t.Fatalf("%d records out for one in (summary %v)", len(out), sum)
		}
		o := out[0]
		voter, verr := election.DecodeVoter(value, p.MaxRecordBytes)
		if verr != nil {
			if o.Topic != "voters_dlq" || !slices.Equal(o.Value, value) {
				t.Fatalf("a bad voter record became %s %q", o.Topic, o.Value)
			}
			if o.Header(deadletter.HeaderStage) != ballot.Stage || o.Header(deadletter.HeaderSourceOffset) != "5" ||
				o.Header(deadletter.HeaderSourcePartition) != "1" || o.Header(deadletter.HeaderSourceTopic) != "voters_topic" ||
				o.Header(deadletter.HeaderReason) == "" || o.Header(deadletter.HeaderDetail) == "" {
				t.Fatalf("dead letter headers %v", o.Headers)
			}
			return
		}
		if o.Topic != "votes_topic" || string(o.Key) != voter.VoterID {
			t.Fatalf("voter %q became a record on %s keyed %q", voter.VoterID, o.Topic, o.Key)
		}
		b, err := election.DecodeBallot(o.Value, 0)
		if err != nil {
			t.Fatalf("the vote of a valid voter record is not a valid ballot: %v\nrecord %q\nvote   %q", err, value, o.Value)
		}
		if b.VoterID != voter.VoterID || !standing[b.CandidateID] || !b.VotingTime.Equal(at) {
			t.Fatalf("voter %q voted as %q for %q at %v", voter.VoterID, b.VoterID, b.CandidateID, b.VotingTime)
		}
	})
}
