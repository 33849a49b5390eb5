package s3tokens_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/votingpipe/voting/shared/s3put"
	"github.com/votingpipe/voting/shared/tokens"
	"github.com/votingpipe/voting/shared/tokens/s3tokens"
)

// Each chunk's tokens are one signed, KMS-encrypted CSV object under the
// election's prefix; writing a chunk again replaces its object.
func TestS3SinkWritesAnObjectPerChunk(t *testing.T) {
	var mu sync.Mutex
	objects := map[string]string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPut || r.Header.Get("X-Amz-Server-Side-Encryption") != "aws:kms" ||
			!strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") || r.Header.Get("Content-Type") != "text/csv" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		mu.Lock()
		objects[r.URL.Path] = string(body)
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	client := &s3put.S3{Region: "eu-west-1", Endpoint: srv.URL, Client: srv.Client(),
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")}
	sink := s3tokens.S3{Client: client, Bucket: "tokens-bucket", Prefix: "tokens/"}
	ctx := context.Background()
	if err := sink.Resume(ctx, "e1", 0); err != nil {
		t.Fatal(err)
	}
	rows := []tokens.Issued{{VoterID: "v1", Token: tokens.New()}, {VoterID: "v2", Token: tokens.New()}}
	for _, from := range []int64{0, 2, 2} {
		if err := sink.Write(ctx, "e1", from, rows); err != nil {
			t.Fatal(err)
		}
	}
	if len(objects) != 2 {
		t.Fatalf("objects %v, want 2", objects)
	}
	got := objects["/tokens-bucket/tokens/e1/000000000002.csv"]
	if got != tokens.Header+"\nv1,"+rows[0].Token+"\nv2,"+rows[1].Token+"\n" {
		t.Fatalf("object holds %q", got)
	}
	if loc := sink.Location("e1"); loc != "s3://tokens-bucket/tokens/e1/" {
		t.Errorf("location %q", loc)
	}
}
