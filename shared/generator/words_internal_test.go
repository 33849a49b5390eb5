package generator

import (
	"slices"
	"strings"
	"testing"
)

// TestWordLists checks the embedded lists the generator relies on.
func TestWordLists(t *testing.T) {
	w := words()
	if len(w.state) != 50 {
		t.Errorf("%d states, want the 50", len(w.state))
	}
	if s := slices.Clone(w.state); len(slices.Compact(slices.Sorted(slices.Values(s)))) != len(w.state) {
		t.Error("a state repeats")
	}
	for _, l := range [][]string{w.first, w.last, w.streetName, w.city, w.jobTitle, w.adjective, w.nounAbstr} {
		if len(l) < 40 {
			t.Errorf("list starting %q has only %d items", l[0], len(l))
		}
	}
	for _, l := range [][]string{w.domainDescriptor, w.domainBS, w.domainSuffix} {
		for _, s := range l {
			if s == "" || strings.ContainsAny(s, " .@") || strings.ToLower(s) != s {
				t.Errorf("%q cannot be part of a domain name", s)
			}
		}
	}
	if len(w.slogans) < 10 {
		t.Errorf("%d slogan templates", len(w.slogans))
	}
	for _, tmpl := range w.slogans {
		if !slices.ContainsFunc(tmpl, func(p templatePart) bool { return p.list != nil }) {
			t.Errorf("slogan template %v draws nothing", tmpl)
		}
	}
}

func TestParseWordsErrors(t *testing.T) {
	for _, text := range []string{
		"",
		"orphan\n== first\nA\n",
		strings.Replace(wordsFile, "== city", "== town", 1),
		strings.Replace(wordsFile, "Think {blurb}.", "Think {nosuch}.", 1),
		strings.Replace(wordsFile, "Think {blurb}.", "Think {blurb.", 1),
	} {
		if _, err := parseWords(text); err == nil {
			t.Errorf("no error for words file starting %.40q", text)
		}
	}
	if _, err := parseWords(wordsFile); err != nil {
		t.Fatal(err)
	}
}

func TestIntN(t *testing.T) {
	r := newRNG(1, "test", 0)
	var counts [7]int
	for range 70000 {
		counts[r.intN(7)]++
	}
	for k, c := range counts {
		if c < 9500 || c > 10500 {
			t.Errorf("intN(7) drew %d %d times in 70000", k, c)
		}
	}
}

func TestSloganCase(t *testing.T) {
	w := words()
	for i := range 500 {
		r := newRNG(5, "slogan", i)
		s := slogan(&r, w)
		if s == "" || s[0] < 'A' || s[0] > 'Z' {
			t.Fatalf("slogan %q", s)
		}
		for _, sentence := range strings.Split(s, ". ") {
			if sentence != "" && (sentence[0] < 'A' || sentence[0] > 'Z') && (sentence[0] < '0' || sentence[0] > '9') {
				t.Errorf("slogan %q: sentence %q not capitalised", s, sentence)
			}
		}
	}
}
