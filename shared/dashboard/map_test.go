package dashboard_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/votingpipe/voting/shared/dashboard"
)

// The map's colours for a tie and for a state without votes.
const (
	tieColor     = "#b7bdc8"
	noVotesColor = "#e5e7eb"
)

// expectedLeaders works out, apart from the renderer, who leads each state
// of the map: the leader's name, or "tie". States not among the 50 (matched
// ignoring case and surrounding space) and states without votes are absent.
func expectedLeaders(s dashboard.Snapshot) map[string]string {
	canon := map[string]string{}
	for _, st := range usStates {
		canon[strings.ToLower(st)] = st
	}
	votes := map[string][]int64{}
	for _, r := range s.Results {
		name, ok := canon[strings.ToLower(strings.TrimSpace(r.State))]
		if !ok {
			continue
		}
		if votes[name] == nil {
			votes[name] = make([]int64, len(s.Candidates))
		}
		for i, v := range r.Votes {
			if i < len(s.Candidates) && v > 0 {
				votes[name][i] += v
			}
		}
	}
	out := map[string]string{}
	for name, vs := range votes {
		best, n := int64(0), 0
		leader := ""
		for i, v := range vs {
			switch {
			case v > best:
				best, n, leader = v, 1, s.Candidates[i].Name
			case v == best && v > 0:
				n++
			}
		}
		switch {
		case best == 0:
		case n > 1:
			out[name] = "tie"
		default:
			out[name] = leader
		}
	}
	return out
}

// mapSeries is the map chart's one series from data.js.
func mapSeries(t testing.TB, d pageData) map[string]any {
	t.Helper()
	series := d.chartOption(t, dashboard.ChartStateMap)["series"].([]any)
	if len(series) != 1 {
		t.Fatalf("the map has %d series, want 1", len(series))
	}
	return series[0].(map[string]any)
}

// mapItems are the map series' data items by state name.
func mapItems(t testing.TB, d pageData) (names []string, items map[string]map[string]any) {
	t.Helper()
	items = map[string]map[string]any{}
	for _, it := range mapSeries(t, d)["data"].([]any) {
		m := it.(map[string]any)
		names = append(names, m["name"].(string))
		items[m["name"].(string)] = m
	}
	return names, items
}

func colorsByName(d pageData) map[string]string {
	out := map[string]string{}
	for _, c := range d.Candidates {
		out[c["name"]] = c["color"]
	}
	return out
}

func TestMapColoursEachStateByItsLeader(t *testing.T) {
	s := usFixture(4, 500, false)
	_, _, data := render(t, s, dashboard.Options{})
	d := decodeData(t, data)

	ser := mapSeries(t, d)
	if ser["type"] != "map" || ser["map"] != "us-states" || ser["aspectScale"] != 1.0 {
		t.Errorf("map series: type %v map %v aspectScale %v, want a map of us-states drawn as projected", ser["type"], ser["map"], ser["aspectScale"])
	}
	base := ser["itemStyle"].(map[string]any)
	if base["areaColor"] != noVotesColor {
		t.Errorf("states without votes are %v, want light grey %s", base["areaColor"], noVotesColor)
	}

	want := expectedLeaders(s)
	names, items := mapItems(t, d)
	if len(names) != len(want) || len(names) != len(s.Results) {
		t.Fatalf("%d states on the map, want one per state with results (%d)", len(names), len(want))
	}
	if !slices.IsSorted(names) {
		t.Error("map items are not in a stable (name) order")
	}
	colors := colorsByName(d)
	leaders := map[string]bool{}
	for name, leader := range want {
		it := items[name]
		if it == nil {
			t.Errorf("%s has results but is not on the map", name)
			continue
		}
		tip := it["tip"].(map[string]any)
		style := it["itemStyle"].(map[string]any)
		if tip["leader"] != leader {
			t.Errorf("%s: leader %v, want %s", name, tip["leader"], leader)
		}
		if leader == "tie" {
			if style["areaColor"] != tieColor || style["decal"] == nil {
				t.Errorf("%s: a tie drawn %v", name, style)
			}
			continue
		}
		// The leader's colour is theirs everywhere: the candidate table's
		// swatch, the bar and the donut.
		if style["areaColor"] != colors[leader] || colors[leader] == "" {
			t.Errorf("%s: colour %v, want %s's %s", name, style["areaColor"], leader, colors[leader])
		}
		leaders[leader] = true
	}
	if len(leaders) < 3 {
		t.Errorf("only %d candidates lead a state; the fixture should colour the map in several", len(leaders))
	}

	// Wyoming's tooltip in full: votes per candidate (most first, with
	// shares), margin and turnout.
	var wy dashboard.StateResult
	for _, r := range s.Results {
		if r.State == "Wyoming" {
			wy = r
		}
	}
	tip := items["Wyoming"]["tip"].(map[string]any)
	rows := tip["rows"].([]any)
	if len(rows) != 4 {
		t.Fatalf("Wyoming's tooltip has %d rows, want 4", len(rows))
	}
	var total int64
	for _, v := range wy.Votes {
		total += v
	}
	order := []int{0, 1, 2, 3}
	slices.SortStableFunc(order, func(a, b int) int { return int(wy.Votes[b] - wy.Votes[a]) })
	for k, i := range order {
		r := rows[k].(map[string]any)
		if r["n"] != s.Candidates[i].Name || r["v"] != num(wy.Votes[i]) || r["s"] != pct(wy.Votes[i], total) || r["c"] != colors[s.Candidates[i].Name] {
			t.Errorf("Wyoming row %d: %v, want %s %s %s", k, r, s.Candidates[i].Name, num(wy.Votes[i]), pct(wy.Votes[i], total))
		}
	}
	lead := wy.Votes[order[0]] - wy.Votes[order[1]]
	if wantM := "Margin " + num(lead) + " (" + pts(lead, total) + " pts)"; tip["margin"] != wantM {
		t.Errorf("Wyoming margin %q, want %q", tip["margin"], wantM)
	}
	st := s.States[slices.IndexFunc(s.States, func(t dashboard.Turnout) bool { return t.Key == "Wyoming" })]
	if wantT := "Turnout " + pct(st.Votes, st.Registered) + " (" + num(st.Votes) + " of " + num(st.Registered) + " registered)"; tip["turnout"] != wantT {
		t.Errorf("Wyoming turnout %q, want %q", tip["turnout"], wantT)
	}
	if tip["status"] != "Leader: "+want["Wyoming"] {
		t.Errorf("Wyoming status %q", tip["status"])
	}
}

func TestMapMarksTiesSkipsUnknownStatesAndNeverFails(t *testing.T) {
	s := dashboard.Snapshot{
		Candidates: []dashboard.Candidate{{ID: "a", Name: "Ada", Votes: 30}, {ID: "b", Name: "Bob", Votes: 29}, {ID: "c", Name: "Cy", Votes: 9}},
		States:     []dashboard.Turnout{{Key: "Texas", Votes: 13, Registered: 100}, {Key: "Ohio", Registered: 50}, {Key: "Atlantis", Votes: 9, Registered: 9}},
		Results: []dashboard.StateResult{
			{State: "texas", Votes: []int64{5, 5, 1}},          // lower case: still Texas
			{State: "TEXAS", Votes: []int64{1, 1, 0}},          // a second row for Texas adds up: 6, 6, 1
			{State: " New York ", Votes: []int64{3, 7, 0}},     // Bob
			{State: "Atlantis", Votes: []int64{9, 0, 0}},       // not a state: off the map
			{State: "District of Columbia", Votes: []int64{1}}, // not one of the 50 either
			{State: "Ohio", Votes: []int64{0, 0, 0}},           // no votes: grey, no item
			{State: "Utah", Votes: []int64{4}},                 // too few votes: the rest count 0
			{State: "Iowa", Votes: []int64{1, 2, 3, 99}},       // too many: the extra is ignored
			{State: "Maine", Votes: []int64{-5, 2, 0}},         // negative counts count 0
			{State: "Vermont", Votes: nil},
		},
	}
	s.Counted = 68
	_, index, data := render(t, s, dashboard.Options{})
	d := decodeData(t, data)
	names, items := mapItems(t, d)
	if !slices.Equal(names, []string{"Iowa", "Maine", "New York", "Texas", "Utah"}) {
		t.Fatalf("map states %v, want Iowa, Maine, New York, Texas, Utah", names)
	}
	colors := colorsByName(d)
	for name, leader := range map[string]string{"Iowa": "Cy", "Maine": "Bob", "New York": "Bob", "Utah": "Ada"} {
		it := items[name]
		if it["tip"].(map[string]any)["leader"] != leader || it["itemStyle"].(map[string]any)["areaColor"] != colors[leader] {
			t.Errorf("%s: %v, want %s in %s", name, it, leader, colors[leader])
		}
		if _, hatched := it["itemStyle"].(map[string]any)["decal"]; hatched {
			t.Errorf("%s is hatched, but has one leader", name)
		}
	}
	tx := items["Texas"]
	style := tx["itemStyle"].(map[string]any)
	tip := tx["tip"].(map[string]any)
	if tip["leader"] != "tie" || tip["status"] != "Tie between Ada and Bob" || style["areaColor"] != tieColor || style["decal"] == nil {
		t.Errorf("Texas should be a hatched grey tie: %v", tx)
	}
	if tip["margin"] != "Margin 0 (0.0 pts)" || tip["turnout"] != "Turnout 13.0% (13 of 100 registered)" {
		t.Errorf("Texas margin %q turnout %q", tip["margin"], tip["turnout"])
	}
	if v := tx["value"]; v != 13.0 {
		t.Errorf("Texas value %v, want its 13 votes", v)
	}

	// The legend names every candidate with the states they lead, then
	// ties and states without votes.
	var legend []string
	for _, l := range d.Map.Legend {
		legend = append(legend, l["name"]+": "+l["count"])
	}
	wantLegend := []string{"Ada: 1 state", "Bob: 2 states", "Cy: 1 state", "tie: 1 state", "no votes: 45 states"}
	if !slices.Equal(legend, wantLegend) {
		t.Errorf("legend %q, want %q", legend, wantLegend)
	}
	if !strings.Contains(index, `<li data-kind="tie"><span class="swatch tie"></span><span class="name">tie</span> <span class="count">1 state</span></li>`) {
		t.Error("index.html's map legend does not show the tie")
	}

	// The table joins results to its rows by name, also for names the map
	// does not know.
	rows := map[string]stateData{}
	for _, r := range d.States {
		rows[r.K] = r
	}
	for k, want := range map[string]stateData{
		"Texas":    {L: "tie", LK: "tie", LC: tieColor, M: 0, MS: "0 (0.0 pts)"},
		"Ohio":     {L: "—", LK: "none", M: -1, MS: "—"},
		"Atlantis": {L: "Ada", LK: "lead", LC: colors["Ada"], M: 9, MS: "9 (100.0 pts)"},
	} {
		got := rows[k]
		if got.L != want.L || got.LK != want.LK || got.LC != want.LC || got.M != want.M || got.MS != want.MS {
			t.Errorf("table row %s: leader %q %q %q margin %d %q, want %+v", k, got.L, got.LK, got.LC, got.M, got.MS, want)
		}
	}

	// Whatever the results hold, rendering does not fail.
	for _, odd := range []dashboard.Snapshot{
		{Results: []dashboard.StateResult{{State: "Texas", Votes: []int64{1, 2}}}}, // no candidates
		{Candidates: s.Candidates[:1], Results: []dashboard.StateResult{{State: "Texas", Votes: []int64{3}}}},
		{Candidates: s.Candidates, Results: []dashboard.StateResult{{State: "", Votes: []int64{1}}, {State: "\x00<b>", Votes: []int64{1}}}},
	} {
		if _, err := dashboard.Render(odd, dashboard.Options{}); err != nil {
			t.Errorf("render %+v: %v", odd.Results, err)
		}
	}
	// One candidate: unopposed.
	_, _, data = render(t, dashboard.Snapshot{Candidates: s.Candidates[:1], Results: []dashboard.StateResult{{State: "Texas", Votes: []int64{3}}}}, dashboard.Options{})
	_, items = mapItems(t, decodeData(t, data))
	if tip := items["Texas"]["tip"].(map[string]any); tip["leader"] != "Ada" || tip["margin"] != "Unopposed" {
		t.Errorf("a lone candidate's state: %v", tip)
	}
}

func TestStateTableHasLeaderAndMarginColumns(t *testing.T) {
	s := usFixture(4, 500, false)
	_, index, data := render(t, s, dashboard.Options{})
	d := decodeData(t, data)
	want := expectedLeaders(s)
	colors := colorsByName(d)
	ties := 0
	for _, r := range d.States {
		kind, color := "lead", colors[r.L]
		if want[r.K] == "tie" {
			ties++
			kind, color = "tie", tieColor
		}
		if r.L != want[r.K] || r.LK != kind || r.LC != color || r.M < 0 || (kind == "tie") != (r.M == 0) || !strings.HasSuffix(r.MS, " pts)") {
			t.Errorf("%s: leader %q (%s, %s) margin %d %q, want %s", r.K, r.L, r.LK, r.LC, r.M, r.MS, want[r.K])
		}
	}
	if ties == 0 {
		t.Error("the fixture has no tie to show")
	}
	for _, h := range []string{`<th data-sort="l"><button type="button">Leader</button></th>`, `<th data-sort="m" class="num"><button type="button"`} {
		if !strings.Contains(index, h) {
			t.Errorf("index.html lacks the header %s", h)
		}
	}
	// Rows for readers without JavaScript carry the same cells.
	first := d.States[0]
	cell := `<td class="leader" data-kind="lead"><span class="swatch" style="background:` + first.LC + `"></span>` + first.L + `</td><td class="num">` + first.MS + `</td>`
	if !strings.Contains(index, cell) {
		t.Errorf("index.html's first state row lacks %s", cell)
	}
}

// num, pct and pts format as the page does: 1,234; 12.3%; 4.5.
func num(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func pct(part, whole int64) string {
	return strconv.FormatFloat(float64(part)*100/float64(whole), 'f', 1, 64) + "%"
}

func pts(lead, total int64) string {
	return strconv.FormatFloat(float64(lead)*100/float64(total), 'f', 1, 64)
}
