package s3site_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/votingpipe/voting/shared/dashboard"
	"github.com/votingpipe/voting/shared/dashboard/s3site"
	"github.com/votingpipe/voting/shared/election"
)

// page renders the page of an election whose counted votes are n.
func page(t *testing.T, n int64) dashboard.Page {
	t.Helper()
	p, err := dashboard.Render(election.Snapshot{Election: "e", Registered: 10, Counted: n,
		Candidates: []election.CandidateResult{{ID: "a", Name: "A", Party: "P", Votes: n}}}, dashboard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// s3Object is what the fake S3 endpoint stored for one PUT.
type s3Object struct {
	body                      []byte
	contentType, cacheControl string
}

// fakeS3 is a minimal S3-compatible endpoint (path-style PutObject only),
// enough to run the real SDK client against.
type fakeS3 struct {
	mu      sync.Mutex
	objects map[string]s3Object // "bucket/key"
	puts    []string
	fail    bool
}

func (f *fakeS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPut {
		http.Error(w, "only PutObject", http.StatusNotImplemented)
		return
	}
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=AKIDTEST/") || !strings.Contains(auth, "/eu-west-1/s3/aws4_request") ||
		!strings.Contains(auth, "x-amz-content-sha256") {
		http.Error(w, "not signed for S3 in eu-west-1: "+auth, http.StatusForbidden)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if sum := sha256.Sum256(body); r.Header.Get("X-Amz-Content-Sha256") != hex.EncodeToString(sum[:]) {
		http.Error(w, "payload hash does not match the body", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `<?xml version="1.0"?><Error><Code>SlowDown</Code><Message>try later</Message></Error>`) //nolint:errcheck
		return
	}
	key := strings.TrimPrefix(r.URL.Path, "/")
	f.objects[key] = s3Object{body: body, contentType: r.Header.Get("Content-Type"), cacheControl: r.Header.Get("Cache-Control")}
	f.puts = append(f.puts, key)
	w.Header().Set("ETag", `"etag"`)
	w.WriteHeader(http.StatusOK)
}

func newFakeS3(t *testing.T) (*fakeS3, *s3site.S3) {
	t.Helper()
	f := &fakeS3{objects: map[string]s3Object{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, &s3site.S3{Region: "eu-west-1", Endpoint: srv.URL, Client: srv.Client(),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")}
}

func TestSitePutsEachFileOnce(t *testing.T) {
	fake, client := newFakeS3(t)
	pub := &s3site.Site{Client: client, Bucket: "results", Prefix: "election/"}
	ctx := context.Background()
	p1 := page(t, 10)
	if err := pub.Publish(ctx, p1); err != nil {
		t.Fatal(err)
	}
	want := []string{"results/election/echarts.min.js", "results/election/us-states.js", "results/election/echarts.LICENSE.txt", "results/election/data.js", "results/election/index.html"}
	if strings.Join(fake.puts, " ") != strings.Join(want, " ") {
		t.Errorf("PUTs %v, want %v (one per file, index.html last)", fake.puts, want)
	}
	for _, f := range p1.Files {
		obj := fake.objects["results/election/"+f.Name]
		if !bytes.Equal(obj.body, f.Body) {
			t.Errorf("%s: stored %d bytes, want the page's %d", f.Name, len(obj.body), len(f.Body))
		}
		if obj.contentType != f.ContentType || obj.cacheControl != "no-cache" {
			t.Errorf("%s: Content-Type %q Cache-Control %q", f.Name, obj.contentType, obj.cacheControl)
		}
	}
	if ct := fake.objects["results/election/index.html"].contentType; ct != "text/html; charset=utf-8" {
		t.Errorf("index.html Content-Type %q", ct)
	}

	// The next render sends only what changes: not the 1 MB bundle again.
	fake.puts = nil
	p2 := page(t, 11)
	if err := pub.Publish(ctx, p2); err != nil {
		t.Fatal(err)
	}
	if strings.Join(fake.puts, " ") != "results/election/data.js results/election/index.html" {
		t.Errorf("second publish PUT %v, want data.js and index.html only", fake.puts)
	}
}

func TestSiteReportsFailures(t *testing.T) {
	fake, client := newFakeS3(t)
	fake.fail = true
	pub := &s3site.Site{Client: client, Bucket: "results"}
	p := page(t, 1)
	err := pub.Publish(context.Background(), p)
	if err == nil || !strings.Contains(err.Error(), "s3://results/echarts.min.js") {
		t.Fatalf("error %v, want one naming the object", err)
	}
	// A failed static upload is retried by the next publish.
	fake.fail = false
	if err := pub.Publish(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if _, ok := fake.objects["results/echarts.min.js"]; !ok {
		t.Error("the bundle was not uploaded after the failure")
	}
	if err := (&s3site.Site{}).Publish(context.Background(), p); err == nil {
		t.Error("a publisher with no client succeeded")
	}
}

func TestNewNeedsABucketAndAClient(t *testing.T) {
	_, client := newFakeS3(t)
	if _, err := s3site.New(client, "", ""); err == nil {
		t.Error("no bucket accepted")
	}
	if _, err := s3site.New(nil, "b", ""); err == nil {
		t.Error("no client accepted")
	}
	if s, err := s3site.New(client, "b", "p/"); err != nil || s.Key("index.html") != "p/index.html" {
		t.Errorf("New: %v %v", s, err)
	}
}
