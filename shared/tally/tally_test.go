package tally_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/votingpipe/voting/shared/deadletter"
	"github.com/votingpipe/voting/shared/election"
	"github.com/votingpipe/voting/shared/generator"
	"github.com/votingpipe/voting/shared/internal/testkit"
	"github.com/votingpipe/voting/shared/store"
	"github.com/votingpipe/voting/shared/stream"
	"github.com/votingpipe/voting/shared/tally"
)

const votesTopic = "votes_topic"

var topics = tally.Topics{CandidateTotals: "cand", TurnoutTotals: "turnout", VotesDLQ: "votes_dlq"}

// capture is a Publisher that keeps what it is given, or fails while fail is set.
type capture struct {
	mu   sync.Mutex
	recs []*stream.Record
	fail atomic.Bool
}

func (c *capture) Publish(_ context.Context, recs ...*stream.Record) error {
	if c.fail.Load() {
		return errors.New("broker unreachable")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recs = append(c.recs, recs...)
	return nil
}

func (c *capture) take(topic string) []*stream.Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out, rest []*stream.Record
	for _, r := range c.recs {
		if r.Topic == topic {
			out = append(out, r)
		} else {
			rest = append(rest, r)
		}
	}
	c.recs = rest
	return out
}

// rig is a tally processor on a fresh database holding an election of n
// voters and 3 candidates.
func rig(t testing.TB, n int) (*tally.Processor, *capture, *store.Store, []election.Voter, []election.Candidate) {
	t.Helper()
	st := openStore(t)
	cands := generator.Candidates(7, 3)
	voters := testkit.Register(t, st, "t", 7, cands, n)
	pub := &capture{}
	return &tally.Processor{Store: st, Publisher: pub, Topics: topics, MaxRecordBytes: 4096}, pub, st, voters, cands
}

func vote(voterID, candidateID string) []byte {
	b, _ := json.Marshal(map[string]any{"voter_id": voterID, "candidate_id": candidateID, "voting_time": "2026-11-03T10:00:00Z", "vote": 1})
	return b
}

// pools are the test pools of the stores the tests open.
var pools sync.Map // *store.Store -> *pgxpool.Pool

func openStore(t testing.TB) *store.Store {
	st, pool := testkit.OpenStore(t)
	pools.Store(st, pool)
	return st
}

func pool(st *store.Store) *pgxpool.Pool {
	p, _ := pools.Load(st)
	return p.(*pgxpool.Pool)
}

func count(t testing.TB, st *store.Store, sql string) int {
	t.Helper()
	return int(testkit.Count(t, pool(st), sql))
}

// FuzzTallyProcess sends any record through the tally stage on a real
// database: the batch never fails, and the record is either counted or
// rejected, with one dead letter and one row in rejected_votes.
func FuzzTallyProcess(f *testing.F) {
	p, pub, st, voters, cands := rig(f, 50)
	for i, v := range voters[:10] {
		f.Add(vote(v.VoterID, cands[i%3].CandidateID))
	}
	for _, s := range []string{
		`{"voter_id":"` + voters[11].VoterID + `","candidate_id":"` + cands[0].CandidateID + `","voting_time":"2026-11-03T10:00:00.123456789+14:00","vote":1,"extra":[1,{"a":null}]}`,
		`{"voter_id":"` + voters[12].VoterID + `","candidate_id":"` + cands[1].CandidateID + `","voting_time":"0001-01-01T00:00:00Z","vote":1}`,
		`{"voter_id":"` + voters[13].VoterID + `","candidate_id":"` + cands[2].CandidateID + `","voting_time":"9999-12-31T23:59:59Z","vote":1}`,
		`{"voter_id":"` + voters[14].VoterID + `","voter_id":"x","candidate_id":"` + cands[0].CandidateID + `","voting_time":"2026-11-03T10:00:00Z","vote":1}`,
		`{"voter_id":"a\u0000b","candidate_id":"c","voting_time":"2026-11-03T10:00:00Z","vote":1}`,
		`{"voter_id":"\ud800","candidate_id":"c","voting_time":"2026-11-03T10:00:00Z","vote":1}`,
		"{\"voter_id\":\"\xff\",\"candidate_id\":\"c\",\"voting_time\":\"2026-11-03T10:00:00Z\",\"vote\":1}",
		`{"voter_id":"v","candidate_id":"c","voting_time":"2026-11-03T10:00:00Z","vote":1.0}`,
		`{"voter_id":"v","candidate_id":"c","voting_time":"2026-11-03T10:00:00Z","vote":1e0}`,
		`{"voter_id":"x'); DROP TABLE votes; --","candidate_id":"c","voting_time":"2026-11-03T10:00:00Z","vote":1}`,
		`{"voter_id":"` + voters[0].VoterID + `","candidate_id":"` + cands[1].CandidateID + `","voting_time":"2026-11-03T10:00:00Z","vote":1}`,
		`{}`, `[]`, `null`, ``, ` `, `{"vote":1e400}`, "\xff\xfe", `{"voter_id":` + `[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]` + `}`,
	} {
		f.Add([]byte(s))
	}
	reasons := map[string]bool{}
	for _, r := range []election.Reason{election.ReasonMalformed, election.ReasonOversized, election.ReasonUnknownVoter,
		election.ReasonUnknownCandidate, election.ReasonAlreadyVoted, election.ReasonDuplicate} {
		reasons[string(r)] = true
	}
	var offset atomic.Int64
	f.Fuzz(func(t *testing.T, value []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		off := offset.Add(1)
		rec := &stream.Record{Topic: votesTopic, Partition: 0, Offset: off, Value: value}
		sum, err := p.Process(ctx, []*stream.Record{rec})
		if err != nil {
			t.Fatalf("a record failed its batch (it would be retried forever): %v", err)
		}
		dlq := pub.take(topics.VotesDLQ)
		pub.take(topics.CandidateTotals)
		pub.take(topics.TurnoutTotals)
		var rejected int
		if err := pool(st).QueryRow(ctx, `SELECT count(*) FROM rejected_votes WHERE partition = 0 AND "offset" = $1`, off).Scan(&rejected); err != nil {
			t.Fatal(err)
		}
		switch {
		case sum["counted"] == 1:
			if len(dlq) != 0 || rejected != 0 {
				t.Fatalf("counted and rejected: %d dead letters, %d rows", len(dlq), rejected)
			}
		case len(dlq) == 1 && rejected == 1:
			if r := dlq[0].Header(deadletter.HeaderReason); !reasons[r] {
				t.Fatalf("dead letter with reason %q", r)
			}
			if !slices.Equal(dlq[0].Value, value) {
				t.Fatal("the dead letter is not the original record")
			}
		default:
			t.Fatalf("neither counted nor rejected once: summary %v, %d dead letters, %d rows", sum, len(dlq), rejected)
		}
	})
}
