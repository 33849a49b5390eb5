package dashboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"image/png"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/votingpipe/voting/shared/dashboard"
)

// chromiumPath finds Debian's chromium. Without it the browser tests skip,
// unless VOTING_REQUIRE_CHROMIUM=1 (as in CI), when they fail.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("VOTING_CHROMIUM"), "/usr/bin/chromium"} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv("VOTING_REQUIRE_CHROMIUM") == "1" {
		t.Fatal("chromium is not installed (apt-get install chromium) and VOTING_REQUIRE_CHROMIUM=1")
	}
	t.Skip("chromium is not installed; apt-get install chromium to run the browser tests")
	return ""
}

// runChromium loads the page in headless Chromium with networking off and
// returns the DOM after the page's scripts ran for 5 s of virtual time.
// extra adds flags (e.g. a screenshot).
func runChromium(t *testing.T, page string, extra ...string) string {
	t.Helper()
	bin := chromiumPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-extensions", "--mute-audio", "--hide-scrollbars",
		// No network at all: every host name fails to resolve and any
		// proxied request goes to a closed port.
		"--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9",
		"--user-data-dir=" + t.TempDir(),
		"--virtual-time-budget=5000", "--window-size=1280,2400",
	}
	args = append(args, extra...)
	args = append(args, page)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("chromium: %v\n%s", err, tail(msg, 2000))
	}
	return string(out)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func fileURL(path, fragment string) string {
	u := url.URL{Scheme: "file", Path: path, Fragment: fragment}
	return u.String()
}

func publishTo(t *testing.T, dir string, p dashboard.Page) string {
	t.Helper()
	if err := (dashboard.Dir{Dir: dir}).Publish(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, dashboard.IndexFile)
}

type selftest struct {
	// TakenAt is the data's, in "selftest=report" mode.
	TakenAt int64
	Charts  []struct {
		ID                     string
		Canvas                 bool
		Width, Height, Painted int
	}
	Table []struct {
		Step, Sort, Dir, Range, Hash string
		Page, Size, Pages            int
		Rows                         [][]string
	}
	Tooltips []struct {
		Chart, State string
		Index        int
		Text         string
	}
	// Map is the map series as echarts holds it (getOption()).
	Map *struct {
		Type, Map  string
		Registered bool
		Items      []struct {
			Name, Leader, Color string
			Decal               bool
		}
	}
	// Layout is what the page measured of itself.
	Layout *struct {
		InnerWidth, ScrollWidth int
		// Wide names elements that reach past the window's right edge.
		Wide   []string
		Charts []struct {
			ID                         string
			Left, Right, Width, Height int
		}
		Headers []struct {
			Table, Text string
			Lines       int
		}
		// Tables says how far each table reaches past its card (scrolling
		// sideways inside it).
		Tables []struct {
			ID       string
			Overflow int
		}
	}
	Errors []string
}

var selftestPre = regexp.MustCompile(`(?s)<pre id="selftest"[^>]*data-done="1"[^>]*>(.*?)</pre>`)

// parseSelftest reads the self-test's result from a dumped DOM.
func parseSelftest(t *testing.T, dom string) selftest {
	t.Helper()
	m := selftestPre.FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("the page self-test did not finish; DOM tail:\n%s", tail(dom, 3000))
	}
	var st selftest
	if err := json.Unmarshal([]byte(html.UnescapeString(m[1])), &st); err != nil {
		t.Fatalf("self-test result: %v", err)
	}
	if len(st.Errors) > 0 {
		t.Fatalf("self-test errors: %v", st.Errors)
	}
	return st
}

// checkMap compares the map echarts drew with the snapshot: one item per
// state of the 50 with votes, each in its leader's colour (the candidate
// table's), ties hatched.
func checkMap(t *testing.T, snap dashboard.Snapshot, p dashboard.Page, st selftest) {
	t.Helper()
	if st.Map == nil || st.Map.Type != "map" || st.Map.Map != "us-states" || !st.Map.Registered {
		t.Fatalf("no map of us-states in the page: %+v", st.Map)
	}
	d, _ := p.File(dashboard.DataFile)
	colors := colorsByName(decodeData(t, string(d.Body)))
	want := expectedLeaders(snap)
	if len(st.Map.Items) != len(want) {
		t.Errorf("%d states on the map, want %d", len(st.Map.Items), len(want))
	}
	for _, it := range st.Map.Items {
		w, ok := want[it.Name]
		switch {
		case !ok:
			t.Errorf("%s is on the map without results", it.Name)
		case it.Leader != w:
			t.Errorf("%s: the map says %q leads, the snapshot %q", it.Name, it.Leader, w)
		case w == "tie" && (it.Color != tieColor || !it.Decal):
			t.Errorf("%s: a tie drawn %s (hatched %v)", it.Name, it.Color, it.Decal)
		case w != "tie" && (it.Color != colors[w] || it.Decal):
			t.Errorf("%s: drawn %s, want %s's %s", it.Name, it.Color, w, colors[w])
		}
	}
}

// mapStates are 52 state names, as the paging tests expect: the 50 states
// and two the map does not draw.
var mapStates = append(slices.Clone(usStates), "Atlantis", "District of Columbia")

// TestBrowserDrawsChartsPagesSortsAndKeepsNamesAsText loads the page from
// file:// with hostile candidate names and lets its self-test drive it.
func TestBrowserDrawsChartsPagesSortsAndKeepsNamesAsText(t *testing.T) {
	snap := fixtureStates(5, mapStates, 1000, true)
	// Vermont has no votes yet: no results, grey on the map. (The
	// candidates' totals still count its votes; the page does not check.)
	snap.Results = slices.DeleteFunc(snap.Results, func(r dashboard.StateResult) bool { return r.State == "Vermont" })
	snap.States[slices.IndexFunc(snap.States, func(t dashboard.Turnout) bool { return t.Key == "Vermont" })].Votes = 0
	p, _, _ := render(t, snap, dashboard.Options{})
	index := publishTo(t, t.TempDir(), p)
	dom := runChromium(t, fileURL(index, "selftest"), "--dump-dom")

	// No hostile payload ran.
	if m := regexp.MustCompile(`<html[^>]*data-xss[^>]*>`).FindString(dom); m != "" {
		t.Fatalf("a hostile name ran as code: %s", m)
	}
	// The XSS name is text in the DOM (serialized escaped), in the candidate
	// table and the leader card.
	escaped := html.EscapeString(xssName)
	escaped = strings.ReplaceAll(escaped, "&#34;", `"`) // the DOM serializer leaves quotes in text
	if !strings.Contains(dom, `<td>`+escaped+`</td>`) || !strings.Contains(dom, `data-k="leaderName">`+escaped+`<`) {
		t.Errorf("the XSS name is not shown as text in the table and leader card")
	}

	st := parseSelftest(t, dom)

	// Every chart drew: a canvas of the element's size with paint on it.
	var drawn []string
	for _, c := range st.Charts {
		drawn = append(drawn, c.ID)
		if !c.Canvas || c.Width < 200 || c.Height < 200 || c.Painted < 100 {
			t.Errorf("chart %s: canvas %v %dx%d, %d painted samples", c.ID, c.Canvas, c.Width, c.Height, c.Painted)
		}
	}
	slices.Sort(drawn)
	wantCharts := slices.Clone(dashboard.ChartIDs)
	slices.Sort(wantCharts)
	if !slices.Equal(drawn, wantCharts) {
		t.Errorf("charts drawn %v, want %v", drawn, wantCharts)
	}

	// The state table sorted and paged through its own controls.
	checkTableSteps(t, snap, st)

	// Tooltips show hostile names as text.
	shown := 0
	for _, tip := range st.Tooltips {
		if strings.Contains(tip.Text, xssName) {
			shown++
		}
	}
	if shown < 2 {
		t.Errorf("the XSS name appeared as text in %d tooltips, want the bar's and the donut's: %+v", shown, st.Tooltips)
	}

	// The map drew every state with votes in its leader's colour, and its
	// tooltips give the state's votes, margin and turnout, names as text.
	checkMap(t, snap, p, st)
	mapTips := 0
	for _, tip := range st.Tooltips {
		if tip.Chart != dashboard.ChartStateMap {
			continue
		}
		mapTips++
		if !strings.HasPrefix(tip.Text, tip.State) {
			t.Errorf("map tooltip for %s reads %q", tip.State, tip.Text)
		}
		if leader := expectedLeaders(snap)[tip.State]; leader != "" {
			for _, w := range []string{"Leader: " + leader, "Margin ", " pts)", "Turnout ", "registered"} {
				if !strings.Contains(tip.Text, w) {
					t.Errorf("map tooltip for %s lacks %q: %q", tip.State, w, tip.Text)
				}
			}
		} else if !strings.Contains(tip.Text, "No votes yet") {
			t.Errorf("map tooltip for %s (no votes) reads %q", tip.State, tip.Text)
		}
	}
	if mapTips != 4 {
		t.Errorf("%d map tooltips shown, want 4 (three states with votes, Vermont without)", mapTips)
	}
}

// expectedStates orders the fixture's states as the page should.
func expectedStates(s dashboard.Snapshot, key, dir string) []string {
	type row struct {
		k    string
		v, r int64
		t    float64
	}
	rows := make([]row, len(s.States))
	for i, st := range s.States {
		rows[i] = row{st.Key, st.Votes, st.Registered, -1}
		if st.Registered > 0 {
			// As the page rounds it: to two decimals of a percent.
			rows[i].t = float64(int64(float64(st.Votes)*10000/float64(st.Registered)+0.5)) / 100
		}
	}
	slices.SortStableFunc(rows, func(a, b row) int {
		c := 0
		switch key {
		case "k":
			c = strings.Compare(a.k, b.k)
		case "t":
			c = cmpFloat(a.t, b.t)
		}
		if dir == "desc" {
			c = -c
		}
		if c == 0 {
			c = strings.Compare(a.k, b.k)
		}
		return c
	})
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.k
	}
	return out
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func checkTableSteps(t *testing.T, snap dashboard.Snapshot, st selftest) {
	t.Helper()
	type want struct {
		sort, dir        string
		page, size, rows int
		pages            int
	}
	steps := map[string]want{
		"initial":            {"k", "asc", 1, 10, 10, 6},
		"sort turnout":       {"t", "desc", 1, 10, 10, 6},
		"sort turnout again": {"t", "asc", 1, 10, 10, 6},
		"next":               {"t", "asc", 2, 10, 10, 6},
		"last":               {"t", "asc", 6, 10, 2, 6}, // 52 states: the last page holds 51-52
		"size 25":            {"t", "asc", 3, 25, 2, 3}, // the first row in view (51) stays in view
		"sort state":         {"k", "asc", 1, 25, 25, 3},
		"page 2":             {"k", "asc", 2, 25, 25, 3},
	}
	if len(st.Table) != len(steps) {
		t.Fatalf("%d table steps, want %d", len(st.Table), len(steps))
	}
	for _, got := range st.Table {
		w, ok := steps[got.Step]
		if !ok {
			t.Errorf("unexpected step %q", got.Step)
			continue
		}
		if got.Sort != w.sort || got.Dir != w.dir || got.Page != w.page || got.Size != w.size || len(got.Rows) != w.rows || got.Pages != w.pages {
			t.Errorf("%s: sort %s %s page %d size %d rows %d pages %d, want %+v", got.Step, got.Sort, got.Dir, got.Page, got.Size, len(got.Rows), got.Pages, w)
			continue
		}
		order := expectedStates(snap, w.sort, w.dir)
		from := (w.page - 1) * w.size
		for i, r := range got.Rows {
			if r[0] != order[from+i] {
				t.Errorf("%s: row %d is %q, want %q", got.Step, from+i+1, r[0], order[from+i])
				break
			}
		}
		if got.Step != "initial" && !strings.Contains(got.Hash, "sort="+w.sort) {
			t.Errorf("%s: the fragment %q does not keep the table state", got.Step, got.Hash)
		}
	}
}

// TestBrowserRefreshesInPlace opens a page whose data.js is newer than it
// (as after a render), with the table sorted and paged through the URL
// fragment: the page must pick up the new numbers without losing its place.
func TestBrowserRefreshesInPlace(t *testing.T) {
	dir := t.TempDir()
	older := fixtureStates(4, mapStates, 100, false)
	newer := fixtureStates(4, mapStates, 400, false)
	newer.Rejected = map[string]int64{"malformed": 9}
	// The map changes too: the last candidate takes Texas.
	for i, r := range newer.Results {
		if r.State == "Texas" {
			newer.Results[i].Votes = []int64{1, 2, 3, 1000}
		}
	}
	if expectedLeaders(older)["Texas"] == newer.Candidates[3].Name {
		t.Fatal("the fixture's Texas should change hands")
	}
	pOld, _, _ := render(t, older, dashboard.Options{RefreshSeconds: 1})
	pNew, _, _ := render(t, newer, dashboard.Options{RefreshSeconds: 1})
	index := publishTo(t, dir, pOld)
	d, _ := pNew.File(dashboard.DataFile)
	if err := os.WriteFile(filepath.Join(dir, dashboard.DataFile), d.Body, 0o644); err != nil {
		t.Fatal(err)
	}
	dom := runChromium(t, fileURL(index, "sort=t&dir=desc&page=2&size=10&selftest=report"), "--dump-dom")

	if m := regexp.MustCompile(`data-refreshes="(\d+)"`).FindStringSubmatch(dom); m == nil {
		t.Fatalf("the page never refreshed from data.js; DOM head:\n%.1500s", dom)
	}
	newData := decodeData(t, string(d.Body))
	for _, k := range []string{"counted", "turnout", "rejected", "updated"} {
		if !strings.Contains(dom, `data-k="`+k+`">`+newData.Text[k]+`<`) {
			t.Errorf("tile %s does not show the refreshed %q", k, newData.Text[k])
		}
	}
	// Still sorted by turnout, descending, on page 2 — of the new numbers.
	body := dom[strings.Index(dom, `id="states"`):]
	body = body[:strings.Index(body, "</table>")]
	if !strings.Contains(body, `data-sort="t" class="num" aria-sort="descending"`) {
		t.Error("the table lost its sort column")
	}
	cells := regexp.MustCompile(`<tr><td>([^<]+)</td>`).FindAllStringSubmatch(body, -1)
	order := expectedStates(newer, "t", "desc")
	if len(cells) != 10 {
		t.Fatalf("%d rows on the page, want 10", len(cells))
	}
	for i, c := range cells {
		if c[1] != order[10+i] {
			t.Errorf("row %d is %s, want %s (page 2 by turnout)", 11+i, c[1], order[10+i])
		}
	}
	if !strings.Contains(dom, "page 2 of 6") {
		t.Error("the table is not on page 2 after the refresh")
	}
	// The map was redrawn from the new data.
	st := parseSelftest(t, dom)
	if st.TakenAt != newer.TakenAt.UnixMilli() {
		t.Fatalf("the last report is of the data taken at %d, want the refreshed %d", st.TakenAt, newer.TakenAt.UnixMilli())
	}
	checkMap(t, newer, pNew, st)
}

// phoneFrame is a page that shows index.html in a 390×844 frame, an iPhone
// 12-15's viewport (headless Chromium's own window is never narrower than
// 500 px), and copies the page's self-test result into its own DOM.
const phoneFrame = `<!DOCTYPE html>
<html><body style="margin:0">
<iframe id="phone" src="index.html#selftest" style="width:390px;height:%dpx;border:0"></iframe>
<pre id="selftest"></pre>
<script>
var poll = setInterval(function () {
  var out = document.getElementById("selftest");
  try {
    var pre = document.getElementById("phone").contentDocument.getElementById("selftest");
    if (pre && pre.getAttribute("data-done")) {
      out.textContent = pre.textContent;
      out.setAttribute("data-done", "1");
      clearInterval(poll);
    }
  } catch (e) {
    out.textContent = JSON.stringify({ errors: [String(e)] });
    out.setAttribute("data-done", "1");
    clearInterval(poll);
  }
}, 100);
</script>
</body></html>
`

// phoneLayout opens dir's index.html in a 390 px wide frame of the given
// height and returns its self-test; with shot set, it also keeps a
// screenshot of the frame there.
func phoneLayout(t *testing.T, dir string, height int, shot string) selftest {
	t.Helper()
	frame := filepath.Join(dir, "phone.html")
	if err := os.WriteFile(frame, []byte(fmt.Sprintf(phoneFrame, height)), 0o644); err != nil {
		t.Fatal(err)
	}
	// The frame reads the page's DOM: file:// pages may, with this flag.
	st := parseSelftest(t, runChromium(t, fileURL(frame, ""), "--dump-dom", "--allow-file-access-from-files"))
	if shot != "" {
		os.Remove(shot) //nolint:errcheck
		runChromium(t, fileURL(frame, ""), "--allow-file-access-from-files", "--screenshot="+shot, fmt.Sprintf("--window-size=500,%d", height))
		if fi, err := os.Stat(shot); err != nil || fi.Size() < 30_000 {
			t.Errorf("screenshot %s: %v", shot, err)
		}
		t.Logf("screenshot: %s", shot)
	}
	return st
}

// TestBrowserPhoneLayout runs the self-test at 390 px wide: the page does
// not scroll sideways, every chart fits, no table header breaks, and the
// map is drawn.
func TestBrowserPhoneLayout(t *testing.T) {
	snap := fixtureStates(5, mapStates, 1000, true)
	p, _, _ := render(t, snap, dashboard.Options{})
	dir := t.TempDir()
	publishTo(t, dir, p)
	st := phoneLayout(t, dir, 844, "")

	l := st.Layout
	if l == nil || l.InnerWidth != 390 {
		t.Fatalf("layout %+v: want the page's viewport 390 px wide", l)
	}
	if l.ScrollWidth > l.InnerWidth {
		t.Errorf("the page is %d px wide in a %d px viewport: it scrolls sideways (%q)", l.ScrollWidth, l.InnerWidth, l.Wide)
	}
	for _, c := range l.Charts {
		if c.Left < 0 || c.Right > l.InnerWidth || c.Width < 300 || c.Height < 150 {
			t.Errorf("chart %s spans %d..%d px (%dx%d) of %d", c.ID, c.Left, c.Right, c.Width, c.Height, l.InnerWidth)
		}
	}
	if len(l.Charts) != len(dashboard.ChartIDs) {
		t.Errorf("%d charts measured, want %d", len(l.Charts), len(dashboard.ChartIDs))
	}
	// On a phone the candidate table hides its rank, the state table its votes and registered voters.
	if len(l.Headers) < 9 {
		t.Errorf("%d table headers measured, want both tables' 9 shown", len(l.Headers))
	}
	if len(l.Tables) != 2 {
		t.Errorf("%d tables measured, want 2", len(l.Tables))
	}
	// Hostile names are single words too long for a phone: their tables
	// scroll inside their cards (TestBrowserShowsTheDatabasesLeaders checks
	// that a real election's do not).
	for _, tb := range l.Tables {
		t.Logf("table %s reaches %d px past its card", tb.ID, tb.Overflow)
	}
	for _, h := range l.Headers {
		if h.Lines != 1 {
			t.Errorf("%s header %q is on %d lines: broken mid-word", h.Table, h.Text, h.Lines)
		}
	}
	for _, c := range st.Charts {
		if !c.Canvas || c.Painted < 100 {
			t.Errorf("chart %s did not paint at 390 px: %+v", c.ID, c)
		}
	}
	checkMap(t, snap, p, st)
	// One named state, as the snapshot has it.
	ny := expectedLeaders(snap)["New York"]
	found := false
	for _, it := range st.Map.Items {
		if it.Name == "New York" {
			found = it.Leader == ny
		}
	}
	if !found || ny == "" {
		t.Errorf("New York's leader on the map is not the snapshot's %q", ny)
	}
}

// TestBrowserScreenshot keeps pictures of the page for people to look at
// (testdata/artifacts/dashboard/, not committed): on a desktop, and on a
// phone (390×844, and the whole page at that width).
func TestBrowserScreenshot(t *testing.T) {
	p, _, _ := render(t, fixtureStates(5, mapStates, 1000, true), dashboard.Options{})
	index := publishTo(t, t.TempDir(), p)
	for _, shot := range []struct {
		name          string
		width, height int
	}{
		{"dashboard.png", 1280, 2400},
		{"dashboard-390x844.png", 390, 844},
		{"dashboard-390-full.png", 390, 5200},
	} {
		path := filepath.Join(artifactDir(t), shot.name)
		os.Remove(path) //nolint:errcheck
		runChromium(t, fileURL(index, ""), "--screenshot="+path, fmt.Sprintf("--window-size=%d,%d", shot.width, shot.height))
		f, err := os.Open(path)
		if err != nil {
			t.Fatalf("no screenshot: %v", err)
		}
		cfg, err := png.DecodeConfig(f)
		f.Close()
		if err != nil || cfg.Width != shot.width || cfg.Height != shot.height {
			t.Errorf("%s: %dx%d (%v), want %dx%d", shot.name, cfg.Width, cfg.Height, err, shot.width, shot.height)
		}
		if st, _ := os.Stat(path); st.Size() < 30_000 {
			t.Errorf("%s is only %d bytes: a blank page?", shot.name, st.Size())
		}
		t.Logf("screenshot: %s", path)
	}
}
