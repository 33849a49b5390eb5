// Package avatar is the generated pictures of voters and candidates: a disc
// of one colour with the person's initials. A record carries only a short
// reference to its picture,
//
//	avatars/AL-1f77b4.svg
//
// (the initials, percent-encoded when they are not ASCII, and the disc's
// colour), rather than the picture itself: the reference fully determines
// the SVG, so whoever shows the picture renders it from the reference, as
// SVG (SVG, Handler, the cast API's GET /avatars/{name}) or as an inline
// data: URL (DataURL, the dashboard's self-contained page). The SVG scales
// to any size through its viewBox, so the size is not part of the reference.
package avatar

import (
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Prefix starts every reference: the path of the pictures, relative to the
// API that serves them.
const Prefix = "avatars/"

// suffix ends every reference.
const suffix = ".svg"

// maxInitials is the most initials a reference carries.
const maxInitials = 2

// defaultColor is the disc's colour when Ref is given no valid one.
const defaultColor = "888888"

// Ref returns the reference of the picture of name on a disc of color
// ("#rrggbb" or "rrggbb", either case; anything else gives grey). The
// initials are the first letter or digit of each of the first two words of
// name that have one, upper-cased; a name without any gives a disc with no
// initials.
func Ref(name, color string) string { return string(AppendRef(nil, name, color)) }

// AppendRef appends Ref(name, color) to b, allocating nothing more.
func AppendRef(b []byte, name, color string) []byte {
	b = append(b, Prefix...)
	n, inWord, done := 0, false, false // initials so far; in a word; its initial is taken
	for _, r := range name {
		if unicode.IsSpace(r) {
			inWord, done = false, false
			continue
		}
		if !inWord {
			inWord = true
			if n == maxInitials {
				break
			}
		}
		if done || !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			continue
		}
		done = true
		if u := unicode.ToUpper(r); validInitial(u) {
			b = appendEscaped(b, u)
			n++
		}
	}
	b = append(b, '-')
	c := strings.TrimPrefix(color, "#")
	if !isHex6(c) {
		c = defaultColor
	}
	for i := 0; i < len(c); i++ {
		b = append(b, c[i]|0x20) // lower-case: digits already have the bit
	}
	return append(b, suffix...)
}

// appendEscaped appends an initial as url.PathEscape does: ASCII as it is,
// every byte of anything else as %XX.
func appendEscaped(b []byte, r rune) []byte {
	if r < utf8.RuneSelf {
		return append(b, byte(r))
	}
	var u [utf8.UTFMax]byte
	const hex = "0123456789ABCDEF"
	for _, c := range u[:utf8.EncodeRune(u[:], r)] {
		b = append(b, '%', hex[c>>4], hex[c&0x0f])
	}
	return b
}

// Parse returns the initials and the colour ("#rrggbb", lower-case) of a
// reference as Ref makes them. It also takes the reference with its
// initials percent-decoded (as a server may hand over a path), and nothing
// else: no other characters, escapes, case or length, so a reference that
// parses is safe to put in a path, a file name or an SVG.
func Parse(ref string) (initials, color string, ok bool) {
	rest, ok := strings.CutPrefix(ref, Prefix)
	if !ok {
		return "", "", false
	}
	rest, ok = strings.CutSuffix(rest, suffix)
	if !ok {
		return "", "", false
	}
	enc, c, ok := strings.Cut(rest, "-")
	if !ok || !isHex6(c) || strings.ToLower(c) != c {
		return "", "", false
	}
	ini, err := url.PathUnescape(enc)
	if err != nil || (ini != enc && url.PathEscape(ini) != enc) || !utf8.ValidString(ini) {
		return "", "", false
	}
	if utf8.RuneCountInString(ini) > maxInitials {
		return "", "", false
	}
	for _, r := range ini {
		if !validInitial(r) {
			return "", "", false
		}
	}
	return ini, "#" + c, true
}

// validInitial is whether r may be an initial: an upper-case (or caseless)
// letter or a digit. Marks, spaces, punctuation, symbols, format and control
// characters are not.
func validInitial(r rune) bool {
	return (unicode.IsLetter(r) || unicode.IsDigit(r)) && unicode.ToUpper(r) == r
}

func isHex6(s string) bool {
	if len(s) != 6 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// SVG returns the picture of ref: the initials in white on a disc of the
// colour, 64 by 64 and scalable. ok is false when ref does not parse.
func SVG(ref string) ([]byte, bool) {
	s, ok := svg(ref)
	return []byte(s), ok
}

func svg(ref string) (string, bool) {
	ini, color, ok := Parse(ref)
	if !ok {
		return "", false
	}
	// Parse admits only letters and digits, which need no XML escaping.
	return `<svg xmlns='http://www.w3.org/2000/svg' width='64' height='64' viewBox='0 0 64 64'>` +
		`<circle cx='32' cy='32' r='32' fill='` + color + `'/>` +
		`<text x='32' y='41' font-family='sans-serif' font-size='24' fill='#fff' text-anchor='middle'>` + ini +
		`</text></svg>`, true
}

// DataURL returns the picture of ref as an inline data: URL, for a page that
// must show it without fetching anything. ok is false when ref does not
// parse.
func DataURL(ref string) (string, bool) {
	s, ok := svg(ref)
	if !ok {
		return "", false
	}
	// Minimal percent-encoding keeps the URL short: only the characters that
	// are unsafe in a data URL inside HTML attributes and CSS are escaped.
	return "data:image/svg+xml," + dataURLEscaper.Replace(s), true
}

var dataURLEscaper = strings.NewReplacer("%", "%25", "#", "%23", "<", "%3C", ">", "%3E", `"`, "%22", "\n", "%0A")

// Headers are the response headers of a picture, whoever serves it.
func Headers() map[string]string {
	return map[string]string{"Content-Type": ContentType, "Cache-Control": CacheControl,
		"X-Content-Type-Options": "nosniff", "Content-Security-Policy": csp}
}

// csp keeps a picture opened as a document rather than an image from
// loading anything.
const csp = "default-src 'none'; style-src 'unsafe-inline'"

// CacheControl is how long a picture may be kept: for good, since its
// reference fully determines its bytes.
const CacheControl = "public, max-age=31536000, immutable"

// ContentType is the pictures' media type.
const ContentType = "image/svg+xml"

// Handler serves GET (and HEAD) /avatars/{name}: the picture of the
// reference avatars/{name}, with a long, immutable cache lifetime. Names
// that do not parse are 404, other methods 405.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, "/"+Prefix)
		if !ok {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		b, ok := SVG(Prefix + name)
		if !ok {
			http.NotFound(w, r)
			return
		}
		for k, v := range Headers() {
			w.Header().Set(k, v)
		}
		w.Write(b) //nolint:errcheck // the client went away
	})
}
