package dashboard_test

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/votingpipe/voting/shared/dashboard"
)

// The page links to the ballot page with its address and a QR code that is
// exactly the address's code, module for module; ballot.html goes beside it
// only when asked for.
func TestPageLinksToTheBallotPage(t *testing.T) {
	const url = "https://abc123.execute-api.eu-west-1.amazonaws.com/"
	snap := fixtureStates(3, usStates[:5], 10, false)
	p, _, _ := render(t, snap, dashboard.Options{})
	if idx, _ := p.File(dashboard.IndexFile); strings.Contains(string(idx.Body), `id="ballot-link"`) {
		t.Fatal("a page without a ballot URL links to a ballot page")
	}
	p, _, _ = render(t, snap, dashboard.Options{BallotURL: url})
	idx, _ := p.File(dashboard.IndexFile)
	html := string(idx.Body)
	if !strings.Contains(html, `<a href="`+url+`" rel="noopener">`+url+`</a>`) {
		t.Fatal("no link to the ballot page")
	}
	if _, ok := p.File(dashboard.BallotFile); ok {
		t.Error("ballot.html published without BallotPage")
	}
	m := regexp.MustCompile(`viewBox="0 0 (\d+) \d+".*?<path fill="#1d2433" d="([^"]+)"`).FindStringSubmatch(html)
	if m == nil {
		t.Fatal("no QR code on the page")
	}
	n, _ := strconv.Atoi(m[1])
	drawn := make([][]bool, n)
	for i := range drawn {
		drawn[i] = make([]bool, n)
	}
	for _, run := range regexp.MustCompile(`M(\d+) (\d+)h(\d+)v1h-\d+z`).FindAllStringSubmatch(m[2], -1) {
		x, _ := strconv.Atoi(run[1])
		y, _ := strconv.Atoi(run[2])
		w, _ := strconv.Atoi(run[3])
		for i := x; i < x+w; i++ {
			drawn[y][i] = true
		}
	}
	q, err := qrcode.New(url, qrcode.Medium)
	if err != nil {
		t.Fatal(err)
	}
	want := q.Bitmap()
	if len(want) != n {
		t.Fatalf("the code is %d modules wide, want %d", n, len(want))
	}
	for y := range want {
		for x := range want[y] {
			if want[y][x] != drawn[y][x] {
				t.Fatalf("module %d,%d drawn %v, want %v", x, y, drawn[y][x], want[y][x])
			}
		}
	}

	p, _, _ = render(t, snap, dashboard.Options{BallotURL: url, BallotPage: true})
	f, ok := p.File(dashboard.BallotFile)
	if !ok {
		t.Fatal("no ballot.html")
	}
	if b := string(f.Body); !strings.Contains(b, `connect-src https://abc123.execute-api.eu-west-1.amazonaws.com;`) || !strings.Contains(b, `var api = "`+url+`";`) {
		t.Errorf("ballot.html does not cast through %s", url)
	}
}
