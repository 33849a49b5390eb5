// Command mkwords writes words.txt, the word lists package generator embeds,
// from the data of github.com/brianvoe/gofakeit/v7.
//
// The generator used to call gofakeit at run time, which links every word
// list gofakeit has (about 4.5 MB) into each binary that generates voters.
// Only this program imports gofakeit now; it copies the few lists the
// generator draws from, verbatim and in gofakeit's order, into one small
// text file that the generator embeds.
//
// Run it from the generator package with
//
//	go generate ./shared/generator
//
// which runs `go run ./internal/mkwords` there. Flags:
//
//	-o file   where to write (default words.txt in the current directory)
//	-check    write nothing; exit 1 if the file differs from what would be written
//
// The output depends only on the gofakeit version in go.mod: running it
// twice gives the same bytes.
//
// The file's format: lines starting with "//" are comments (the header), a
// line "== name ..." starts the section name (the rest of the line says where
// it comes from), and every other line is one item of the current section.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"runtime/debug"
	"strings"

	"github.com/brianvoe/gofakeit/v7/data"
)

// gofakeitModule is the module the lists come from.
const gofakeitModule = "github.com/brianvoe/gofakeit/v7"

// A section is one list of words.txt: the gofakeit list data.Data[group][key],
// written under name.
type section struct {
	name, group, key string
}

// sections are the lists the generator uses, in the order they are written.
// The names of the slogan parts are the tokens of gofakeit's slogan
// templates ("{blurb}" draws from the section blurb), so the generator fills
// a template without a table of its own.
var sections = []section{
	// Voters and candidates.
	{"first", "person", "first"},
	{"last", "person", "last"},
	{"phone", "person", "phone"}, // formats: '#' is a digit
	// Addresses.
	{"street_number", "address", "number"}, // formats
	{"street_prefix", "address", "street_prefix"},
	{"street_name", "address", "street_name"},
	{"street_suffix", "address", "street_suffix"},
	{"city", "address", "city"},
	{"state", "address", "state"},
	{"zip", "address", "zip"}, // formats
	// E-mail domains: lower-cased descriptor and bs, a dot, a suffix.
	{"job_descriptor", "job", "descriptor"},
	{"company_bs", "company", "bs"},
	{"domain_suffix", "internet", "domain_suffix"},
	// Candidates: biography, party names and slogans.
	{"job_title", "job", "title"},
	{"adjective_descriptive", "word", "adjective_descriptive"},
	{"noun_abstract", "word", "noun_abstract"},
	{"slogan", "company", "slogan"}, // templates of {tokens} below
	{"blurb", "company", "blurb"},
	{"buzzword", "company", "buzzwords"},
	{"productbenefit", "product", "benefit"},
	{"productfeature", "product", "feature"},
	{"productcategory", "product", "category"},
	{"productusecase", "product", "use_case"},
	{"productmaterial", "product", "material"},
	{"safecolor", "color", "safe"},
}

// sloganTokens are the {tokens} slogan templates may use: gofakeit's lookup
// functions of those names each draw one item of the gofakeit list written as
// the section of the same name.
var sloganTokens = map[string]bool{
	"blurb": true, "buzzword": true, "productbenefit": true, "productfeature": true,
	"productcategory": true, "productusecase": true, "productmaterial": true, "safecolor": true,
}

var tokenRE = regexp.MustCompile(`\{([^{}]*)\}`)

func main() {
	out := flag.String("o", "words.txt", "file to write")
	check := flag.Bool("check", false, "only check that the file is up to date")
	flag.Parse()
	b, err := Generate()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkwords:", err)
		os.Exit(1)
	}
	if *check {
		old, err := os.ReadFile(*out)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mkwords:", err)
			os.Exit(1)
		}
		if !bytes.Equal(old, b) {
			fmt.Fprintf(os.Stderr, "mkwords: %s is out of date (%d bytes, want %d): run go generate ./shared/generator\n", *out, len(old), len(b))
			os.Exit(1)
		}
		return
	}
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "mkwords:", err)
		os.Exit(1)
	}
}

// Generate returns the contents of words.txt. It fails if gofakeit's data no
// longer fits the format or the generator: a missing or empty list, an item
// that is empty, spans lines or could be read as a header line, or a slogan
// template with a token the generator does not know.
func Generate() ([]byte, error) {
	version, err := gofakeitVersion()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "// Word lists of package generator, copied verbatim from %s %s\n", gofakeitModule, version)
	b.WriteString("// (package data) by `go generate ./shared/generator`, which runs\n")
	b.WriteString("// `go run ./internal/mkwords` there. DO NOT EDIT.\n")
	b.WriteString("// Format: \"== name (source)\" starts a section; every other line is one item.\n")
	b.WriteString("// In phone, street_number and zip, '#' stands for a random digit; slogan\n")
	b.WriteString("// items are templates whose {tokens} name the sections they draw from.\n")
	for _, s := range sections {
		list, ok := data.Data[s.group][s.key]
		if !ok || len(list) == 0 {
			return nil, fmt.Errorf("gofakeit has no list %s.%s", s.group, s.key)
		}
		fmt.Fprintf(&b, "== %s (data.Data[%q][%q])\n", s.name, s.group, s.key)
		for _, item := range list {
			if err := checkItem(s, item); err != nil {
				return nil, err
			}
			b.WriteString(item)
			b.WriteByte('\n')
		}
	}
	return b.Bytes(), nil
}

func checkItem(s section, item string) error {
	switch {
	case strings.TrimSpace(item) == "":
		return fmt.Errorf("%s.%s has an empty item", s.group, s.key)
	case strings.ContainsAny(item, "\r\n"):
		return fmt.Errorf("%s.%s item %q spans lines", s.group, s.key, item)
	case strings.HasPrefix(item, "//") || strings.HasPrefix(item, "=="):
		return fmt.Errorf("%s.%s item %q reads as a header line", s.group, s.key, item)
	}
	if s.name != "slogan" {
		return nil
	}
	if strings.ContainsAny(item, "#?") {
		// gofakeit would turn these into digits and letters.
		return fmt.Errorf("slogan template %q has '#' or '?'", item)
	}
	for _, m := range tokenRE.FindAllStringSubmatch(item, -1) {
		if !sloganTokens[m[1]] {
			return fmt.Errorf("slogan template %q uses {%s}, which the generator does not know", item, m[1])
		}
	}
	if rest := tokenRE.ReplaceAllString(item, ""); strings.ContainsAny(rest, "{}") {
		return fmt.Errorf("slogan template %q has unbalanced braces", item)
	}
	return nil
}

// gofakeitVersion is the version of gofakeit this program is built with, as
// go.mod selects it.
func gofakeitVersion() (string, error) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "", errors.New("no build information: cannot tell the gofakeit version")
	}
	for _, d := range bi.Deps {
		if d.Path != gofakeitModule {
			continue
		}
		if d.Replace != nil {
			return d.Version + " (replaced by " + strings.TrimSpace(d.Replace.Path+" "+d.Replace.Version) + ")", nil
		}
		return d.Version, nil
	}
	return "", errors.New("gofakeit is not in the build information")
}
