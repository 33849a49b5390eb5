package register_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/votingpipe/voting/shared/tokens"
)

// crashingSink hands tokens out, then fails the given write as a process
// killed after writing them but before copying their voters would.
type crashingSink struct {
	tokens.Sink
	writes, failAt int
}

func (c *crashingSink) Write(ctx context.Context, election string, from int64, rows []tokens.Issued) error {
	if err := c.Sink.Write(ctx, election, from, rows); err != nil {
		return err
	}
	c.writes++
	if c.writes == c.failAt {
		return errors.New("killed after handing the tokens out")
	}
	return nil
}

// Every voter gets one token, in the file, whose keyed hash (and only that)
// is in the database, also when registration dies between handing a chunk's
// tokens out and copying its voters, and resumes.
func TestRegisterIssuesEveryVoterOneToken(t *testing.T) {
	r := newRig(t)
	path := filepath.Join(t.TempDir(), "tokens.csv")
	key, _ := tokens.NewKey(bytes.Repeat([]byte{7}, 32))
	r.proc.Tokens, r.proc.TokenKey = &crashingSink{Sink: tokens.File{Path: path}, failAt: 3}, key
	if _, err := r.invoke(context.Background(), `{"voters": 3000}`); err == nil {
		t.Fatal("the run that died reported success")
	}
	r.proc.Tokens = tokens.File{Path: path}
	resp, err := r.invoke(context.Background(), `{"voters": 3000}`)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Tokens != path {
		t.Errorf("the response says the tokens are at %q, want %q", resp.Tokens, path)
	}
	issued, err := tokens.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(issued) != 3000 {
		t.Fatalf("%d tokens in the file, want 3000", len(issued))
	}
	seen := map[string]bool{}
	ctx := context.Background()
	for _, is := range issued {
		if seen[is.VoterID] {
			t.Fatalf("voter %s has two tokens", is.VoterID)
		}
		seen[is.VoterID] = true
		var stored []byte
		if err := r.db.QueryRow(ctx, `SELECT token_hash FROM ballot_tokens WHERE voter_id = $1`, is.VoterID).Scan(&stored); err != nil {
			t.Fatalf("voter %s: %v", is.VoterID, err)
		}
		if !bytes.Equal(stored, key.Hash(is.Token)) {
			t.Fatalf("voter %s: the database's hash is not the file's token's", is.VoterID)
		}
	}
	var n, clear int64
	r.db.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE position(convert_to($1, 'UTF8') in token_hash) > 0) FROM ballot_tokens`, issued[0].Token).Scan(&n, &clear) //nolint:errcheck
	if n != 3000 || clear != 0 {
		t.Fatalf("%d token hashes in the database (%d holding a token in clear), want 3000 (0)", n, clear)
	}
	var voters int64
	r.db.QueryRow(ctx, `SELECT count(*) FROM voters v JOIN ballot_tokens USING (voter_id)`).Scan(&voters) //nolint:errcheck
	if voters != 3000 {
		t.Fatalf("%d voters with a token", voters)
	}
}
