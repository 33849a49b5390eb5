package config

import (
	"net/url"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
)

// RedactSecrets replaces the password of the connection string dsn (a URL
// or key=value pairs) wherever it appears in s, as is or in any of the
// encodings a URL gives it, so that errors and logs never carry it.
func RedactSecrets(s, dsn string) string {
	pw := passwordOf(dsn)
	if pw == "" {
		return s
	}
	for _, form := range []string{pw, url.QueryEscape(pw), url.PathEscape(pw), strings.TrimPrefix(url.UserPassword("", pw).String(), ":")} {
		s = strings.ReplaceAll(s, form, "xxxxx")
	}
	return s
}

// keywordPassword matches the password of a key=value connection string,
// quoted (with backslash escapes) or not.
var keywordPassword = regexp.MustCompile(`(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s]*)`)

// RedactedURL returns dsn with its password replaced, for log lines and
// errors. A key=value connection string keeps its form.
func RedactedURL(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return RedactSecrets(keywordPassword.ReplaceAllString(dsn, "${1}xxxxx"), dsn)
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	// The URL's own fields are replaced, not every occurrence of the
	// password's text: a password such as "postgres" must not turn the
	// scheme and the user into xxxxx.
	return u.String()
}

// urlPassword finds the password of a URL that url.Parse refuses.
var urlPassword = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@]*:([^@/]*)@`)

func passwordOf(dsn string) string {
	// What the driver itself will send: from the URL, the key=value pairs
	// (quotes and escapes undone), or PGPASSWORD.
	if c, err := pgx.ParseConfig(dsn); err == nil && c.Password != "" {
		return c.Password
	}
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok {
			return pw
		}
	}
	if m := urlPassword.FindStringSubmatch(dsn); m != nil {
		if pw, err := url.PathUnescape(m[1]); err == nil {
			return pw
		}
		return m[1]
	}
	if m := keywordPassword.FindStringSubmatch(dsn); m != nil {
		return strings.Trim(m[2], "'")
	}
	return ""
}
