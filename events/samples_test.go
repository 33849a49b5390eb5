// Package events_test keeps the sample events in this directory correct and
// invokes every function with them.
//
// The sample events (register.json, ballot.json, tally.json, dashboard.json)
// are what `sam local invoke -e` and `go run ./local invoke -e` take. They
// describe one small election: register.json registers 10 voters of seed 42;
// ballot.json delivers the first three of them on voters_topic as an MSK
// event; tally.json delivers their votes (byte for byte what the ballot
// function casts for ballot.json), a fourth voter's vote carrying only the
// fields the tally needs, and one malformed record; dashboard.json delivers the
// totals the tally publishes for tally.json.
//
// They are generated from the same generator and ballot code the functions
// run. After a change to either, regenerate them with
//
//	go test ./events -run TestSampleEvents -update
package events_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/votingpipe/voting/infra"
	"github.com/votingpipe/voting/shared/ballot"
	"github.com/votingpipe/voting/shared/config"
	"github.com/votingpipe/voting/shared/election"
	"github.com/votingpipe/voting/shared/generator"
	"github.com/votingpipe/voting/shared/kafkaevent"
	"github.com/votingpipe/voting/shared/register"
	"github.com/votingpipe/voting/shared/stream"
	"github.com/votingpipe/voting/shared/tokens"
)

var update = flag.Bool("update", false, "rewrite the sample events and golden responses")

// The election the samples describe.
const (
	sampleSeed   = 42
	sampleVoters = 10
)

// meta is the MSK cluster the sample events claim to come from.
var meta = kafkaevent.Meta{
	Source: kafkaevent.SourceMSK,
	ARN:    "arn:aws:kafka:us-east-1:123456789012:cluster/voting/5a3c1d2e-7b8f-4e6a-9c0d-1f2e3a4b5c6d-2",
	BootstrapServers: "b-1.voting.abc123.c2.kafka.us-east-1.amazonaws.com:9098," +
		"b-2.voting.abc123.c2.kafka.us-east-1.amazonaws.com:9098",
}

// voteTime is when the first sample voter record was produced.
var voteTime = time.Date(2026, time.November, 3, 14, 30, 0, 0, time.UTC)

// sheet is the ballot sheet register.json produces: generated candidates,
// equal weights, in the order the ballot function reads them from the
// candidates table (by candidate_id).
func sheet() *ballot.Sheet {
	req := register.Request{Voters: sampleVoters}
	if err := req.Normalize(); err != nil {
		panic(err)
	}
	specs := register.Candidates(req)
	slices.SortFunc(specs, func(a, b generator.CandidateSpec) int { return strings.Compare(a.CandidateID, b.CandidateID) })
	var cands []election.Candidate
	var weights []float64
	for _, c := range specs {
		cands = append(cands, c.Candidate)
		weights = append(weights, c.Weight)
	}
	return ballot.NewSheet(*req.Seed, cands, weights)
}

// choice returns the candidate the sheet gives voter v.
func choice(s *ballot.Sheet, v election.Voter) election.Candidate {
	return s.Candidates[election.Choose(s.Seed, v.VoterID, s.Weights)]
}

// voterRecords are ballot.json's records: voters 0-2 on voters_topic-0.
func voterRecords(topics config.Topics) []*stream.Record {
	var recs []*stream.Record
	for i := range 3 {
		v := generator.Voter(sampleSeed, i)
		val, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		recs = append(recs, &stream.Record{
			Topic: topics.Voters, Partition: 0, Offset: int64(i), Key: []byte(v.VoterID), Value: val,
			Timestamp: voteTime.Add(time.Duration(i) * 1500 * time.Millisecond),
		})
	}
	return recs
}

// voteRecords are tally.json's records: the votes ballot casts for
// ballot.json on votes_topic-0, and on votes_topic-1 a minimal vote of voter
// 3 followed by a malformed record.
func voteRecords(topics config.Topics) []*stream.Record {
	s := sheet()
	var recs []*stream.Record
	for i, vr := range voterRecords(topics) {
		recs = append(recs, &stream.Record{
			Topic: topics.Votes, Partition: 0, Offset: int64(i), Key: vr.Key,
			Value:     s.Cast(nil, string(vr.Key), vr.Value, vr.Timestamp),
			Timestamp: vr.Timestamp.Add(40 * time.Millisecond),
		})
	}
	v3 := generator.Voter(sampleSeed, 3)
	c3 := choice(s, v3)
	minimal := fmt.Sprintf(`{"voter_id":%q,"candidate_id":%q,"voting_time":%q,"vote":1}`,
		v3.VoterID, c3.CandidateID, voteTime.Add(5*time.Second).Format(time.RFC3339Nano))
	v4 := generator.Voter(sampleSeed, 4)
	malformed := fmt.Sprintf(`{"voter_id":%q,"candidate_id":`, v4.VoterID) // cut short
	recs = append(recs,
		&stream.Record{Topic: topics.Votes, Partition: 1, Offset: 0, Key: []byte(v3.VoterID), Value: []byte(minimal),
			Timestamp: voteTime.Add(5*time.Second + 40*time.Millisecond)},
		&stream.Record{Topic: topics.Votes, Partition: 1, Offset: 1, Key: []byte(v4.VoterID), Value: []byte(malformed),
			Timestamp: voteTime.Add(6*time.Second + 40*time.Millisecond)},
	)
	return recs
}

// sampleElectionID stands for the election's ID in dashboard.json's totals
// (a registration makes a new one each time).
const sampleElectionID = "2c1f0e3a-6b4d-4e8f-9a7c-5d2b1e0f3a4c"

// countedVoters are the voters tally.json counts.
var countedVoters = []int{0, 1, 2, 3}

// totalsRecords are dashboard.json's records: the candidate and state totals
// the tally publishes after tally.json (keyed by candidate and state).
func totalsRecords(topics config.Topics) []*stream.Record {
	s := sheet()
	at := voteTime.Add(7 * time.Second)
	votes := map[string]int64{}
	byState := map[string]int64{}
	results := map[string]map[string]int64{} // state -> candidate -> votes
	registered := map[string]int64{}
	for i := range sampleVoters {
		registered[generator.Voter(sampleSeed, i).Address.State]++
	}
	for _, i := range countedVoters {
		v := generator.Voter(sampleSeed, i)
		votes[choice(s, v).CandidateID]++
		byState[v.Address.State]++
		if results[v.Address.State] == nil {
			results[v.Address.State] = map[string]int64{}
		}
		results[v.Address.State][choice(s, v).CandidateID]++
	}
	var recs []*stream.Record
	for _, c := range s.Candidates {
		if votes[c.CandidateID] == 0 {
			continue // the tally publishes only the totals that changed
		}
		val, err := json.Marshal(election.CandidateTotal{
			CandidateID: c.CandidateID, CandidateName: c.CandidateName, PartyAffiliation: c.PartyAffiliation,
			PhotoURL: c.PhotoURL, TotalVotes: votes[c.CandidateID], UpdatedAt: at, Version: 1, Election: sampleElectionID,
		})
		if err != nil {
			panic(err)
		}
		recs = append(recs, &stream.Record{Topic: topics.CandidateTotals, Key: []byte(c.CandidateID), Value: val, Timestamp: at})
	}
	states := make([]string, 0, len(byState))
	for st := range byState {
		states = append(states, st)
	}
	slices.Sort(states)
	for _, st := range states {
		val, err := json.Marshal(election.StateTotal{State: st, TotalVotes: byState[st], Registered: registered[st],
			VotesByCandidate: results[st], UpdatedAt: at, Version: 1, Election: sampleElectionID})
		if err != nil {
			panic(err)
		}
		recs = append(recs, &stream.Record{Topic: topics.TurnoutTotals, Key: []byte(st), Value: val, Timestamp: at})
	}
	// Offsets per partition, as a broker would assign them; two partitions per topic.
	next := map[string]int64{}
	for i, r := range recs {
		r.Partition = int32(i % 2)
		k := kafkaevent.PartitionKey(r.Topic, r.Partition)
		r.Offset = next[k]
		next[k]++
	}
	return recs
}

// samples returns the sample events by file name.
func samples() map[string][]byte {
	topics := defaultTopics()
	out := map[string][]byte{
		"register.json": mustJSON(struct {
			Voters     int `json:"voters"`
			Candidates int `json:"candidates"`
			Seed       int `json:"seed"`
		}{sampleVoters, 3, sampleSeed}),
		"ballot.json":    mustJSON(kafkaevent.Event(meta, voterRecords(topics))),
		"tally.json":     mustJSON(kafkaevent.Event(meta, voteRecords(topics))),
		"dashboard.json": mustJSON(kafkaevent.Event(meta, totalsRecords(topics))),
	}
	return out
}

func defaultTopics() config.Topics {
	cfg, err := config.LoadFrom[config.Config](map[string]string{}, config.Local)
	if err != nil {
		panic(err)
	}
	return cfg.Topics
}

func mustJSON(v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(err)
	}
	return append(b, '\n')
}

// writeSamples rewrites the sample events (-update).
func writeSamples(t *testing.T) {
	t.Helper()
	for name, b := range samples() {
		if err := os.WriteFile(name, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSampleEvents checks that the checked-in events are the ones the
// generator and ballot code produce today (-update rewrites them).
func TestSampleEvents(t *testing.T) {
	if *update {
		writeSamples(t)
	}
	for name, want := range samples() {
		got, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("events/%s is stale; regenerate with: go test ./events -run TestSampleEvents -update", name)
		}
	}
	names, _ := filepath.Glob("*.json")
	slices.Sort(names)
	if want := []string{"ballot.json", "cast.json", "dashboard.json", "register.json", "tally.json"}; !slices.Equal(names, want) {
		t.Errorf("events/ holds %v, want %v", names, want)
	}
}

// cast.json is written by hand (a token is random, so a sample cannot hold
// a real one): an HTTP API payload 2.0 event of POST /ballots, for a
// candidate of register.json's election, with a token of the right form that
// no voter has (replace it with one from tokens.csv to cast).
func TestCastSampleEvent(t *testing.T) {
	b, err := os.ReadFile("cast.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Version != "2.0" || ev.RouteKey != "POST /ballots" || ev.RequestContext.HTTP.Method != "POST" || ev.RawPath != "/ballots" {
		t.Fatalf("cast.json is not POST /ballots: %+v", ev)
	}
	if !slices.Contains(infra.CastRoutes, infra.CastRoute{Method: "POST", Path: "/ballots"}) {
		t.Fatal("POST /ballots is not a route of the cast API")
	}
	var body struct {
		Token       string `json:"token"`
		CandidateID string `json:"candidate_id"`
	}
	if err := json.Unmarshal([]byte(ev.Body), &body); err != nil {
		t.Fatal(err)
	}
	if _, ok := tokens.Parse(body.Token); !ok {
		t.Errorf("the sample token %q is not of a token's form", body.Token)
	}
	if !slices.ContainsFunc(sheet().Candidates, func(c election.Candidate) bool { return c.CandidateID == body.CandidateID }) {
		t.Errorf("candidate %q is not one of register.json's election", body.CandidateID)
	}
	if ev.Headers["content-length"] != fmt.Sprint(len(ev.Body)) {
		t.Errorf("content-length %s for a body of %d bytes", ev.Headers["content-length"], len(ev.Body))
	}
}
