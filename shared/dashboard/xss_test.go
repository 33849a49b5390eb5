package dashboard_test

import (
	"html"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/votingpipe/voting/shared/dashboard"
)

// TestHostileNamesStayText checks, without a browser, that hostile
// candidate names, parties and states cannot leave the context they are
// written in; TestBrowser* checks the same in Chromium.
func TestHostileNamesStayText(t *testing.T) {
	s := fixtureStates(6, []string{"Alaska", "Texas", "Utah"}, 20, true)
	s.States[0].Key = `<b>Bold</b> "state" & </script>`
	s.Results[0].State = s.States[0].Key // off the map, in the table
	s.Election = `Election </title><script>document.documentElement.setAttribute('data-xss','title')</script>`
	_, index, data := render(t, s, dashboard.Options{Title: `<!-- title -->`})

	hostile := append(slices.Clone(hostileNames), s.States[0].Key, s.Election, s.Candidates[0].Party)
	for _, name := range hostile {
		if !strings.ContainsAny(name, `<>&`) {
			continue // quotes alone are safe in JSON strings; see the __f__ check below
		}
		if strings.Contains(index, name) {
			t.Errorf("index.html contains %q unescaped", name)
		}
		if strings.Contains(data, name) {
			t.Errorf("data.js contains %q unescaped", name)
		}
	}
	// The HTML shows the names as text: html/template escaped them.
	if !strings.Contains(index, `<td>`+html.EscapeString(xssName)+`</td>`) {
		t.Errorf("the candidate table does not show %q as text", xssName)
	}
	// Only our own four script elements exist (echarts, the map, the page
	// script, its start call), and each closes once.
	if n := strings.Count(strings.ToLower(index), "<script"); n != 4 {
		t.Errorf("index.html has %d <script openings, want 4", n)
	}
	if n := strings.Count(strings.ToLower(index), "</script"); n != 4 {
		t.Errorf("index.html has %d </script sequences, want 4", n)
	}
	// Inside scripts, nothing can end the element or open a comment.
	for _, m := range regexp.MustCompile(`(?s)<script>(.*?)</script>`).FindAllStringSubmatch(index, -1) {
		if strings.Contains(m[1], "<!--") || strings.Contains(m[1], "</") {
			t.Errorf("a script element contains <!-- or </: %.120q", m[1])
		}
	}
	if strings.Contains(data, "</") || strings.Contains(data, "<!--") {
		t.Error("data.js contains </ or <!--")
	}
	// go-echarts' "__f__" function markers were not interpreted: the name
	// is still a JSON string wherever it occurs.
	if strings.Contains(data, `:(function(){`) || strings.Contains(index, `:(function(){`) {
		t.Error("a __f__-wrapped name became code")
	}

	// The data round-trips: the page script and the charts get the exact
	// names to show as text (labels, legends and tooltips).
	d := decodeData(t, data)
	var gotNames []string
	for _, c := range d.Candidates {
		gotNames = append(gotNames, c["name"])
	}
	for _, name := range hostileNames {
		if !slices.Contains(gotNames, name) {
			t.Errorf("candidate %q did not round-trip; got %q", name, gotNames)
		}
	}
	for _, c := range d.Charts {
		if c.ID != dashboard.ChartVotesBar {
			continue
		}
		var axis []string
		for _, v := range c.Option["xAxis"].([]any)[0].(map[string]any)["data"].([]any) {
			axis = append(axis, v.(string))
		}
		for _, name := range hostileNames {
			if !slices.Contains(axis, name) {
				t.Errorf("bar chart label %q did not round-trip; got %q", name, axis)
			}
		}
	}
	if d.Text["election"] != s.Election || d.States[0].K != s.States[0].Key {
		t.Errorf("election %q / state %q did not round-trip", d.Text["election"], d.States[0].K)
	}
	// The map's tooltips and the table's leaders carry the names as data;
	// the page writes them as text (TestBrowser* checks it does).
	names, items := mapItems(t, d)
	if !slices.Equal(names, []string{"Texas", "Utah"}) {
		t.Fatalf("map states %v, want Texas and Utah", names)
	}
	var tipNames []string
	for _, r := range items["Texas"]["tip"].(map[string]any)["rows"].([]any) {
		tipNames = append(tipNames, r.(map[string]any)["n"].(string))
	}
	for _, name := range hostileNames {
		if !slices.Contains(tipNames, name) {
			t.Errorf("map tooltip name %q did not round-trip; got %q", name, tipNames)
		}
	}
	if !slices.Contains(hostileNames, d.States[0].L) {
		t.Errorf("the hostile state's leader %q is not a candidate's name", d.States[0].L)
	}
}

func TestScriptSafeJSONNeverCarriesMarkup(t *testing.T) {
	// Whatever a name holds, the encoded data has no raw <, > or &.
	for _, name := range []string{"<", ">", "&", "</script", "<!--", "]]>", "\u2028\u2029", `"`, `\`, "'"} {
		s := fixture(1, 1, 1, false)
		s.Candidates[0].Name = name
		_, _, data := render(t, s, dashboard.Options{})
		body := data[strings.Index(data, "("):]
		if strings.ContainsAny(body, "<>&\u2028\u2029") {
			t.Errorf("name %q: data.js body carries a raw markup character", name)
		}
		if decodeData(t, data).Candidates[0]["name"] != name {
			t.Errorf("name %q did not round-trip", name)
		}
	}
}
