package dashboard_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/votingpipe/voting/shared/dashboard"
)

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
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
		http.Error(w, "unsigned request", http.StatusForbidden)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if strings.Contains(r.Header.Get("Content-Encoding"), "aws-chunked") {
		body = decodeAWSChunked(body)
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

// decodeAWSChunked undoes the aws-chunked content encoding (chunks of
// "hex-size[;ext]\r\ndata\r\n", then trailers).
func decodeAWSChunked(b []byte) []byte {
	var out []byte
	for len(b) > 0 {
		line, rest, ok := bytes.Cut(b, []byte("\r\n"))
		if !ok {
			break
		}
		sizeHex, _, _ := bytes.Cut(line, []byte(";"))
		var n int
		for _, c := range sizeHex {
			n *= 16
			switch {
			case c >= '0' && c <= '9':
				n += int(c - '0')
			case c >= 'a' && c <= 'f':
				n += int(c-'a') + 10
			case c >= 'A' && c <= 'F':
				n += int(c-'A') + 10
			}
		}
		if n == 0 || n > len(rest) {
			break
		}
		out = append(out, rest[:n]...)
		b = bytes.TrimPrefix(rest[n:], []byte("\r\n"))
	}
	return out
}

func newFakeS3(t *testing.T) (*fakeS3, *s3.Client) {
	t.Helper()
	f := &fakeS3{objects: map[string]s3Object{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	client := s3.New(s3.Options{
		Region:       "eu-west-1",
		BaseEndpoint: aws.String(srv.URL),
		UsePathStyle: true,
		Credentials: aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "secret", Source: "test"}, nil
		})),
		HTTPClient: srv.Client(),
		// One attempt: failures are the point of some tests, not backoff.
		RetryMaxAttempts: 1,
	})
	return f, client
}

func TestS3PublisherPutsEachFileOnce(t *testing.T) {
	fake, client := newFakeS3(t)
	pub := &dashboard.S3Publisher{Client: client, Bucket: "results", Prefix: "election/"}
	ctx := context.Background()
	p1, _, _ := render(t, fixture(3, 4, 10, true), dashboard.Options{})
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
	p2, _, _ := render(t, fixture(3, 4, 11, true), dashboard.Options{})
	if err := pub.Publish(ctx, p2); err != nil {
		t.Fatal(err)
	}
	if strings.Join(fake.puts, " ") != "results/election/data.js results/election/index.html" {
		t.Errorf("second publish PUT %v, want data.js and index.html only", fake.puts)
	}
}

func TestS3PublisherReportsFailures(t *testing.T) {
	fake, client := newFakeS3(t)
	fake.fail = true
	pub := &dashboard.S3Publisher{Client: client, Bucket: "results"}
	p, _, _ := render(t, fixture(1, 1, 1, false), dashboard.Options{})
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
	if err := (&dashboard.S3Publisher{}).Publish(context.Background(), p); err == nil {
		t.Error("a publisher with no client succeeded")
	}
}

// TestNewS3PublisherUsesTheDefaultChain builds the client the way the
// Lambda does, from the environment, pointed at the fake endpoint.
func TestNewS3PublisherUsesTheDefaultChain(t *testing.T) {
	fake := &fakeS3{objects: map[string]s3Object{}}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	pub, err := dashboard.NewS3Publisher(context.Background(), "bucket", "", func(o *s3.Options) {
		o.BaseEndpoint = aws.String(srv.URL)
		o.UsePathStyle = true
	})
	if err != nil {
		t.Fatal(err)
	}
	p, _, _ := render(t, fixture(1, 1, 1, false), dashboard.Options{})
	if err := pub.Publish(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if len(fake.puts) != len(p.Files) {
		t.Errorf("%d PUTs, want %d", len(fake.puts), len(p.Files))
	}
	if _, err := dashboard.NewS3Publisher(context.Background(), "", ""); err == nil {
		t.Error("no bucket accepted")
	}
}
