package generator_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/votingpipe/voting/shared/election"
	"github.com/votingpipe/voting/shared/generator"
)

func TestVotersAreDeterministicAndValid(t *testing.T) {
	seen := map[string]bool{}
	states := map[string]bool{}
	for i := range 2000 {
		v := generator.Voter(42, i)
		if !reflect.DeepEqual(v, generator.Voter(42, i)) {
			t.Fatalf("voter %d differs between two generations", i)
		}
		if seen[v.VoterID] {
			t.Fatalf("voter %d repeats id %s", i, v.VoterID)
		}
		seen[v.VoterID] = true
		states[v.Address.State] = true
		b, _ := json.Marshal(v)
		if _, err := election.DecodeVoter(b, 0); err != nil {
			t.Fatalf("generated voter %d does not decode: %v\n%s", i, err, b)
		}
		if v.RegisteredAge < 18 || v.RegisteredAge > 100 {
			t.Fatalf("age %d", v.RegisteredAge)
		}
		if !strings.HasPrefix(v.Picture, "data:image/svg+xml,") || strings.ContainsAny(v.Picture, "<>#\"") {
			t.Fatalf("picture is not a safe inline data URL: %s", v.Picture)
		}
	}
	if len(states) < 45 {
		t.Errorf("only %d states drawn in 2000 voters", len(states))
	}
	if generator.Voter(43, 0).VoterID == generator.Voter(42, 0).VoterID {
		t.Error("another seed gives the same voter")
	}
}

func TestCandidates(t *testing.T) {
	c := generator.Candidates(42, 5)
	if !reflect.DeepEqual(c, generator.Candidates(42, 5)) {
		t.Fatal("candidates are not deterministic")
	}
	for i, p := range generator.Parties {
		if c[i].PartyAffiliation != p {
			t.Errorf("candidate %d party %q, want the original's %q", i, c[i].PartyAffiliation, p)
		}
	}
	for _, x := range c {
		if x.CandidateID == "" || x.CandidateName == "" || x.PartyAffiliation == "" || x.PhotoURL == "" || x.Biography == "" {
			t.Errorf("incomplete candidate %+v", x)
		}
	}
}

func TestCompleteCandidates(t *testing.T) {
	in := []generator.CandidateSpec{
		{Candidate: election.Candidate{CandidateName: "Ada Lovelace", PartyAffiliation: "Analytical"}},
		{Candidate: election.Candidate{CandidateID: "x", CandidateName: "Bob", PartyAffiliation: "B", PhotoURL: "https://example.org/b.png"}, Weight: 3},
	}
	out := generator.CompleteCandidates(1, in)
	if out[0].CandidateID == "" || out[0].Weight != 1 || !strings.HasPrefix(out[0].PhotoURL, "data:image/svg+xml,") {
		t.Errorf("not completed: %+v", out[0])
	}
	if out[1].CandidateID != "x" || out[1].Weight != 3 || out[1].PhotoURL != "https://example.org/b.png" {
		t.Errorf("given fields changed: %+v", out[1])
	}
	if !reflect.DeepEqual(out, generator.CompleteCandidates(1, in)) {
		t.Error("not deterministic")
	}
}

func BenchmarkVoter(b *testing.B) {
	for i := 0; b.Loop(); i++ {
		generator.Voter(42, i)
	}
}
