// Package ballotpage is the ballot page: a small, self-contained,
// mobile-friendly page where a voter enters (or scans into the address, as
// ?token=) their ballot token, chooses a candidate and casts the ballot
// through the cast API, then sees the receipt. It loads nothing but the
// API: no CDN, no fonts. The cast function serves it at GET /; the
// dashboard publishes it as ballot.html beside itself, pointed at the API.
package ballotpage

import (
	_ "embed"
	"encoding/json"
	"html"
	"net/url"
	"strings"
)

// source has two placeholders: {{.API}}, the API's origin in the page's
// Content-Security-Policy, and {{.APIJS}}, the API's base URL as a
// JavaScript string. (Plain replacement rather than html/template: the
// template package's reflection would keep every method of every type in
// the cast function's binary, 4 MB more.)
//
//go:embed ballot.html
var source string

// Render returns the page for the cast API at api: "" for the origin the
// page is served from (the cast function's own GET /), or the API's base
// URL (https://…/) when the page is published elsewhere.
func Render(api string) ([]byte, error) {
	base, csp := "/", "'self'"
	if api != "" {
		u, err := url.Parse(api)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, &url.Error{Op: "ballot page API", URL: api, Err: err}
		}
		base = strings.TrimSuffix(u.String(), "/") + "/"
		csp = u.Scheme + "://" + u.Host
	}
	js, _ := json.Marshal(base) // escapes <, > and &: safe inside <script>
	r := strings.NewReplacer("{{.API}}", html.EscapeString(csp), "{{.APIJS}}", string(js))
	return []byte(r.Replace(source)), nil
}
