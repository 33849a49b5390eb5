package dashboard_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/votingpipe/voting/shared/dashboard"
	"github.com/votingpipe/voting/shared/election"
	"github.com/votingpipe/voting/shared/generator"
)

// t0 is the fixed start of voting in fixtures.
var t0 = time.Date(2026, time.November, 3, 12, 0, 0, 0, time.UTC)

// xssName is a candidate name that must show as text everywhere.
const xssName = `<script>alert(1)</script>`

// hostileNames try every way out of the contexts a name lands in: HTML
// text, an attribute, a <script> element, go-echarts' function markers, and
// the chart tooltip's HTML. Each payload that runs sets data-xss on <html>.
var hostileNames = []string{
	xssName,
	`<img src=x onerror="document.documentElement.setAttribute('data-xss','img')">`,
	`</script><script>document.documentElement.setAttribute('data-xss','script')</script>`,
	`__f__(function(){document.documentElement.setAttribute('data-xss','f')})()__f__`,
}

// usStates are the 50 states, as voters' addresses name them.
var usStates = []string{"Alabama", "Alaska", "Arizona", "Arkansas", "California", "Colorado", "Connecticut",
	"Delaware", "Florida", "Georgia", "Hawaii", "Idaho", "Illinois", "Indiana", "Iowa", "Kansas", "Kentucky",
	"Louisiana", "Maine", "Maryland", "Massachusetts", "Michigan", "Minnesota", "Mississippi", "Missouri",
	"Montana", "Nebraska", "Nevada", "New Hampshire", "New Jersey", "New Mexico", "New York", "North Carolina",
	"North Dakota", "Ohio", "Oklahoma", "Oregon", "Pennsylvania", "Rhode Island", "South Carolina",
	"South Dakota", "Tennessee", "Texas", "Utah", "Vermont", "Virginia", "Washington", "West Virginia",
	"Wisconsin", "Wyoming"}

// fixture builds a deterministic snapshot: nCand candidates (the first
// named xssName when hostile), nStates states called "State 01"…, nPoints
// timeline instants.
func fixture(nCand, nStates, nPoints int, hostile bool) dashboard.Snapshot {
	keys := make([]string, nStates)
	for i := range keys {
		keys[i] = fmt.Sprintf("State %02d", i+1)
	}
	return fixtureStates(nCand, keys, nPoints, hostile)
}

// usFixture is fixture with the 50 US states.
func usFixture(nCand, nPoints int, hostile bool) dashboard.Snapshot {
	return fixtureStates(nCand, usStates, nPoints, hostile)
}

// fixtureStates is fixture with the given state names.
func fixtureStates(nCand int, states []string, nPoints int, hostile bool) dashboard.Snapshot {
	s := dashboard.Snapshot{
		Election: "General election 2026",
		TakenAt:  t0.Add(time.Duration(nPoints)*time.Second + 2*time.Second),
		Rejected: map[string]int64{"malformed": 3, "unknown_voter": 2, "duplicate": 17},
	}
	if nPoints > 0 {
		s.NewestVote = t0.Add(time.Duration(nPoints-1) * time.Second)
	}
	cands := generator.Candidates(7, nCand)
	for i, c := range cands {
		name, party := c.CandidateName, c.PartyAffiliation
		if hostile && i < len(hostileNames) {
			name = hostileNames[i]
			party = `Party <!-- ` + fmt.Sprint(i) + ` --> & "Co"`
		}
		s.Candidates = append(s.Candidates, dashboard.Candidate{ID: c.CandidateID, Name: name, Party: party, PhotoURL: c.PhotoURL})
	}
	for i, key := range states {
		reg := int64(1000 + 37*i)
		s.States = append(s.States, dashboard.Turnout{Key: key, Registered: reg})
		s.Registered += reg
	}
	for _, g := range []string{"female", "male", "other"} {
		s.Genders = append(s.Genders, dashboard.Turnout{Key: g})
	}
	for _, b := range election.AgeBands {
		s.AgeBands = append(s.AgeBands, dashboard.Turnout{Key: b})
	}
	// Votes: candidate i gets weight (nCand-i) per second.
	s.Timeline.Series = make([]dashboard.TimelineSeries, nCand)
	for i := range s.Timeline.Series {
		s.Timeline.Series[i].CandidateID = s.Candidates[i].ID
	}
	var total int64
	for p := range nPoints {
		s.Timeline.Times = append(s.Timeline.Times, t0.Add(time.Duration(p)*time.Second))
		for i := range nCand {
			s.Candidates[i].Votes += int64(nCand - i)
			total += int64(nCand - i)
			s.Timeline.Series[i].Cumulative = append(s.Timeline.Series[i].Cumulative, s.Candidates[i].Votes)
		}
	}
	s.Counted = total
	// Spread the votes over the dimensions.
	spread := func(ts []dashboard.Turnout, regTotal int64) {
		var left = total
		for i := range ts {
			share := total / int64(len(ts))
			if i == len(ts)-1 {
				share = left
			}
			// Uneven turnout so sorting by it differs from sorting by name.
			if i%2 == 1 && i < len(ts)-1 {
				share = share * 3 / 4
			}
			ts[i].Votes = share
			left -= share
			if regTotal > 0 {
				ts[i].Registered = regTotal / int64(len(ts))
			}
		}
	}
	spread(s.States, 0)
	spread(s.Genders, s.Registered)
	spread(s.AgeBands, s.Registered)
	s.Results = fixtureResults(s)
	return s
}

// fixtureResults splits each state's votes among the candidates so that
// every state's votes add up to its turnout votes and every candidate's to
// their total. Each state leans to one candidate, picked by a fixed
// scramble of its position, so the leaders vary over the map, and every
// 13th state is a close race (often a tie); states without votes are left
// out, as the store leaves them.
func fixtureResults(s dashboard.Snapshot) []dashboard.StateResult {
	n := len(s.Candidates)
	if n == 0 {
		return nil
	}
	left := make([]int64, n) // each candidate's votes not yet placed
	for i, c := range s.Candidates {
		left[i] = c.Votes
	}
	rows := make([][]int64, len(s.States))
	rest := make([]int64, len(s.States)) // each state's votes not yet placed
	for j, st := range s.States {
		rows[j] = make([]int64, n)
		rest[j] = st.Votes
		fav := (j*7 + j/3) % n
		w := make([]int64, n)
		var sum int64
		for i := range w {
			w[i] = 2 + int64((j*31+i*17)%5)
			if i == fav {
				w[i] += 6
			}
			sum += w[i]
		}
		if j%13 == 3 && n > 1 {
			// A close race: the favourite's runner-up wants as many votes.
			r := (fav + 1) % n
			sum += w[fav] - w[r]
			w[r] = w[fav]
		}
		for k := range n {
			i := (fav + k) % n
			x := min(st.Votes*w[i]/sum, left[i], rest[j])
			rows[j][i] += x
			left[i] -= x
			rest[j] -= x
		}
	}
	// What is left fits exactly: both sides add up to the votes counted.
	for j := range rows {
		for i := 0; i < n && rest[j] > 0; i++ {
			x := min(left[i], rest[j])
			rows[j][i] += x
			left[i] -= x
			rest[j] -= x
		}
	}
	var out []dashboard.StateResult
	for j, st := range s.States {
		if st.Votes > 0 {
			out = append(out, dashboard.StateResult{State: st.Key, Votes: rows[j]})
		}
	}
	return out
}

// artifactDir is testdata/artifacts at the module root (gitignored): test
// output worth keeping, such as screenshots.
func artifactDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
	out := filepath.Join(dir, "testdata", "artifacts", "dashboard")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestFixtureResultsAddUp checks the fixtures' results against their
// turnout and totals, as the store's are.
func TestFixtureResultsAddUp(t *testing.T) {
	for _, s := range []dashboard.Snapshot{fixture(3, 5, 12, true), fixture(5, 52, 1000, true), usFixture(4, 500, false), fixture(1, 3, 7, false), fixture(4, 52, 0, false)} {
		byState := map[string]int64{}
		byCand := make([]int64, len(s.Candidates))
		leaders := map[int]bool{}
		for _, r := range s.Results {
			if len(r.Votes) != len(s.Candidates) {
				t.Fatalf("%s: %d votes for %d candidates", r.State, len(r.Votes), len(s.Candidates))
			}
			best := 0
			for i, v := range r.Votes {
				byState[r.State] += v
				byCand[i] += v
				if v > r.Votes[best] {
					best = i
				}
			}
			leaders[best] = true
		}
		for _, st := range s.States {
			if byState[st.Key] != st.Votes {
				t.Errorf("%s: results add up to %d, turnout has %d", st.Key, byState[st.Key], st.Votes)
			}
		}
		for i, c := range s.Candidates {
			if byCand[i] != c.Votes {
				t.Errorf("%s: results add up to %d, total is %d", c.Name, byCand[i], c.Votes)
			}
		}
		if len(s.Results) > 3 && len(s.Candidates) > 1 && len(leaders) < 2 {
			t.Errorf("%d states all led by one candidate: the map would be one colour", len(s.Results))
		}
	}
}
