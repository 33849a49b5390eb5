package avatar_test

import (
	"bytes"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/votingpipe/voting/shared/avatar"
)

func TestRef(t *testing.T) {
	for _, c := range []struct{ name, color, want string }{
		{"Anastasia Lopez", "#1f77b4", "avatars/AL-1f77b4.svg"},
		{"anastasia de la lopez", "1F77B4", "avatars/AD-1f77b4.svg"},
		{"  Cher  ", "#d62728", "avatars/C-d62728.svg"},
		{"(Bob) O'Neil", "#2ca02c", "avatars/BO-2ca02c.svg"},
		{"Élodie Ng", "#9467bd", "avatars/%C3%89N-9467bd.svg"},
		{"李 小龙", "#ff7f0e", "avatars/" + url.PathEscape("李小") + "-ff7f0e.svg"},
		{"", "#1f77b4", "avatars/-1f77b4.svg"},
		{"-- ..", "#1f77b4", "avatars/-1f77b4.svg"},
		{"Ann <b>", "red", "avatars/AB-888888.svg"},
		{"Ann\u200bBee \u202eZed", "#abc", "avatars/AZ-888888.svg"},
		{"../../etc passwd", "#000000", "avatars/EP-000000.svg"},
	} {
		got := avatar.Ref(c.name, c.color)
		if got != c.want {
			t.Errorf("Ref(%q, %q) = %q, want %q", c.name, c.color, got, c.want)
		}
		if _, _, ok := avatar.Parse(got); !ok {
			t.Errorf("Ref(%q, %q) = %q does not parse", c.name, c.color, got)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for _, c := range []struct{ name, initials string }{
		{"Ada Lovelace", "AL"}, {"ada", "A"}, {"Ünal Çelik", "ÜÇ"}, {"3M Corp", "3C"}, {"", ""},
	} {
		ref := avatar.Ref(c.name, "#17BECF")
		ini, color, ok := avatar.Parse(ref)
		if !ok || ini != c.initials || color != "#17becf" {
			t.Errorf("Parse(Ref(%q)) = %q, %q, %v; want %q, #17becf", c.name, ini, color, ok, c.initials)
		}
		// A server may hand over the path decoded.
		dec, _ := url.PathUnescape(ref)
		if ini2, _, ok := avatar.Parse(dec); !ok || ini2 != ini {
			t.Errorf("Parse(%q) = %q, %v", dec, ini2, ok)
		}
	}
}

func TestParseRejects(t *testing.T) {
	for _, ref := range []string{
		"", "avatars/", "avatars/AL-1f77b4", "AL-1f77b4.svg", "/avatars/AL-1f77b4.svg", "avatars/AL-1f77b4.svg/",
		"avatars/AL-1f77b4.svg.svg", "avatars/AL-1f77b4.png", "avatars/AL.svg", "avatars/AL_1f77b4.svg",
		"avatars/AL--1f77b4.svg", "avatars/A-L-1f77b4.svg",
		// colours
		"avatars/AL-1F77B4.svg", "avatars/AL-1f77b.svg", "avatars/AL-1f77b4a.svg", "avatars/AL-gggggg.svg",
		"avatars/AL-%231f77b4.svg", "avatars/AL-#1f77b4.svg", "avatars/AL-red.svg", "avatars/AL-.svg",
		// initials
		"avatars/al-1f77b4.svg", "avatars/ALX-1f77b4.svg", "avatars/A L-1f77b4.svg", "avatars/A%20L-1f77b4.svg",
		"avatars/A<-1f77b4.svg", "avatars/A%3C-1f77b4.svg", "avatars/A&-1f77b4.svg", "avatars/A'-1f77b4.svg",
		"avatars/%41L-1f77b4.svg", "avatars/%c3%89L-1f77b4.svg", "avatars/%C3-1f77b4.svg", "avatars/%ZZ-1f77b4.svg",
		"avatars/%2541-1f77b4.svg", "avatars/\xc3-1f77b4.svg", "avatars/\x00-1f77b4.svg",
		"avatars/A\u0301-1f77b4.svg", "avatars/A\u200b-1f77b4.svg", "avatars/\u202eA-1f77b4.svg", "avatars/é-1f77b4.svg",
		// traversal
		"avatars/..-1f77b4.svg", "avatars/../AL-1f77b4.svg", "avatars/%2E%2E%2FAL-1f77b4.svg", "avatars/A%2F-1f77b4.svg",
		"avatars/A/-1f77b4.svg", "avatars/A\\-1f77b4.svg", "avatars/AL-1f77b4.svg?x=1", "avatars/AL-1f77b4.svg#x",
	} {
		if ini, color, ok := avatar.Parse(ref); ok {
			t.Errorf("Parse(%q) = %q, %q, true; want a rejection", ref, ini, color)
		}
		if _, ok := avatar.SVG(ref); ok {
			t.Errorf("SVG(%q) rendered", ref)
		}
		if _, ok := avatar.DataURL(ref); ok {
			t.Errorf("DataURL(%q) rendered", ref)
		}
	}
}

func TestSVG(t *testing.T) {
	for _, name := range []string{"Anastasia Lopez", "Élodie Ng", "李 小龙", ""} {
		ref := avatar.Ref(name, "#1f77b4")
		b, ok := avatar.SVG(ref)
		if !ok {
			t.Fatalf("SVG(%q) failed", ref)
		}
		ini, _, _ := avatar.Parse(ref)
		var doc struct {
			XMLName xml.Name
			ViewBox string `xml:"viewBox,attr"`
			Circle  struct {
				Fill string `xml:"fill,attr"`
			} `xml:"circle"`
			Text string `xml:"text"`
		}
		if err := xml.Unmarshal(b, &doc); err != nil {
			t.Fatalf("SVG(%q) is not XML: %v\n%s", ref, err, b)
		}
		if doc.XMLName.Space != "http://www.w3.org/2000/svg" || doc.XMLName.Local != "svg" || doc.ViewBox != "0 0 64 64" ||
			doc.Circle.Fill != "#1f77b4" || doc.Text != ini {
			t.Errorf("SVG(%q) = %+v\n%s", ref, doc, b)
		}
		d := xml.NewDecoder(bytes.NewReader(b))
		for {
			tok, err := d.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("SVG(%q): %v", ref, err)
			}
			if se, ok := tok.(xml.StartElement); ok && se.Name.Local != "svg" && se.Name.Local != "circle" && se.Name.Local != "text" {
				t.Errorf("SVG(%q) has a <%s>", ref, se.Name.Local)
			}
		}
	}
}

func TestDataURL(t *testing.T) {
	u, ok := avatar.DataURL("avatars/AL-1f77b4.svg")
	want := "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='64' height='64' viewBox='0 0 64 64'%3E" +
		"%3Ccircle cx='32' cy='32' r='32' fill='%231f77b4'/%3E%3Ctext x='32' y='41' font-family='sans-serif' font-size='24' " +
		"fill='%23fff' text-anchor='middle'%3EAL%3C/text%3E%3C/svg%3E"
	if !ok || u != want {
		t.Fatalf("DataURL = %q, %v\nwant %q", u, ok, want)
	}
	u, _ = avatar.DataURL(avatar.Ref("Élodie Ng", "#1f77b4"))
	if strings.ContainsAny(u, "<>#\"\n") {
		t.Errorf("unsafe characters in %q", u)
	}
	svg, _ := avatar.SVG(avatar.Ref("Élodie Ng", "#1f77b4"))
	if dec, err := url.PathUnescape(strings.TrimPrefix(u, "data:image/svg+xml,")); err != nil || dec != string(svg) {
		t.Errorf("the data URL decodes to %q (%v), not the SVG %q", dec, err, svg)
	}
}

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(avatar.Handler())
	defer srv.Close()
	get := func(method, path string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	want, _ := avatar.SVG("avatars/AL-1f77b4.svg")
	resp, body := get("GET", "/avatars/AL-1f77b4.svg")
	if resp.StatusCode != 200 || body != string(want) || resp.Header.Get("Content-Type") != "image/svg+xml" ||
		!strings.Contains(resp.Header.Get("Cache-Control"), "immutable") || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("GET: %d %v %q", resp.StatusCode, resp.Header, body)
	}
	// Non-ASCII initials, as Ref encodes them.
	ref := avatar.Ref("Élodie Ng", "#1f77b4")
	want, _ = avatar.SVG(ref)
	if resp, body := get("GET", "/"+ref); resp.StatusCode != 200 || body != string(want) {
		t.Errorf("GET /%s: %d %q", ref, resp.StatusCode, body)
	}
	if resp, body := get("HEAD", "/avatars/AL-1f77b4.svg"); resp.StatusCode != 200 || body != "" {
		t.Errorf("HEAD: %d %q", resp.StatusCode, body)
	}
	for _, path := range []string{"/avatars/", "/avatars/al-1f77b4.svg", "/avatars/AL-1f77b4.svg/x", "/avatars/..%2Fx-1f77b4.svg",
		"/avatars/AL-1f77b4", "/other/AL-1f77b4.svg", "/avatars/A%3C-1f77b4.svg"} {
		if resp, _ := get("GET", path); resp.StatusCode != 404 {
			t.Errorf("GET %s: %d, want 404", path, resp.StatusCode)
		}
	}
	if resp, _ := get("POST", "/avatars/AL-1f77b4.svg"); resp.StatusCode != 405 {
		t.Errorf("POST: %d, want 405", resp.StatusCode)
	}
}

func TestAppendRefAllocates(t *testing.T) {
	b := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() { b = avatar.AppendRef(b[:0], "Élodie Ng", "#1f77b4") }); n != 0 {
		t.Errorf("AppendRef allocates %v times", n)
	}
	if string(b) != avatar.Ref("Élodie Ng", "#1f77b4") {
		t.Errorf("AppendRef = %q, Ref = %q", b, avatar.Ref("Élodie Ng", "#1f77b4"))
	}
}
