package dashboard

import (
	"cmp"
	"fmt"
	"html/template"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/votingpipe/voting/shared/avatar"
	"github.com/votingpipe/voting/shared/election"
)

// viewVersion changes whenever the shape of view changes, so that an open
// page whose script predates a deploy reloads itself instead of misreading a
// newer data.js.
const viewVersion = 2

// view is what the page shows, formatted. The same value fills the HTML
// template (first paint, and readers without JavaScript) and is sent as JSON
// to the page script (in-place refresh), so both always agree.
type view struct {
	V       int   `json:"v"`
	TakenAt int64 `json:"takenAt"` // unix milliseconds
	Refresh int   `json:"refresh"` // seconds; 0: no refresh
	Text    texts `json:"text"`

	Leader     leaderView     `json:"leader"`
	Candidates []candidateRow `json:"candidates"`
	States     []stateRow     `json:"states"`
	Map        mapView        `json:"map"`
	Charts     []chartView    `json:"charts"`
}

// texts are the page's strings that change between renders; the page script
// copies each into the elements whose data-k attribute names its JSON key.
type texts struct {
	Title      string `json:"title"`
	Election   string `json:"election"`
	Updated    string `json:"updated"`
	NewestVote string `json:"newestVote"`
	Lag        string `json:"lag"`

	Registered     string `json:"registered"`
	Counted        string `json:"counted"`
	Turnout        string `json:"turnout"`
	TurnoutDetail  string `json:"turnoutDetail"`
	Candidates     string `json:"candidates"`
	Rejected       string `json:"rejected"`
	RejectedDetail string `json:"rejectedDetail"`
	Duplicates     string `json:"duplicates"`

	LeaderStatus string `json:"leaderStatus"`
	LeaderName   string `json:"leaderName"`
	LeaderParty  string `json:"leaderParty"`
	LeaderVotes  string `json:"leaderVotes"`
	LeaderShare  string `json:"leaderShare"`
	LeaderLead   string `json:"leaderLead"`
}

type leaderView struct {
	// Photo is a vetted image URL ("" for none).
	Photo string `json:"photo"`
	// Tie is true when two or more candidates share the lead.
	Tie bool `json:"tie"`
}

// PhotoURL is Photo for html/template, which would otherwise refuse a data: URL.
func (l leaderView) PhotoURL() template.URL { return template.URL(l.Photo) }

type candidateRow struct {
	Rank  string `json:"rank"`
	Color string `json:"color"`
	Photo string `json:"photo"`
	Name  string `json:"name"`
	Party string `json:"party"`
	Votes string `json:"votes"`
	Share string `json:"share"`
}

// PhotoURL is Photo for html/template, which would otherwise refuse a data: URL.
func (c candidateRow) PhotoURL() template.URL { return template.URL(c.Photo) }

// stateRow carries raw values for sorting and formatted ones for display.
type stateRow struct {
	State      string  `json:"k"`
	Votes      int64   `json:"v"`
	Registered int64   `json:"r"`
	Turnout    float64 `json:"t"` // percent; -1 when nobody is registered
	VotesText  string  `json:"vs"`
	RegText    string  `json:"rs"`
	TurnText   string  `json:"ts"`
	// Leader is the leading candidate's name, "tie" or "—" (no votes);
	// LeaderKind says which (leadOne, leadTie, leadNone) and LeaderColor is
	// the leader's colour.
	Leader      string `json:"l"`
	LeaderKind  string `json:"lk"`
	LeaderColor string `json:"lc"`
	// Margin is the leader's lead over the runner-up in votes (0 in a tie,
	// -1 without votes); MarginText adds the percentage points.
	Margin     int64  `json:"m"`
	MarginText string `json:"ms"`
}

type chartView struct {
	ID     string `json:"id"`
	Title  string `json:"-"`
	Height int    `json:"-"`
	Wide   bool   `json:"-"`
	// Option is the chart's echarts option as HTML-safe JSON.
	Option rawJSON `json:"option"`
}

// rawJSON is JSON that is already encoded (json.RawMessage would re-validate
// and re-compact it on every marshal).
type rawJSON []byte

func (r rawJSON) MarshalJSON() ([]byte, error) { return r, nil }

// reasonLabels are the page's words for rejection reasons.
var reasonLabels = map[string]string{
	string(election.ReasonMalformed):        "malformed",
	string(election.ReasonOversized):        "oversized",
	string(election.ReasonUnknownVoter):     "unknown voter",
	string(election.ReasonUnknownCandidate): "unknown candidate",
	string(election.ReasonAlreadyVoted):     "second ballot",
}

// palette colours candidates by their position in Snapshot.Candidates, so a
// candidate keeps their colour when the ranking changes.
var palette = []string{"#5470c6", "#91cc75", "#fac858", "#ee6666", "#73c0de",
	"#3ba272", "#fc8452", "#9a60b4", "#ea7ccc", "#2f4554"}

// candidateColor is the colour of Snapshot.Candidates[i], on every chart,
// table and the map.
func candidateColor(i int) string { return palette[i%len(palette)] }

// ranked is a candidate with their display colour and their index in
// Snapshot.Candidates.
type ranked struct {
	Candidate
	color string
	idx   int
}

// rank orders candidates by votes (most first), then name, then ID.
func rank(cs []Candidate) []ranked {
	out := make([]ranked, len(cs))
	for i, c := range cs {
		out[i] = ranked{c, candidateColor(i), i}
	}
	slices.SortStableFunc(out, func(a, b ranked) int {
		return cmp.Or(cmp.Compare(b.Votes, a.Votes), cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	})
	return out
}

func buildView(s Snapshot, o Options, rk []ranked, res map[string]*stateResult) view {
	v := view{
		V:       viewVersion,
		TakenAt: s.TakenAt.UnixMilli(),
		Refresh: o.RefreshSeconds,
	}
	var total int64
	for _, c := range s.Candidates {
		total += c.Votes
	}
	v.Text = buildTexts(s, o)
	buildLeader(&v, rk, total)
	v.Candidates = candidateRows(rk, total)
	v.States = stateRows(s, res)
	return v
}

// buildTexts formats the page's headline figures.
func buildTexts(s Snapshot, o Options) texts {
	loc := o.Location
	t := texts{Title: o.Title, Election: s.Election}
	if t.Election == "" {
		t.Election = "No election registered yet"
	}
	t.Updated = s.TakenAt.In(loc).Format("2006-01-02 15:04:05 MST")
	if s.NewestVote.IsZero() {
		t.NewestVote = "none yet"
	} else {
		t.NewestVote = s.NewestVote.In(loc).Format("15:04:05 MST")
		if s.NewestVote.In(loc).Format(time.DateOnly) != s.TakenAt.In(loc).Format(time.DateOnly) {
			t.NewestVote = s.NewestVote.In(loc).Format("2006-01-02 15:04:05 MST")
		}
		if lag := s.TakenAt.Sub(s.NewestVote); lag < 0 {
			t.Lag = "voting time is ahead of the snapshot clock"
		} else {
			t.Lag = duration(lag) + " before this snapshot"
		}
	}
	t.Registered = number(s.Registered)
	t.Counted = number(s.Counted)
	t.Turnout = percent(s.Counted, s.Registered)
	t.TurnoutDetail = fmt.Sprintf("%s of %s registered voters", number(s.Counted), number(s.Registered))
	t.Candidates = number(int64(len(s.Candidates)))

	var rejected int64
	var reasons []string
	for r := range s.Rejected {
		if r != ReasonDuplicate && s.Rejected[r] > 0 {
			reasons = append(reasons, r)
			rejected += s.Rejected[r]
		}
	}
	slices.Sort(reasons)
	parts := make([]string, 0, len(reasons))
	for _, r := range reasons {
		label := reasonLabels[r]
		if label == "" {
			label = strings.ReplaceAll(r, "_", " ")
		}
		parts = append(parts, label+" "+number(s.Rejected[r]))
	}
	t.Rejected = number(rejected)
	t.RejectedDetail = strings.Join(parts, " · ")
	if len(parts) == 0 {
		t.RejectedDetail = "none"
	}
	t.Duplicates = fmt.Sprintf("%s duplicate deliveries ignored", number(s.Rejected[ReasonDuplicate]))
	return t
}

// candidateRows are the candidates' table, ranked; equal votes share a
// rank ("1=").
func candidateRows(rk []ranked, total int64) []candidateRow {
	rows := make([]candidateRow, len(rk))
	for i, c := range rk {
		r := strconv.Itoa(i + 1)
		first := i
		for first > 0 && rk[first-1].Votes == c.Votes {
			first--
		}
		if first != i || (i+1 < len(rk) && rk[i+1].Votes == c.Votes) {
			r = strconv.Itoa(first+1) + "="
		}
		rows[i] = candidateRow{Rank: r, Color: c.color, Photo: safePhoto(c.PhotoURL),
			Name: c.Name, Party: c.Party, Votes: number(c.Votes), Share: percent(c.Votes, total)}
	}
	return rows
}

// stateRows are the states' table, by name: turnout, leader and margin.
func stateRows(s Snapshot, res map[string]*stateResult) []stateRow {
	states := slices.Clone(s.States)
	slices.SortFunc(states, func(a, b Turnout) int { return cmp.Compare(a.Key, b.Key) })
	rows := make([]stateRow, len(states))
	for i, st := range states {
		row := stateRow{State: st.Key, Votes: st.Votes, Registered: st.Registered, Turnout: -1,
			VotesText: number(st.Votes), RegText: number(st.Registered), TurnText: percent(st.Votes, st.Registered)}
		if st.Registered > 0 {
			row.Turnout = math.Round(float64(st.Votes)*10000/float64(st.Registered)) / 100
		}
		row.Leader, row.LeaderKind, row.Margin, row.MarginText = "—", leadNone, -1, "—"
		if r := res[foldState(st.Key)]; r != nil && r.kind != leadNone {
			row.LeaderKind, row.Margin, row.MarginText = r.kind, r.margin, r.marginText()
			if r.kind == leadTie {
				row.Leader, row.LeaderColor = "tie", tieColor
			} else {
				row.Leader, row.LeaderColor = s.Candidates[r.leader()].Name, candidateColor(r.leader())
			}
		}
		rows[i] = row
	}
	return rows
}

func buildLeader(v *view, rk []ranked, total int64) {
	t := &v.Text
	switch {
	case len(rk) == 0:
		t.LeaderStatus = "No candidates registered yet"
		t.LeaderName, t.LeaderParty, t.LeaderVotes, t.LeaderShare, t.LeaderLead = "—", "", "", "", ""
		return
	case total == 0:
		t.LeaderStatus = "No votes counted yet"
		t.LeaderName, t.LeaderParty, t.LeaderVotes, t.LeaderShare, t.LeaderLead = "—", "", "0 votes", "", ""
		return
	}
	top := rk[0]
	tied := 1
	for tied < len(rk) && rk[tied].Votes == top.Votes {
		tied++
	}
	v.Leader.Photo = safePhoto(top.PhotoURL)
	t.LeaderVotes = votesText(top.Votes)
	t.LeaderShare = percent(top.Votes, total) + " of votes counted"
	if tied > 1 {
		v.Leader.Tie = true
		names := make([]string, tied)
		parties := make([]string, 0, tied)
		for i := range tied {
			names[i] = rk[i].Name
			if !slices.Contains(parties, rk[i].Party) {
				parties = append(parties, rk[i].Party)
			}
		}
		t.LeaderStatus = fmt.Sprintf("Tie between %d candidates", tied)
		t.LeaderName = joinAnd(names)
		t.LeaderParty = joinAnd(parties)
		t.LeaderVotes = number(top.Votes) + " votes each"
		t.LeaderShare = percent(top.Votes, total) + " each"
		t.LeaderLead = "tie"
		return
	}
	t.LeaderStatus = "Leading"
	t.LeaderName = top.Name
	t.LeaderParty = top.Party
	if len(rk) == 1 {
		t.LeaderLead = "unopposed"
		return
	}
	second := rk[1]
	lead := top.Votes - second.Votes
	pts := float64(lead) * 100 / float64(total)
	t.LeaderLead = fmt.Sprintf("leads %s by %s (%.1f pts)", second.Name, votesText(lead), pts)
}

// safePhoto keeps only image URLs a page can show without running anything:
// inline raster or SVG images (an SVG in <img> runs no script) and http(s).
// An avatar reference (avatars/…, see package avatar) becomes its inline
// data: URL, so the page stays self-contained wherever it is published.
func safePhoto(u string) string {
	u = strings.TrimSpace(u)
	if d, ok := avatar.DataURL(u); ok {
		return d
	}
	l := strings.ToLower(u)
	switch {
	case strings.HasPrefix(l, "data:image/png"), strings.HasPrefix(l, "data:image/jpeg"),
		strings.HasPrefix(l, "data:image/gif"), strings.HasPrefix(l, "data:image/webp"),
		strings.HasPrefix(l, "data:image/svg+xml"),
		strings.HasPrefix(l, "https://"), strings.HasPrefix(l, "http://"):
		return u
	}
	return ""
}

func joinAnd(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// number formats n with thousands separators: 1,000,000.
func number(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// percent formats part/whole with one decimal, or "—" when whole is 0.
func percent(part, whole int64) string {
	if whole <= 0 {
		return "—"
	}
	return strconv.FormatFloat(float64(part)*100/float64(whole), 'f', 1, 64) + "%"
}

// duration formats a freshness gap coarsely: "0 s", "42 s", "3 min", "2 h 5 min".
func duration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + " s"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + " min"
	default:
		return fmt.Sprintf("%d h %d min", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
}

// votesText is "1 vote" or "n votes".
func votesText(n int64) string {
	if n == 1 {
		return "1 vote"
	}
	return number(n) + " votes"
}
