package election_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/votingpipe/voting/shared/election"
)

func TestDecodeBallot(t *testing.T) {
	big := `{"voter_id":"v","candidate_id":"c","voting_time":"2026-11-03T10:00:00Z","vote":1,"pad":"` + strings.Repeat("x", 70000) + `"}`
	tests := []struct {
		name   string
		in     string
		reason election.Reason // "" = valid
		detail string
	}{
		{"minimal vote", `{"voter_id":"v1","candidate_id":"c1","voting_time":"2026-11-03T10:00:00.123Z","vote":1}`, "", ""},
		{"full original vote", `{"voter_id":"v1","voter_name":"A","address":{"state":"Ohio"},"candidate_id":"c1","candidate_name":"B","voting_time":"2026-11-03T10:00:00+01:00","vote":1}`, "", ""},
		{"not JSON", `{"voter_id":`, election.ReasonMalformed, "invalid JSON"},
		{"trailing garbage", `{"voter_id":"v","candidate_id":"c","voting_time":"2026-11-03T10:00:00Z","vote":1} x`, election.ReasonMalformed, "invalid JSON"},
		{"null", `null`, election.ReasonMalformed, "not a JSON object"},
		{"empty", ``, election.ReasonMalformed, "empty"},
		{"array", `[1,2]`, election.ReasonMalformed, ""},
		{"missing fields", `{"voter_id":"v"}`, election.ReasonMalformed, "candidate_id, voting_time, vote"},
		{"NUL in an ID", `{"voter_id":"v\u0000","candidate_id":"c","voting_time":"2026-11-03T10:00:00Z","vote":1}`, election.ReasonMalformed, "NUL"},
		{"invalid UTF-8 in an ID", "{\"voter_id\":\"v\xff\",\"candidate_id\":\"c\",\"voting_time\":\"2026-11-03T10:00:00Z\",\"vote\":1}", election.ReasonMalformed, "UTF-8"},
		{"vote not a number", `{"voter_id":"v","candidate_id":"c","voting_time":"2026-11-03T10:00:00Z","vote":"1"}`, election.ReasonMalformed, "field vote"},
		{"vote not 1", `{"voter_id":"v","candidate_id":"c","voting_time":"2026-11-03T10:00:00Z","vote":2}`, election.ReasonMalformed, "vote is 2"},
		{"bad time", `{"voter_id":"v","candidate_id":"c","voting_time":"yesterday","vote":1}`, election.ReasonMalformed, "voting_time"},
		{"wrong type", `{"voter_id":7,"candidate_id":"c","voting_time":"2026-11-03T10:00:00Z","vote":1}`, election.ReasonMalformed, "voter_id"},
		{"oversized", big, election.ReasonOversized, "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := election.DecodeBallot([]byte(tt.in), 0)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if b.VoterID != "v1" || b.CandidateID != "c1" || b.VotingTime.IsZero() {
					t.Fatalf("decoded %+v", b)
				}
				return
			}
			rej, ok := election.AsRejection(err)
			if !ok {
				t.Fatalf("want a rejection, got %v", err)
			}
			if rej.Reason != tt.reason || !strings.Contains(err.Error(), tt.detail) {
				t.Fatalf("got %q (%v), want reason %q mentioning %q", rej.Reason, err, tt.reason, tt.detail)
			}
		})
	}
}

func TestDecodeVoter(t *testing.T) {
	valid := election.Voter{VoterID: "v", VoterName: "A B", DateOfBirth: "1980-01-02", Gender: "female",
		Address: election.Address{State: "Ohio"}, RegisteredAge: 46}
	ok, _ := json.Marshal(valid)
	tests := []struct {
		name   string
		in     string
		reason election.Reason
	}{
		{"valid", string(ok), ""},
		{"missing state and name", `{"voter_id":"v","gender":"f","date_of_birth":"1980-01-02","registered_age":40}`, election.ReasonMalformed},
		{"bad date", strings.Replace(string(ok), "1980-01-02", "02/01/1980", 1), election.ReasonMalformed},
		{"too young", strings.Replace(string(ok), `"registered_age":46`, `"registered_age":12`, 1), election.ReasonMalformed},
		{"garbage", "\x00\x01", election.ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := election.DecodeVoter([]byte(tt.in), 0)
			if tt.reason == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if rej, ok := election.AsRejection(err); !ok || rej.Reason != tt.reason {
				t.Fatalf("got %v, want %s", err, tt.reason)
			}
		})
	}
}

func TestVoteJSONIsTheOriginalShape(t *testing.T) {
	v := election.Vote{
		Voter:      election.Voter{VoterID: "v1", Address: election.Address{State: "Ohio"}},
		Candidate:  election.Candidate{CandidateID: "c1", CandidateName: "Ann"},
		VotingTime: time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC), Vote: 1,
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(b, &m) //nolint:errcheck
	for _, k := range []string{"voter_id", "voter_name", "date_of_birth", "gender", "nationality", "registration_number",
		"address", "email", "phone_number", "cell_number", "picture", "registered_age",
		"candidate_id", "candidate_name", "party_affiliation", "biography", "campaign_platform", "photo_url",
		"voting_time", "vote"} {
		if _, ok := m[k]; !ok {
			t.Errorf("vote JSON lacks %q: %s", k, b)
		}
	}
	if _, err := election.DecodeBallot(b, 0); err != nil {
		t.Fatalf("a vote must decode as a ballot: %v", err)
	}
}

func TestChoose(t *testing.T) {
	if election.Choose(1, "x", nil) != -1 {
		t.Fatal("no candidates must give -1")
	}
	// Deterministic.
	for i := range 100 {
		id := string(rune('a'+i%26)) + "voter"
		if election.Choose(42, id, []float64{1, 1, 1}) != election.Choose(42, id, []float64{1, 1, 1}) {
			t.Fatal("Choose is not deterministic")
		}
	}
	// Follows the weights.
	weights := []float64{1, 2, 0, 1}
	counts := make([]int, len(weights))
	const n = 40000
	for i := range n {
		counts[election.Choose(7, "voter-"+string(rune(i))+"-"+time.Duration(i).String(), weights)]++
	}
	if counts[2] != 0 {
		t.Errorf("a zero weight got %d votes", counts[2])
	}
	for i, want := range []float64{0.25, 0.5, 0, 0.25} {
		got := float64(counts[i]) / n
		if got < want-0.02 || got > want+0.02 {
			t.Errorf("candidate %d: share %.3f, want %.2f", i, got, want)
		}
	}
	// All-zero weights: uniform.
	if c := election.Choose(1, "v", []float64{0, 0}); c < 0 || c > 1 {
		t.Errorf("all-zero weights gave %d", c)
	}
}

func TestAgeBand(t *testing.T) {
	for age, want := range map[int]string{18: "18-24", 24: "18-24", 25: "25-34", 64: "55-64", 65: "65+", 100: "65+"} {
		if got := election.AgeBand(age); got != want {
			t.Errorf("AgeBand(%d) = %s, want %s", age, got, want)
		}
	}
}

func TestAppendVoteEqualsVote(t *testing.T) {
	voter := election.Voter{VoterID: "v1", VoterName: "Ann <b>", DateOfBirth: "1970-01-01", Gender: "female",
		Address: election.Address{State: "Ohio"}, RegisteredAge: 56}
	cand := election.Candidate{CandidateID: "c1", CandidateName: "Bo \"Q\"", PartyAffiliation: "P"}
	at := time.Date(2026, 11, 3, 10, 0, 0, 123456789, time.FixedZone("x", 3600))
	rec, _ := json.Marshal(voter)
	got := election.AppendVote(nil, append(rec, '\n'), election.CandidateFields(cand), at)
	var fromAppend, fromStruct map[string]any
	if err := json.Unmarshal(got, &fromAppend); err != nil {
		t.Fatalf("AppendVote gave invalid JSON: %v\n%s", err, got)
	}
	want, _ := json.Marshal(election.Vote{Voter: voter, Candidate: cand, VotingTime: at.UTC().Truncate(time.Millisecond), Vote: 1})
	json.Unmarshal(want, &fromStruct) //nolint:errcheck
	if fmt.Sprint(fromAppend) != fmt.Sprint(fromStruct) {
		t.Fatalf("AppendVote differs from Vote's JSON:\n%s\n%s", got, want)
	}
	if b, err := election.DecodeBallot(got, 0); err != nil || b.CandidateID != "c1" || !b.VotingTime.Equal(at.Truncate(time.Millisecond)) {
		t.Fatalf("decoded %+v %v", b, err)
	}
	// A voter record that brings vote fields is refused.
	bad := []byte(`{"voter_id":"v","voter_name":"A","date_of_birth":"1980-01-02","gender":"f","address":{"state":"Ohio"},"registered_age":40,"candidate_id":"x"}`)
	if _, err := election.DecodeVoter(bad, 0); err == nil {
		t.Fatal("a voter record with candidate_id was accepted")
	}
}

func BenchmarkDecodeBallot(b *testing.B) {
	voter := election.Voter{VoterID: "ec86b6fd-125c-498f-b476-94c1a66b763d", VoterName: "Stanley Fisher", DateOfBirth: "1985-09-12",
		Gender: "male", Address: election.Address{Street: "43972 Spurville", City: "Anaheim", State: "Wisconsin", Country: "United States", Postcode: "10777"},
		Email: "stanley.fisher220@headmodels.org", Picture: strings.Repeat("x", 230), RegisteredAge: 41}
	rec, _ := json.Marshal(voter)
	vote := election.AppendVote(nil, rec, election.CandidateFields(election.Candidate{CandidateID: "b4c79a4e-b5c8-450e-a49e-cbcfac73a322",
		CandidateName: "Drake Woods", PartyAffiliation: "Management Party", Biography: strings.Repeat("b", 60), PhotoURL: strings.Repeat("p", 400)}), time.Now())
	b.SetBytes(int64(len(vote)))
	for b.Loop() {
		if _, err := election.DecodeBallot(vote, 0); err != nil {
			b.Fatal(err)
		}
	}
}
