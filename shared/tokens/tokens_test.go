package tokens_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/votingpipe/voting/shared/config"
	"github.com/votingpipe/voting/shared/tokens"
)

func TestNewTokensAreRandomAndParse(t *testing.T) {
	seen := map[string]bool{}
	for range 10_000 {
		tok := tokens.New()
		if len(tok) != tokens.Len || seen[tok] {
			t.Fatalf("token %q: length %d, seen before %v", tok, len(tok), seen[tok])
		}
		seen[tok] = true
		if got, ok := tokens.Parse(" " + strings.ToLower(tok[:13]) + "-" + tok[13:] + "\n"); !ok || got != tok {
			t.Fatalf("Parse of a typed %q = %q, %v", tok, got, ok)
		}
	}
	for _, bad := range []string{"", "short", strings.Repeat("A", 25), strings.Repeat("A", 27), strings.Repeat("1", 26), strings.Repeat("A", 100)} {
		if _, ok := tokens.Parse(bad); ok {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestHashIsKeyed(t *testing.T) {
	k1, _ := tokens.NewKey(bytes.Repeat([]byte{1}, 32))
	k2, _ := tokens.NewKey(bytes.Repeat([]byte{2}, 32))
	tok := tokens.New()
	if bytes.Equal(k1.Hash(tok), k2.Hash(tok)) || !bytes.Equal(k1.Hash(tok), k1.Hash(tok)) || bytes.Contains(k1.Hash(tok), []byte(tok)) {
		t.Fatal("the hash is not a keyed function of the token")
	}
	if _, err := tokens.NewKey(make([]byte, 31)); err == nil {
		t.Fatal("a 31-byte key was accepted")
	}
	if r := k1.Receipt("v1", 2, 30); r == k1.Receipt("v1", 2, 31) || r == k2.Receipt("v1", 2, 30) || len(r) != 16 {
		t.Fatalf("receipt %q", r)
	}
	if s := k1.String(); strings.Contains(s, "\x01") {
		t.Fatalf("the key shows: %q", s)
	}
}

// The file holds exactly the tokens of the voters the database holds, also
// after a registration crashed between writing tokens and copying voters.
func TestFileSinkResumes(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tokens.csv")
	f := tokens.File{Path: path}
	rows := func(from, n int) []tokens.Issued {
		var out []tokens.Issued
		for i := from; i < from+n; i++ {
			out = append(out, tokens.Issued{VoterID: "v" + string(rune('a'+i)), Token: tokens.New()})
		}
		return out
	}
	if err := f.Resume(ctx, "e", 0); err != nil {
		t.Fatal(err)
	}
	first := rows(0, 3)
	if err := f.Write(ctx, "e", 0, first); err != nil {
		t.Fatal(err)
	}
	if err := f.Write(ctx, "e", 3, rows(3, 2)); err != nil { // then a crash before the copy
		t.Fatal(err)
	}
	if err := f.Resume(ctx, "e", 3); err != nil { // the database holds 3 voters
		t.Fatal(err)
	}
	again := rows(3, 2)
	if err := f.Write(ctx, "e", 3, again); err != nil {
		t.Fatal(err)
	}
	got, err := tokens.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := append(first, again...)
	if len(got) != 5 {
		t.Fatalf("%d tokens, want 5: %v", len(got), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d = %v, want %v", i, got[i], want[i])
		}
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	// A new election replaces the file; a resumed one whose file is short fails.
	if err := f.Resume(ctx, "e2", 0); err != nil {
		t.Fatal(err)
	}
	if got, _ := tokens.ReadFile(path); len(got) != 0 {
		t.Fatalf("a new election kept %d tokens of the last", len(got))
	}
	if err := f.Resume(ctx, "e2", 4); err == nil || !strings.Contains(err.Error(), "holds 0 tokens of the 4") {
		t.Fatalf("resume of a short file: %v", err)
	}
	os.Remove(path)
	if err := f.Resume(ctx, "e2", 4); err == nil {
		t.Fatal("resume of a missing file succeeded")
	}
}

func TestLoadKey(t *testing.T) {
	ctx := context.Background()
	hexKey := strings.Repeat("ab", 32)
	if k, err := tokens.LoadKey(ctx, config.Tokens{Key: hexKey}, nil); err != nil || len(k) != 32 {
		t.Fatalf("TOKEN_KEY: %v %d", err, len(k))
	}
	secret := func(_ context.Context, arn string) (string, error) {
		if arn != "arn:secret" {
			return "", errors.New("no such secret")
		}
		return strings.Repeat("k", 64), nil
	}
	if k, err := tokens.LoadKey(ctx, config.Tokens{KeySecretARN: "arn:secret"}, secret); err != nil || string(k) != strings.Repeat("k", 64) {
		t.Fatalf("the secret's bytes are the key: %v", err)
	}
	for _, tt := range []struct {
		c    config.Tokens
		want string
	}{
		{config.Tokens{}, "TOKEN_KEY_SECRET_ARN (or TOKEN_KEY) is required"},
		{config.Tokens{Key: "zz"}, "TOKEN_KEY: not hex"},
		{config.Tokens{Key: "abcd"}, "at least 32 bytes"},
		{config.Tokens{KeySecretARN: "arn:other"}, "no such secret"},
	} {
		if _, err := tokens.LoadKey(ctx, tt.c, secret); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %q", tt.c, err, tt.want)
		}
	}
}
