package generator

import (
	_ "embed"
	"fmt"
	"strings"
	"sync"
)

//go:generate go run ./internal/mkwords

// wordsFile holds the word lists, copied from gofakeit by internal/mkwords.
//
//go:embed words.txt
var wordsFile string

// wordLists are the sections of words.txt, ready to draw from. Items are
// substrings of wordsFile, so loading copies no text.
type wordLists struct {
	first, last []string
	phone       []string // formats, '#' is a digit

	streetNumber []string // formats
	streetPrefix []string
	streetName   []string
	streetSuffix []string
	city, state  []string
	zip          []string // formats

	// domainDescriptor and domainBS are the job descriptors and company bs
	// lower-cased without spaces: a domain name is one of each, a dot and
	// a domain suffix, as gofakeit's DomainName makes them.
	domainDescriptor, domainBS []string
	domainSuffix               []string

	jobTitle  []string // lower case, as the biography uses them
	adjective []string // descriptive adjectives, for party names
	nounAbstr []string // abstract nouns, for party names
	slogans   []template
}

// A template is a parsed slogan template: literal text and draws from lists.
type template []templatePart

// A templatePart is literal text, or (when list is set) one item of list.
type templatePart struct {
	lit  string
	list []string
}

// words returns the word lists, parsed on first use.
var words = sync.OnceValue(func() *wordLists {
	w, err := parseWords(wordsFile)
	if err != nil {
		panic("generator: words.txt: " + err.Error())
	}
	return w
})

// parseWords reads the sections of words.txt (see internal/mkwords for the
// format) and checks that every list the generator draws from is there and
// not empty.
func parseWords(text string) (*wordLists, error) {
	sections := map[string][]string{}
	cur := ""
	for line := range strings.Lines(text) {
		line = strings.TrimSuffix(line, "\n")
		switch {
		case strings.HasPrefix(line, "//"):
		case strings.HasPrefix(line, "== "):
			cur, _, _ = strings.Cut(line[len("== "):], " ")
			if _, dup := sections[cur]; dup {
				return nil, fmt.Errorf("section %s appears twice", cur)
			}
			sections[cur] = nil
		case cur == "":
			return nil, fmt.Errorf("item %q before the first section", line)
		default:
			sections[cur] = append(sections[cur], line)
		}
	}
	var missing []string
	get := func(name string) []string {
		l := sections[name]
		if len(l) == 0 {
			missing = append(missing, name)
		}
		return l
	}
	w := &wordLists{
		first:            get("first"),
		last:             get("last"),
		phone:            get("phone"),
		streetNumber:     get("street_number"),
		streetPrefix:     get("street_prefix"),
		streetName:       get("street_name"),
		streetSuffix:     get("street_suffix"),
		city:             get("city"),
		state:            get("state"),
		zip:              get("zip"),
		domainDescriptor: mapStrings(get("job_descriptor"), domainLabel),
		domainBS:         mapStrings(get("company_bs"), domainLabel),
		domainSuffix:     get("domain_suffix"),
		jobTitle:         mapStrings(get("job_title"), strings.ToLower),
		adjective:        get("adjective_descriptive"),
		nounAbstr:        get("noun_abstract"),
	}
	for _, s := range get("slogan") {
		t, err := parseTemplate(s, func(token string) []string {
			if token == "slogan" {
				return nil
			}
			return get(token)
		})
		if err != nil {
			return nil, err
		}
		w.slogans = append(w.slogans, t)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("missing or empty sections: %s", strings.Join(missing, ", "))
	}
	return w, nil
}

// parseTemplate splits a slogan template into literal text and {tokens},
// each token naming the list it draws from.
func parseTemplate(s string, list func(token string) []string) (template, error) {
	var t template
	for s != "" {
		open := strings.IndexByte(s, '{')
		if open < 0 {
			t = append(t, templatePart{lit: s})
			break
		}
		end := strings.IndexByte(s[open:], '}')
		if end < 0 {
			return nil, fmt.Errorf("slogan template %q: unclosed {", s)
		}
		end += open
		if open > 0 {
			t = append(t, templatePart{lit: s[:open]})
		}
		l := list(s[open+1 : end])
		if len(l) == 0 {
			return nil, fmt.Errorf("slogan template %q: unknown token %s", s, s[open:end+1])
		}
		t = append(t, templatePart{list: l})
		s = s[end+1:]
	}
	return t, nil
}

func mapStrings(in []string, f func(string) string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = f(s)
	}
	return out
}

// domainLabel is s lower-cased without spaces.
func domainLabel(s string) string {
	return strings.ReplaceAll(strings.ToLower(s), " ", "")
}
