package ballotpage_test

import (
	"encoding/json"
	"html"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/votingpipe/voting/shared/ballotpage"
)

var csp = regexp.MustCompile(`http-equiv="Content-Security-Policy" content="([^"]*)"`)

// imgSrc returns the img-src sources of the page's Content-Security-Policy.
func imgSrc(t *testing.T, page []byte) []string {
	t.Helper()
	m := csp.FindSubmatch(page)
	if m == nil {
		t.Fatal("the page has no Content-Security-Policy")
	}
	for _, d := range strings.Split(html.UnescapeString(string(m[1])), ";") {
		if f := strings.Fields(d); len(f) > 0 && f[0] == "img-src" {
			return f[1:]
		}
	}
	t.Fatalf("no img-src in %s", m[1])
	return nil
}

// The page shows the candidates' pictures from the API it casts through
// (avatar references, GET /avatars/…), inline ones and https ones; the
// policy lets it load images from exactly those.
func TestThePolicyAllowsThePictures(t *testing.T) {
	for api, want := range map[string][]string{
		"":                                 {"data:", "https:", "'self'"},
		"https://abc.execute-api.example/": {"data:", "https:", "https://abc.execute-api.example"},
		"http://127.0.0.1:8089":            {"data:", "https:", "http://127.0.0.1:8089"},
	} {
		page, err := ballotpage.Render(api)
		if err != nil {
			t.Fatal(err)
		}
		if got := imgSrc(t, page); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("API %q: img-src %v, want %v", api, got, want)
		}
		if !strings.Contains(string(page), "function photoURL(") {
			t.Error("the page does not resolve photo URLs")
		}
	}
}

// TestPhotoURL runs the page's photoURL (with node, when installed) on the
// photo_url values an election may have.
func TestPhotoURL(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("no node to run the page's script")
	}
	page, _ := ballotpage.Render("https://api.example/")
	src := string(page)
	i := strings.Index(src, "function photoURL(")
	j := strings.Index(src[i:], "\n  }\n")
	if i < 0 || j < 0 {
		t.Fatal("no photoURL function in the page")
	}
	cases := map[string]string{
		"avatars/AL-1f77b4.svg":          "https://api.example/avatars/AL-1f77b4.svg",
		"/avatars/%C3%89N-1f77b4.svg":    "https://api.example/avatars/%C3%89N-1f77b4.svg",
		"data:image/png;base64,iVBORw0K": "data:image/png;base64,iVBORw0K",
		"https://example.org/p.png":      "https://example.org/p.png",
		"avatars/../ballots-1f77b4.svg":  "",
		"//evil.example/p.png":           "",
		"javascript:alert(1)":            "",
		"data:text/html,<b>":             "",
		"":                               "",
	}
	in, _ := json.Marshal(cases)
	script := `var api = "https://api.example/";` + src[i:i+j+4] +
		`var cases = ` + string(in) + `; var out = {}; for (var k in cases) { out[k] = photoURL(k); } console.log(JSON.stringify(out));`
	b, err := exec.Command(node, "-e", script).Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	var got map[string]string
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	for k, want := range cases {
		if got[k] != want {
			t.Errorf("photoURL(%q) = %q, want %q", k, got[k], want)
		}
	}
}
