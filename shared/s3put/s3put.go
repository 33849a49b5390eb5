// Package s3put stores objects in S3 with single PutObject requests, signed
// with Signature Version 4 by the AWS SDK's signer, without the SDK's
// generated S3 client (about 2.5 MB more in a function's binary). The
// dashboard publishes its page with it and register its voters' tokens.
package s3put

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Object is one object to store.
type Object struct {
	Bucket, Key               string
	ContentType, CacheControl string
	Body                      []byte
	// Encrypt asks S3 to encrypt the object with the bucket's KMS key
	// (x-amz-server-side-encryption: aws:kms) rather than its default.
	Encrypt bool
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
	if o.Encrypt {
		req.Header.Set("X-Amz-Server-Side-Encryption", "aws:kms")
	}
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
