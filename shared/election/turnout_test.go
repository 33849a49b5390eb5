package election_test

import (
	"math"
	"testing"

	"github.com/votingpipe/voting/shared/election"
	"github.com/votingpipe/voting/shared/generator"
)

func roll(n int) []election.Voter {
	out := make([]election.Voter, n)
	for i := range out {
		out[i] = generator.Voter(42, i)
	}
	return out
}

func TestVotesAtFullTurnoutIsEveryone(t *testing.T) {
	for _, v := range roll(2000) {
		if !election.Votes(42, 1, &v) {
			t.Fatalf("voter %s abstains at turnout 1", v.VoterID)
		}
	}
}

// At turnout 0.6 about 60% of the roll votes, the same voters every time;
// states, age bands and genders differ visibly.
func TestVotesVariesByStateAndAge(t *testing.T) {
	voters := roll(50_000)
	var n int
	byState, stateN := map[string]float64{}, map[string]float64{}
	byBand, bandN := map[string]float64{}, map[string]float64{}
	for i := range voters {
		v := &voters[i]
		yes := election.Votes(42, 0.6, v)
		if yes != election.Votes(42, 0.6, v) {
			t.Fatal("not deterministic")
		}
		b := election.AgeBand(v.RegisteredAge)
		stateN[v.Address.State]++
		bandN[b]++
		if yes {
			n++
			byState[v.Address.State]++
			byBand[b]++
		}
	}
	share := float64(n) / float64(len(voters))
	if math.Abs(share-0.6) > 0.03 {
		t.Errorf("turnout %.3f at 0.6", share)
	}
	lo, hi := 1.0, 0.0
	for s, k := range stateN {
		r := byState[s] / k
		lo, hi = min(lo, r), max(hi, r)
	}
	if hi-lo < 0.1 {
		t.Errorf("states' turnout spans %.2f-%.2f: flat", lo, hi)
	}
	if young, old := byBand["18-24"]/bandN["18-24"], byBand["65+"]/bandN["65+"]; old-young < 0.05 {
		t.Errorf("turnout 18-24 %.2f, 65+ %.2f: the old should vote more", young, old)
	}
	// Another seed draws other voters.
	same := 0
	for i := range 2000 {
		if election.Votes(42, 0.6, &voters[i]) == election.Votes(7, 0.6, &voters[i]) {
			same++
		}
	}
	if same > 1700 {
		t.Errorf("seeds 42 and 7 agree on %d of 2000 voters", same)
	}
}
