package dashboard_test

import (
	"context"
	"encoding/json"
	"html"
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
	if err := (dashboard.DirPublisher{Dir: dir}).Publish(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, dashboard.IndexFile)
}

type selftest struct {
	Charts []struct {
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
		Chart string
		Index int
		Text  string
	}
	Errors []string
}

var selftestPre = regexp.MustCompile(`(?s)<pre id="selftest"[^>]*data-done="1"[^>]*>(.*?)</pre>`)

// TestBrowserDrawsChartsPagesSortsAndKeepsNamesAsText loads the page from
// file:// with hostile candidate names and lets its self-test drive it.
func TestBrowserDrawsChartsPagesSortsAndKeepsNamesAsText(t *testing.T) {
	snap := fixture(5, 52, 1000, true)
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
	older := fixture(4, 52, 100, false)
	newer := fixture(4, 52, 400, false)
	newer.Rejected = map[string]int64{"malformed": 9}
	pOld, _, _ := render(t, older, dashboard.Options{RefreshSeconds: 1})
	pNew, _, _ := render(t, newer, dashboard.Options{RefreshSeconds: 1})
	index := publishTo(t, dir, pOld)
	d, _ := pNew.File(dashboard.DataFile)
	if err := os.WriteFile(filepath.Join(dir, dashboard.DataFile), d.Body, 0o644); err != nil {
		t.Fatal(err)
	}
	dom := runChromium(t, fileURL(index, "sort=t&dir=desc&page=2&size=10"), "--dump-dom")

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
	cells := regexp.MustCompile(`<tr><td>(State \d+)</td>`).FindAllStringSubmatch(body, -1)
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
}

// TestBrowserScreenshot keeps a picture of the page for people to look at
// (testdata/artifacts/dashboard/, not committed).
func TestBrowserScreenshot(t *testing.T) {
	p, _, _ := render(t, fixture(5, 52, 1000, true), dashboard.Options{})
	index := publishTo(t, t.TempDir(), p)
	shot := filepath.Join(artifactDir(t), "dashboard.png")
	os.Remove(shot) //nolint:errcheck
	runChromium(t, fileURL(index, ""), "--screenshot="+shot)
	st, err := os.Stat(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	if st.Size() < 50_000 {
		t.Errorf("screenshot is only %d bytes: a blank page?", st.Size())
	}
	t.Logf("screenshot: %s", shot)
}
