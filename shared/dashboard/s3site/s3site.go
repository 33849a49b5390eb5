// Package s3site publishes the dashboard to an S3 bucket (CloudFront serves
// it). Only the dashboard function links it, and with it the S3 client.
package s3site

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/votingpipe/voting/shared/dashboard"
)

// Object is one object to store.
type Object struct {
	Bucket, Key               string
	ContentType, CacheControl string
	Body                      []byte
}

// Putter stores objects; S3 is the real one.
type Putter interface {
	Put(ctx context.Context, o Object) error
}

// S3 stores objects with S3's PutObject: one PUT signed with Signature
// Version 4 by the AWS SDK's signer. The SDK's generated S3 client does the
// same with about 2.5 MB more in the dashboard function's binary, which
// must stay under 15 MB.
type S3 struct {
	Region      string
	Credentials aws.CredentialsProvider
	// Endpoint, when set, is a base URL addressed path-style
	// (Endpoint/bucket/key): an S3-compatible store, tests. Default:
	// https://<bucket>.s3.<region>.amazonaws.com/<key>.
	Endpoint string
	// Client makes the requests (default: a client with a 30 s timeout).
	Client *http.Client
}

// Put stores o, replacing the object atomically.
func (s *S3) Put(ctx context.Context, o Object) error {
	u := "https://" + o.Bucket + ".s3." + s.Region + ".amazonaws.com/" + escapeKey(o.Key)
	if s.Endpoint != "" {
		u = strings.TrimSuffix(s.Endpoint, "/") + "/" + o.Bucket + "/" + escapeKey(o.Key)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u, bytes.NewReader(o.Body))
	if err != nil {
		return err
	}
	sum := sha256.Sum256(o.Body)
	hash := hex.EncodeToString(sum[:])
	req.ContentLength = int64(len(o.Body))
	req.Header.Set("Content-Type", o.ContentType)
	req.Header.Set("Cache-Control", o.CacheControl)
	req.Header.Set("X-Amz-Content-Sha256", hash)
	creds, err := s.Credentials.Retrieve(ctx)
	if err != nil {
		return err
	}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hash, "s3", s.Region, time.Now()); err != nil {
		return err
	}
	client := s.Client
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}

// escapeKey escapes each segment of an object key for a URL path.
func escapeKey(key string) string {
	parts := strings.Split(key, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// Site writes pages to an S3 bucket, one PUT per file (an S3 PUT replaces
// an object atomically). Every object is sent with Cache-Control:
// no-cache, so browsers revalidate on each load and refresh.
//
// Static files (the echarts bundle and its license) are sent once per
// process: a warm Lambda container does not re-upload 1 MB on every render.
type Site struct {
	Client Putter
	Bucket string
	// Prefix is prepended to every file name to make its key ("election/").
	Prefix string

	mu   sync.Mutex
	sent map[string][sha256.Size]byte // static files already sent, by key
}

var _ dashboard.Destination = (*Site)(nil)

// New returns the site of bucket (and key prefix) written with client.
func New(client Putter, bucket, prefix string) (*Site, error) {
	if bucket == "" || client == nil {
		return nil, errors.New("dashboard S3 site: no bucket or client")
	}
	return &Site{Client: client, Bucket: bucket, Prefix: prefix}, nil
}

// Key is the object key of the page file called name.
func (p *Site) Key(name string) string { return p.Prefix + name }

// Publish uploads the page's files in order.
func (p *Site) Publish(ctx context.Context, pg dashboard.Page) error {
	if p.Client == nil || p.Bucket == "" {
		return errors.New("publish dashboard to S3: publisher has no client or bucket")
	}
	for _, f := range pg.Files {
		key := p.Key(f.Name)
		var sum [sha256.Size]byte
		if f.Static {
			sum = sha256.Sum256(f.Body)
			p.mu.Lock()
			done := p.sent[key] == sum
			p.mu.Unlock()
			if done {
				continue
			}
		}
		err := p.Client.Put(ctx, Object{Bucket: p.Bucket, Key: key, Body: f.Body, ContentType: f.ContentType, CacheControl: "no-cache"})
		if err != nil {
			return fmt.Errorf("publish dashboard: put s3://%s/%s: %w", p.Bucket, key, err)
		}
		if f.Static {
			p.mu.Lock()
			if p.sent == nil {
				p.sent = map[string][sha256.Size]byte{}
			}
			p.sent[key] = sum
			p.mu.Unlock()
		}
	}
	return nil
}
