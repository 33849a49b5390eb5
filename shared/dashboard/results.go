package dashboard

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// usStates are the 50 states the map draws, as assets/us-states.js names
// them. Snapshot state names are matched to them ignoring case and
// surrounding space; any other name is left off the map.
var usStates = []string{"Alabama", "Alaska", "Arizona", "Arkansas", "California", "Colorado", "Connecticut",
	"Delaware", "Florida", "Georgia", "Hawaii", "Idaho", "Illinois", "Indiana", "Iowa", "Kansas", "Kentucky",
	"Louisiana", "Maine", "Maryland", "Massachusetts", "Michigan", "Minnesota", "Mississippi", "Missouri",
	"Montana", "Nebraska", "Nevada", "New Hampshire", "New Jersey", "New Mexico", "New York", "North Carolina",
	"North Dakota", "Ohio", "Oklahoma", "Oregon", "Pennsylvania", "Rhode Island", "South Carolina",
	"South Dakota", "Tennessee", "Texas", "Utah", "Vermont", "Virginia", "Washington", "West Virginia",
	"Wisconsin", "Wyoming"}

// foldState is the form state names are matched in: "  new YORK" and
// "New York" are one state.
func foldState(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// The map's colours besides the candidates': a tie is grey and hatched, a
// state without votes light grey.
const (
	tieColor     = "#b7bdc8"
	tieHatch     = "rgba(29,36,51,0.45)"
	noVotesColor = "#e5e7eb"
)

// How a state stands.
const (
	leadOne  = "lead" // one candidate leads
	leadTie  = "tie"  // two or more share the most votes
	leadNone = "none" // no votes yet
)

// stateResult is one state's result, worked out once for the map and the table.
type stateResult struct {
	votes  []int64 // per candidate, in snapshot order
	total  int64
	order  []int  // candidate indexes, most votes first, equal votes in ranking order
	kind   string // leadOne, leadTie or leadNone
	tied   int    // candidates sharing the most votes
	margin int64  // leader minus runner-up (0 in a tie)
}

// leader is the leading candidate's index (meaningful when kind is leadOne).
func (r *stateResult) leader() int { return r.order[0] }

// points is the margin in percentage points of the state's votes.
func (r *stateResult) points() float64 {
	if r.total == 0 {
		return 0
	}
	return float64(r.margin) * 100 / float64(r.total)
}

// stateResults sums s.Results by folded state name. Votes beyond the
// candidate list are ignored, missing ones count 0 and negative ones 0.
func stateResults(s Snapshot, rk []ranked) map[string]*stateResult {
	n := len(s.Candidates)
	pos := make([]int, n) // candidate index -> ranking position
	for p, c := range rk {
		pos[c.idx] = p
	}
	out := make(map[string]*stateResult, len(s.Results))
	for _, res := range s.Results {
		k := foldState(res.State)
		r := out[k]
		if r == nil {
			r = &stateResult{votes: make([]int64, n)}
			out[k] = r
		}
		for i, v := range res.Votes[:min(len(res.Votes), n)] {
			if v > 0 {
				r.votes[i] += v
				r.total += v
			}
		}
	}
	for _, r := range out {
		r.order = make([]int, n)
		for i := range r.order {
			r.order[i] = i
		}
		slices.SortFunc(r.order, func(a, b int) int {
			return cmp.Or(cmp.Compare(r.votes[b], r.votes[a]), cmp.Compare(pos[a], pos[b]))
		})
		switch {
		case r.total == 0:
			r.kind = leadNone
			continue
		case n > 1 && r.votes[r.order[1]] == r.votes[r.order[0]]:
			r.kind = leadTie
		default:
			r.kind = leadOne
		}
		r.tied = 1
		for r.tied < n && r.votes[r.order[r.tied]] == r.votes[r.order[0]] {
			r.tied++
		}
		if n > 1 {
			r.margin = r.votes[r.order[0]] - r.votes[r.order[1]]
		} else {
			r.margin = r.total
		}
	}
	return out
}

// marginText is a state's margin for the table and the tooltip:
// "1,234 (5.6 pts)"; "—" without votes.
func (r *stateResult) marginText() string {
	if r == nil || r.kind == leadNone {
		return "—"
	}
	return fmt.Sprintf("%s (%.1f pts)", number(r.margin), r.points())
}

// mapItem is one state on the map: its leader's colour, and what its
// tooltip shows (the page script writes it as text).
type mapItem struct {
	Name      string       `json:"name"`
	Value     int64        `json:"value"` // the state's votes
	ItemStyle mapItemStyle `json:"itemStyle"`
	Tip       mapTip       `json:"tip"`
}

type mapItemStyle struct {
	AreaColor string `json:"areaColor"`
	Decal     *decal `json:"decal,omitempty"`
}

// decal is an echarts fill pattern: diagonal hatching for a tie.
type decal struct {
	Symbol     string  `json:"symbol"`
	SymbolSize float64 `json:"symbolSize"`
	DashArrayX []int   `json:"dashArrayX"`
	DashArrayY []int   `json:"dashArrayY"`
	Rotation   float64 `json:"rotation"`
	Color      string  `json:"color"`
}

var tieDecal = &decal{Symbol: "rect", SymbolSize: 1, DashArrayX: []int{1, 0}, DashArrayY: []int{2, 4}, Rotation: -0.785, Color: tieHatch}

type mapTip struct {
	// Leader is the leader's name, or "tie".
	Leader string `json:"leader"`
	// Status is the line under the state's name: "Leader: X",
	// "Tie between X and Y".
	Status  string   `json:"status"`
	Rows    []tipRow `json:"rows"`
	Margin  string   `json:"margin"`
	Turnout string   `json:"turnout"`
}

// tipRow is one candidate's line in a state's tooltip.
type tipRow struct {
	Name  string `json:"n"`
	Color string `json:"c"`
	Votes string `json:"v"`
	Share string `json:"s"`
}

// legendItem is one entry of the map's legend.
type legendItem struct {
	Kind  string `json:"kind"` // leadOne (a candidate), leadTie, leadNone
	Name  string `json:"name"`
	Color string `json:"color"`
	Count string `json:"count"` // "12 states"
}

// mapView is the map's part of the view: its legend (the map itself is a chart).
type mapView struct {
	Legend []legendItem `json:"legend"`
}

// mapItems draws each of the 50 states that has votes, in map-name order,
// and the legend: every candidate with the number of states they lead,
// ties, and states without votes.
func mapItems(s Snapshot, rk []ranked, res map[string]*stateResult) ([]mapItem, mapView) {
	turnout := make(map[string]Turnout, len(s.States))
	for _, st := range s.States {
		k := foldState(st.Key)
		t := turnout[k]
		t.Votes += st.Votes
		t.Registered += st.Registered
		turnout[k] = t
	}
	led := make([]int, len(s.Candidates))
	ties, none := 0, len(usStates)
	var items []mapItem
	for _, name := range usStates {
		r := res[foldState(name)]
		if r == nil || r.kind == leadNone {
			continue
		}
		none--
		it := mapItem{Name: name, Value: r.total}
		switch r.kind {
		case leadOne:
			l := r.leader()
			led[l]++
			it.ItemStyle.AreaColor = candidateColor(l)
			it.Tip.Leader = s.Candidates[l].Name
			it.Tip.Status = "Leader: " + s.Candidates[l].Name
		case leadTie:
			ties++
			it.ItemStyle = mapItemStyle{AreaColor: tieColor, Decal: tieDecal}
			names := make([]string, r.tied)
			for i := range names {
				names[i] = s.Candidates[r.order[i]].Name
			}
			it.Tip.Leader = "tie"
			it.Tip.Status = fmt.Sprintf("Tie between %s", joinAnd(names))
		}
		for _, i := range r.order {
			it.Tip.Rows = append(it.Tip.Rows, tipRow{Name: s.Candidates[i].Name, Color: candidateColor(i),
				Votes: number(r.votes[i]), Share: percent(r.votes[i], r.total)})
		}
		it.Tip.Margin = "Margin " + r.marginText()
		if len(s.Candidates) == 1 {
			it.Tip.Margin = "Unopposed"
		}
		it.Tip.Turnout = "Turnout —"
		if t, ok := turnout[foldState(name)]; ok {
			it.Tip.Turnout = fmt.Sprintf("Turnout %s (%s of %s registered)", percent(t.Votes, t.Registered), number(t.Votes), number(t.Registered))
		}
		items = append(items, it)
	}
	var mv mapView
	for _, c := range rk {
		mv.Legend = append(mv.Legend, legendItem{Kind: leadOne, Name: c.Name, Color: c.color, Count: states(led[c.idx])})
	}
	mv.Legend = append(mv.Legend,
		legendItem{Kind: leadTie, Name: "tie", Color: tieColor, Count: states(ties)},
		legendItem{Kind: leadNone, Name: "no votes", Color: noVotesColor, Count: states(none)})
	return items, mv
}

func states(n int) string {
	if n == 1 {
		return "1 state"
	}
	return fmt.Sprintf("%d states", n)
}
