package config_test

import (
	"strings"
	"testing"

	"github.com/votingpipe/voting/shared/config"
)

// Connection strings come as URLs or as libpq key=value pairs; the
// password must be hidden in both, however it is quoted or encoded.
func TestRedactionOfEveryDSNForm(t *testing.T) {
	tests := []struct{ name, dsn, secret string }{
		{"url", "postgres://u:s3cretPW@db:5432/v", "s3cretPW"},
		{"url with escapes", "postgres://u:s3cr%2Ft%20PW%40x@db/v", "s3cr/t PW@x"},
		{"url query password", "postgres://u@db/v?password=s3cretQ&sslmode=require", "s3cretQ"},
		{"keyword", "host=db user=u password=s3cretKW dbname=v", "s3cretKW"},
		{"keyword quoted with spaces", "host=db user=u password='s3cret with spaces' dbname=v", "s3cret with spaces"},
		{"keyword escaped quote", `host=db password='it\'s s3cret' dbname=v`, `it's s3cret`},
		{"keyword spaced equals", "host=db password = s3cretEQ dbname=v", "s3cretEQ"},
		{"malformed url", "postgres://u:s3cretBAD@[::1:5432/db", "s3cretBAD"},
		{"nats url", "nats://u:s3cretNATS@127.0.0.1:4222", "s3cretNATS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			red := config.RedactedURL(tt.dsn)
			for _, part := range append(strings.Fields(tt.secret), tt.secret) {
				if len(part) >= 4 && strings.Contains(red, part) {
					t.Errorf("RedactedURL(%q) = %q still holds %q", tt.dsn, red, part)
				}
			}
			if !strings.Contains(red, "xxxxx") {
				t.Errorf("RedactedURL(%q) = %q shows no redaction", tt.dsn, red)
			}
			msg := config.RedactSecrets("server said: wrong password "+tt.secret+" for "+tt.dsn, tt.dsn)
			if strings.Contains(msg, tt.secret) {
				t.Errorf("RedactSecrets left the password in %q", msg)
			}
		})
	}
	if got := config.RedactedURL("host=db user=u dbname=v"); got != "host=db user=u dbname=v" {
		t.Errorf("a DSN without password changed: %q", got)
	}
}

func TestRedactedURLKeepsWhatIsNotThePassword(t *testing.T) {
	// The default DATABASE_URL's password is also its user and scheme.
	got := config.RedactedURL("postgres://postgres:postgres@127.0.0.1:5432/voting?sslmode=disable&password=postgres")
	if want := "postgres://postgres:xxxxx@127.0.0.1:5432/voting?password=xxxxx&sslmode=disable"; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}
