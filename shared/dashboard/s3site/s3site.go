// Package s3site publishes the dashboard to an S3 bucket (CloudFront serves
// it). Only the dashboard function links it, and with it the S3 client.
package s3site

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"

	"github.com/votingpipe/voting/shared/dashboard"
	"github.com/votingpipe/voting/shared/s3put"
)

// Object, Putter and S3 are s3put's: the site stores its files with them.
type (
	Object = s3put.Object
	Putter = s3put.Putter
	S3     = s3put.S3
)

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
