package dashboard_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"html"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/votingpipe/voting/shared/avatar"
	"github.com/votingpipe/voting/shared/dashboard"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func render(t testing.TB, s dashboard.Snapshot, o dashboard.Options) (page dashboard.Page, index, data string) {
	t.Helper()
	p, err := dashboard.Render(s, o)
	if err != nil {
		t.Fatal(err)
	}
	i, ok := p.File(dashboard.IndexFile)
	if !ok {
		t.Fatal("no index.html")
	}
	d, ok := p.File(dashboard.DataFile)
	if !ok {
		t.Fatal("no data.js")
	}
	return p, string(i.Body), string(d.Body)
}

// pageData is the part of data.js the tests read.
type pageData struct {
	V       int   `json:"v"`
	TakenAt int64 `json:"takenAt"`
	Refresh int   `json:"refresh"`
	Text    map[string]string
	Leader  struct {
		Photo string
		Tie   bool
	}
	Candidates []map[string]string
	States     []stateData
	Map        struct {
		Legend []map[string]string
	}
	Charts []struct {
		ID     string
		Option map[string]any
	}
}

// stateData is a row of the state table in data.js.
type stateData struct {
	K  string
	V  int64
	R  int64
	T  float64
	TS string
	// Leader (name, "tie" or "—"), its kind and colour; margin in votes
	// and as text.
	L, LK, LC string
	M         int64
	MS        string
}

// chartOption is the option of the chart id in data.js.
func (d pageData) chartOption(t testing.TB, id string) map[string]any {
	t.Helper()
	for _, c := range d.Charts {
		if c.ID == id {
			return c.Option
		}
	}
	t.Fatalf("no chart %s in data.js", id)
	return nil
}

// decodeData parses data.js: "votingDashboard.update(" JSON ");".
func decodeData(t testing.TB, data string) pageData {
	t.Helper()
	i := strings.Index(data, "votingDashboard.update(")
	j := strings.LastIndex(data, ");")
	if i < 0 || j < i {
		t.Fatalf("data.js is not a votingDashboard.update call: %.200s", data)
	}
	var d pageData
	if err := json.Unmarshal([]byte(data[i+len("votingDashboard.update("):j]), &d); err != nil {
		t.Fatalf("data.js JSON: %v", err)
	}
	return d
}

func TestRenderPublishesThePageTheDataAndTheEChartsBundle(t *testing.T) {
	p, index, data := render(t, fixture(3, 4, 10, false), dashboard.Options{})
	var names []string
	for _, f := range p.Files {
		names = append(names, f.Name)
		if f.ContentType == "" || len(f.Body) == 0 {
			t.Errorf("%s: empty content type or body", f.Name)
		}
	}
	want := []string{dashboard.EChartsFile, dashboard.MapFile, dashboard.LicenseFile, dashboard.DataFile, dashboard.IndexFile}
	if !slices.Equal(names, want) {
		t.Errorf("files %v, want %v (index.html last, so its scripts are in place first)", names, want)
	}
	for _, f := range p.Files {
		if f.Static != (f.Name == dashboard.EChartsFile || f.Name == dashboard.MapFile || f.Name == dashboard.LicenseFile) {
			t.Errorf("%s: Static = %v", f.Name, f.Static)
		}
	}
	lic, _ := p.File(dashboard.LicenseFile)
	for _, s := range []string{"Apache License", "Version 2.0", "Copyright 2017-2023 The Apache Software Foundation", "LICENSE-d3",
		"us-atlas 3.0.1", "Census Bureau", "Copyright 2013-2019 Michael Bostock", "Permission to use, copy, modify"} {
		if !bytes.Contains(lic.Body, []byte(s)) {
			t.Errorf("license file lacks %q", s)
		}
	}
	if !strings.Contains(index, `<script src="echarts.min.js"></script>
<script src="us-states.js"></script>`) {
		t.Error("index.html does not load echarts.min.js, then us-states.js, from beside itself")
	}
	if !strings.HasPrefix(index, "<!DOCTYPE html>") || !strings.HasSuffix(strings.TrimSpace(index), "</html>") {
		t.Error("index.html is not a whole document")
	}
	d := decodeData(t, data)
	if d.V < 1 || d.Refresh != dashboard.DefaultRefreshSeconds || d.TakenAt != fixture(3, 4, 10, false).TakenAt.UnixMilli() {
		t.Errorf("data header v=%d refresh=%d takenAt=%d", d.V, d.Refresh, d.TakenAt)
	}
	if p.Size() < len(index)+len(data) {
		t.Errorf("Size %d below index+data", p.Size())
	}
}

func TestEmbeddedEChartsIsTheExpectedBuild(t *testing.T) {
	p, _, _ := render(t, dashboard.Snapshot{}, dashboard.Options{})
	f, _ := p.File(dashboard.EChartsFile)
	sum := sha256.Sum256(f.Body)
	// assets/README.md records where this file comes from.
	if got := hex.EncodeToString(sum[:]); got != "1156429a16a38cb8604dcc6518c19406d4226142d908f8edd2e3531443c54d19" {
		t.Errorf("echarts.min.js sha256 %s: not the npm echarts@5.4.3 dist/echarts.min.js", got)
	}
	if !bytes.Contains(f.Body, []byte(`version="`+dashboard.EChartsVersion+`"`)) {
		t.Errorf("bundle is not echarts %s", dashboard.EChartsVersion)
	}
	if !bytes.Contains(f.Body[:200], []byte("Licensed to the Apache Software Foundation")) {
		t.Error("bundle lost its license header")
	}
}

func TestEmbeddedMapIsTheGeneratedOne(t *testing.T) {
	p, _, _ := render(t, dashboard.Snapshot{}, dashboard.Options{})
	f, ok := p.File(dashboard.MapFile)
	if !ok || !f.Static || f.ContentType != "text/javascript; charset=utf-8" {
		t.Fatalf("no static %s script in the page: %+v", dashboard.MapFile, f.Name)
	}
	sum := sha256.Sum256(f.Body)
	// assets/README.md records how mkmap.mjs makes this file.
	if got := hex.EncodeToString(sum[:]); got != "8e419e23ff3eae6fa95325d802ae3fef6e5708a6b596d763baceb353459a6b56" {
		t.Errorf("us-states.js sha256 %s: not what mkmap.mjs makes from us-atlas 3.0.1 (regenerate it and update README.md)", got)
	}
	// It registers the map the chart names, with the 50 states and only those.
	i := bytes.Index(f.Body, []byte(`window.echarts.registerMap("us-states", `))
	j := bytes.LastIndex(f.Body, []byte(`); }`))
	if i < 0 || j < i {
		t.Fatal("us-states.js does not register the map us-states")
	}
	var geo struct {
		Type     string
		Features []struct {
			Type       string
			Properties map[string]string
			Geometry   struct{ Type string }
		}
	}
	if err := json.Unmarshal(f.Body[i+len(`window.echarts.registerMap("us-states", `):j], &geo); err != nil {
		t.Fatalf("us-states.js GeoJSON: %v", err)
	}
	var names []string
	for _, ft := range geo.Features {
		names = append(names, ft.Properties["name"])
		if len(ft.Properties) != 1 || (ft.Geometry.Type != "Polygon" && ft.Geometry.Type != "MultiPolygon") {
			t.Errorf("%s: properties %v, geometry %s", ft.Properties["name"], ft.Properties, ft.Geometry.Type)
		}
	}
	if geo.Type != "FeatureCollection" || !slices.Equal(names, usStates) {
		t.Errorf("map states %q, want the 50 states in order", names)
	}
	if !bytes.Contains(f.Body[:i], []byte("U.S. Census Bureau")) || !bytes.Contains(f.Body[:i], []byte("Copyright 2013-2019 Michael Bostock")) {
		t.Error("us-states.js lost its provenance and licence header")
	}
}

// cdnPattern matches what a CDN or any remote asset reference looks like.
var cdnPattern = regexp.MustCompile(`(?i)cdn|jsdelivr|unpkg|cdnjs|go-echarts\.github\.io|googleapis|(src|href)\s*=\s*["']?(https?:)?//`)

func TestNoCDNAnywhere(t *testing.T) {
	p, index, _ := render(t, usFixture(4, 1000, false), dashboard.Options{})
	checked := map[string]bool{}
	for _, f := range p.Files {
		checked[f.Name] = true
		if f.Name == dashboard.LicenseFile {
			continue // license text names its own homepages
		}
		if m := cdnPattern.Find(f.Body); m != nil {
			t.Errorf("%s refers to a remote asset: %q", f.Name, m)
		}
	}
	// Every script and link the page loads is one of its own files.
	for _, m := range regexp.MustCompile(`(?:src|href)="([^"]*)"`).FindAllStringSubmatch(index, -1) {
		u := html.UnescapeString(m[1])
		if strings.HasPrefix(u, "data:image/") {
			continue // inline candidate photos
		}
		if _, ok := p.File(u); !ok {
			t.Errorf("index.html refers to %q, which is not a file of the page", u)
		}
	}
	// Every script the page runs is checked: echarts, the map, the data.
	for _, name := range []string{dashboard.EChartsFile, dashboard.MapFile, dashboard.DataFile, dashboard.IndexFile} {
		if !checked[name] {
			t.Errorf("%s is not among the page's files", name)
		}
		if name != dashboard.DataFile && name != dashboard.IndexFile && !strings.Contains(index, `<script src="`+name+`"></script>`) {
			t.Errorf("index.html does not load %s from beside itself", name)
		}
	}
	// The map is drawn from the registered shapes, never from a map file
	// echarts or go-echarts would fetch.
	if strings.Contains(index, "maps/") || strings.Contains(index, ".geojson") {
		t.Error("index.html refers to a map file")
	}
}

func TestRenderIsDeterministic(t *testing.T) {
	s := fixture(5, 52, 300, true)
	_, i1, d1 := render(t, s, dashboard.Options{})
	_, i2, d2 := render(t, s, dashboard.Options{})
	if i1 != i2 || d1 != d2 {
		t.Error("two renders of one snapshot differ")
	}
}

func TestLeaderCard(t *testing.T) {
	withVotes := func(votes ...int64) dashboard.Snapshot {
		s := fixture(len(votes), 3, 0, false)
		s.Counted = 0
		for i, v := range votes {
			s.Candidates[i].Votes = v
			s.Counted += v
		}
		return s
	}
	for _, tc := range []struct {
		name                          string
		snap                          dashboard.Snapshot
		status, votes, share, lead    string
		tie, photo, leaderIsCandidate bool
	}{
		{"a clear leader", withVotes(300, 500, 200), "Leading", "500 votes", "50.0% of votes counted", "by 200 votes (20.0 pts)", false, true, true},
		{"a tie at the top", withVotes(400, 100, 400), "Tie between 2 candidates", "400 votes each", "44.4% each", "tie", true, true, false},
		{"a three-way tie", withVotes(7, 7, 7), "Tie between 3 candidates", "7 votes each", "33.3% each", "tie", true, true, false},
		{"one candidate", withVotes(12), "Leading", "12 votes", "100.0% of votes counted", "unopposed", false, true, true},
		{"no votes yet", withVotes(0, 0), "No votes counted yet", "0 votes", "", "", false, false, false},
		{"no candidates", dashboard.Snapshot{Election: "Empty"}, "No candidates registered yet", "", "", "", false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, index, data := render(t, tc.snap, dashboard.Options{})
			d := decodeData(t, data)
			tx := d.Text
			if tx["leaderStatus"] != tc.status || tx["leaderVotes"] != tc.votes || tx["leaderShare"] != tc.share || !strings.Contains(tx["leaderLead"], tc.lead) {
				t.Errorf("leader card: status %q votes %q share %q lead %q", tx["leaderStatus"], tx["leaderVotes"], tx["leaderShare"], tx["leaderLead"])
			}
			if d.Leader.Tie != tc.tie || (d.Leader.Photo != "") != tc.photo {
				t.Errorf("tie %v photo %q", d.Leader.Tie, d.Leader.Photo)
			}
			if tc.leaderIsCandidate && tx["leaderName"] != d.Candidates[0]["name"] {
				t.Errorf("leader %q is not the first-ranked candidate %q", tx["leaderName"], d.Candidates[0]["name"])
			}
			if tc.tie && !strings.Contains(tx["leaderName"], " and ") {
				t.Errorf("a tie names every tied candidate, got %q", tx["leaderName"])
			}
			// The HTML shows the same words as the data.
			if !strings.Contains(index, `data-k="leaderStatus">`+html.EscapeString(tc.status)+`<`) {
				t.Errorf("index.html does not show status %q", tc.status)
			}
			if tc.tie != strings.Contains(index, `id="leader" data-tie`) {
				t.Errorf("data-tie on the leader card should be %v", tc.tie)
			}
		})
	}
}

func TestTilesAndTables(t *testing.T) {
	s := fixture(3, 52, 100, false)
	s.Registered = 1_000_000
	s.Counted = 123_456
	s.Rejected = map[string]int64{"malformed": 2, "already_voted": 5, "duplicate": 40, "unknown_candidate": 1}
	_, index, data := render(t, s, dashboard.Options{})
	d := decodeData(t, data)
	for k, want := range map[string]string{
		"registered":     "1,000,000",
		"counted":        "123,456",
		"turnout":        "12.3%",
		"candidates":     "3",
		"rejected":       "8",
		"rejectedDetail": "second ballot 5 · malformed 2 · unknown candidate 1",
		"duplicates":     "40 duplicate deliveries ignored",
		"election":       "General election 2026",
		"updated":        "2026-11-03 12:01:42 UTC",
		"newestVote":     "12:01:39 UTC",
		"lag":            "3 s before this snapshot",
	} {
		if d.Text[k] != want {
			t.Errorf("text %s = %q, want %q", k, d.Text[k], want)
		}
		if !strings.Contains(index, `data-k="`+k+`">`+html.EscapeString(want)+`<`) {
			t.Errorf("index.html does not show %s = %q", k, want)
		}
	}
	// Candidates: ranked by votes, shares add up.
	if len(d.Candidates) != 3 || d.Candidates[0]["rank"] != "1" || d.Candidates[2]["rank"] != "3" {
		t.Errorf("candidate ranks: %v", d.Candidates)
	}
	// Every state is in the data (the page pages them) and in the HTML (for
	// readers without JavaScript), sorted by name.
	if len(d.States) != 52 {
		t.Fatalf("%d states in data, want 52", len(d.States))
	}
	if !slices.IsSortedFunc(d.States, func(a, b stateData) int {
		return strings.Compare(a.K, b.K)
	}) {
		t.Error("states not sorted by name")
	}
	if n := strings.Count(index[strings.Index(index, `id="states"`):], "<tr><td>State "); n != 52 {
		t.Errorf("index.html state table has %d rows, want 52", n)
	}
	for _, size := range []string{"10", "25", "50", "100"} {
		if !strings.Contains(index, `<option value="`+size+`">`) {
			t.Errorf("no page size %s", size)
		}
	}
	// Every chart is on the page, once, with its option.
	for _, id := range dashboard.ChartIDs {
		if strings.Count(index, `data-chart="`+id+`"`) != 1 {
			t.Errorf("chart %s not on the page exactly once", id)
		}
	}
	var ids []string
	for _, c := range d.Charts {
		ids = append(ids, c.ID)
		if len(c.Option["series"].([]any)) == 0 {
			t.Errorf("chart %s has no series", c.ID)
		}
	}
	if !slices.Equal(ids, dashboard.ChartIDs) {
		t.Errorf("charts %v, want %v", ids, dashboard.ChartIDs)
	}
}

func TestDonutIsADonut(t *testing.T) {
	_, _, data := render(t, fixture(3, 2, 5, false), dashboard.Options{})
	for _, c := range decodeData(t, data).Charts {
		if c.ID != dashboard.ChartVotesDonut {
			continue
		}
		ser := c.Option["series"].([]any)[0].(map[string]any)
		r, ok := ser["radius"].([]any)
		if ser["type"] != "pie" || !ok || len(r) != 2 || r[0] == "0%" {
			t.Errorf("donut series: type %v radius %v, want a pie with an inner radius", ser["type"], ser["radius"])
		}
	}
}

func TestTimelineIsCumulativeAndDownsampled(t *testing.T) {
	s := fixture(3, 2, 1800, false)
	_, _, data := render(t, s, dashboard.Options{MaxTimelinePoints: 400})
	for _, c := range decodeData(t, data).Charts {
		if c.ID != dashboard.ChartTimeline {
			continue
		}
		series := c.Option["series"].([]any)
		if len(series) != 3 {
			t.Fatalf("%d series, want 3", len(series))
		}
		for _, sr := range series {
			pts := sr.(map[string]any)["data"].([]any)
			// At most 400 instants, plus the zero the line starts from.
			if len(pts) > 401 {
				t.Errorf("%d points, want at most 401", len(pts))
			}
			if first := pts[0].(map[string]any)["value"].([]any)[1].(float64); first != 0 {
				t.Errorf("the line starts at %v, want 0", first)
			}
			prev := -1.0
			for _, p := range pts {
				v := p.(map[string]any)["value"].([]any)[1].(float64)
				if v < prev {
					t.Fatalf("series %v falls from %v to %v: not cumulative", sr.(map[string]any)["name"], prev, v)
				}
				prev = v
			}
			name := sr.(map[string]any)["name"].(string)
			for _, cand := range s.Candidates {
				if cand.Name == name && int64(prev) != cand.Votes {
					t.Errorf("%s ends at %v, want the candidate's total %d", name, prev, cand.Votes)
				}
			}
		}
	}
}

func TestDownsample(t *testing.T) {
	mk := func(n int) dashboard.Timeline {
		tl := dashboard.Timeline{Series: []dashboard.TimelineSeries{{CandidateID: "a"}}}
		for i := range n {
			tl.Times = append(tl.Times, t0.Add(time.Duration(i)*time.Second))
			tl.Series[0].Cumulative = append(tl.Series[0].Cumulative, int64(i*i))
		}
		return tl
	}
	for _, tc := range []struct {
		name    string
		n, max  int
		wantLen int
	}{
		{"empty", 0, 500, 0},
		{"under the limit", 10, 500, 10},
		{"at the limit", 500, 500, 500},
		{"one over", 501, 500, 500},
		{"a long day", 86_400, 500, 500},
		{"tiny limit", 100, 1, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := mk(tc.n)
			out := in.Downsample(tc.max)
			if len(out.Times) != tc.wantLen || len(out.Series[0].Cumulative) != tc.wantLen {
				t.Fatalf("%d instants, want %d", len(out.Times), tc.wantLen)
			}
			if tc.n == 0 {
				return
			}
			if !out.Times[len(out.Times)-1].Equal(in.Times[tc.n-1]) || out.Series[0].Cumulative[tc.wantLen-1] != in.Series[0].Cumulative[tc.n-1] {
				t.Error("the last point (the current total) was not kept")
			}
			// Every kept point is an exact point of the input.
			for k, at := range out.Times {
				i := int(at.Sub(t0) / time.Second)
				if out.Series[0].Cumulative[k] != in.Series[0].Cumulative[i] {
					t.Fatalf("point %d at %v is %d, input has %d", k, at, out.Series[0].Cumulative[k], in.Series[0].Cumulative[i])
				}
			}
		})
	}
}

func TestPhotosAreImagesOnly(t *testing.T) {
	s := fixture(8, 1, 3, false)
	s.Candidates[0].PhotoURL = "javascript:alert(1)"
	s.Candidates[1].PhotoURL = "data:text/html,<script>alert(1)</script>"
	s.Candidates[2].PhotoURL = "https://example.org/p.png"
	s.Candidates[3].PhotoURL = avatar.Ref("Ada Lovelace", "#1f77b4") // what the generator gives
	s.Candidates[4].PhotoURL = "avatars/../../secret-1f77b4.svg"
	s.Candidates[5].PhotoURL = "avatars/A%3Cscript%3E-1f77b4.svg"
	s.Candidates[6].PhotoURL = " data:image/png;base64,iVBORw0KGgo= "
	s.Candidates[7].PhotoURL = "/avatars/AL-1f77b4.svg"
	_, index, data := render(t, s, dashboard.Options{})
	if strings.Contains(index, "javascript:") || strings.Contains(index, "data:text/html") || strings.Contains(index, "avatars/") {
		t.Error("a non-image photo URL reached the page")
	}
	byName := map[string]string{}
	for _, c := range decodeData(t, data).Candidates {
		byName[c["name"]] = c["photo"]
	}
	ada, _ := avatar.DataURL(avatar.Ref("Ada Lovelace", "#1f77b4"))
	want := []string{"", "", "https://example.org/p.png", ada, "", "", "data:image/png;base64,iVBORw0KGgo=", ""}
	for i, w := range want {
		if got := byName[s.Candidates[i].Name]; got != w {
			t.Errorf("candidate %d: photo %q shown as %q, want %q", i, s.Candidates[i].PhotoURL, got, w)
		}
	}
	if !strings.Contains(index, ada) {
		t.Error("the avatar is not inlined in the page")
	}
	if strings.Contains(index, "#ZgotmplZ") {
		t.Error("html/template refused a photo URL")
	}
}

func TestOptionsDefaultsAndOverrides(t *testing.T) {
	s := fixture(2, 1, 2, false)
	_, index, data := render(t, s, dashboard.Options{Title: "Results & <more>", RefreshSeconds: -1, Location: time.FixedZone("EST", -5*3600)})
	d := decodeData(t, data)
	if d.Refresh != 0 || !strings.Contains(index, "does not refresh") {
		t.Errorf("negative RefreshSeconds should turn refreshing off, got refresh %d", d.Refresh)
	}
	if !strings.Contains(index, "<h1 data-k=\"title\">Results &amp; &lt;more&gt;</h1>") {
		t.Error("title not shown escaped")
	}
	if d.Text["updated"] != "2026-11-03 07:00:04 EST" {
		t.Errorf("updated %q, want the time in the given zone", d.Text["updated"])
	}
	_, _, data = render(t, s, dashboard.Options{RefreshSeconds: 30})
	if decodeData(t, data).Refresh != 30 {
		t.Error("RefreshSeconds not passed to the page")
	}
}

// TestGolden pins the whole rendered page of a small snapshot (four states
// on the map, one name it does not know). After an intended change, run:
// go test ./shared/dashboard -run Golden -update
func TestGolden(t *testing.T) {
	p, _, _ := render(t, fixtureStates(3, []string{"Alaska", "Atlantis", "Hawaii", "New York", "Texas"}, 12, true), dashboard.Options{})
	for _, name := range []string{dashboard.IndexFile, dashboard.DataFile} {
		f, _ := p.File(name)
		golden := filepath.Join("testdata", "golden", name)
		if *update {
			if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(golden, f.Body, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if !bytes.Equal(f.Body, want) {
			got := filepath.Join(t.TempDir(), name)
			os.WriteFile(got, f.Body, 0o644) //nolint:errcheck
			t.Errorf("%s differs from %s (diff %s %s; -update to accept)", name, golden, golden, got)
		}
	}
}

func BenchmarkRender(b *testing.B) {
	b.Run("10 candidates, 50 states, 1000 instants", func(b *testing.B) { benchRender(b, fixture(10, 50, 1000, false)) })
	// What the store gives for a real election: 50 states, 4 candidates,
	// a timeline of election.DefaultMaxPoints instants.
	b.Run("4 candidates, 50 US states, 500 instants", func(b *testing.B) { benchRender(b, usFixture(4, 500, false)) })
}

func benchRender(b *testing.B, s dashboard.Snapshot) {
	var p dashboard.Page
	for b.Loop() {
		var err error
		if p, err = dashboard.Render(s, dashboard.Options{}); err != nil {
			b.Fatal(err)
		}
	}
	i, _ := p.File(dashboard.IndexFile)
	d, _ := p.File(dashboard.DataFile)
	b.ReportMetric(float64(len(i.Body)), "index-bytes")
	b.ReportMetric(float64(len(d.Body)), "data-bytes")
	b.ReportMetric(float64(p.Size()), "page-bytes")
}
