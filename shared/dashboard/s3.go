package dashboard

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// S3PutObjectAPI is the part of *s3.Client that S3Publisher uses.
type S3PutObjectAPI interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// S3Publisher writes pages to an S3 bucket, one PutObject per file (an S3
// PUT replaces an object atomically). Every object is sent with
// Cache-Control: no-cache, so browsers revalidate on each load and refresh.
//
// Static files (the echarts bundle and its license) are sent once per
// process: a warm Lambda container does not re-upload 1 MB on every render.
type S3Publisher struct {
	Client S3PutObjectAPI
	Bucket string
	// Prefix is prepended to every file name to make its key ("election/").
	Prefix string

	mu   sync.Mutex
	sent map[string][sha256.Size]byte // static files already sent, by key
}

// NewS3Publisher returns a publisher for bucket using the default AWS
// configuration chain (environment, shared config, the Lambda role).
// optFns adjust the S3 client (for example BaseEndpoint and UsePathStyle for
// an S3-compatible store).
func NewS3Publisher(ctx context.Context, bucket, prefix string, optFns ...func(*s3.Options)) (*S3Publisher, error) {
	if bucket == "" {
		return nil, errors.New("dashboard S3 publisher: no bucket")
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("dashboard S3 publisher: load AWS configuration: %w", err)
	}
	return &S3Publisher{Client: s3.NewFromConfig(cfg, optFns...), Bucket: bucket, Prefix: prefix}, nil
}

// Key is the object key of the page file called name.
func (p *S3Publisher) Key(name string) string { return p.Prefix + name }

// Publish uploads the page's files in order.
func (p *S3Publisher) Publish(ctx context.Context, pg Page) error {
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
		_, err := p.Client.PutObject(ctx, &s3.PutObjectInput{
			Bucket:        aws.String(p.Bucket),
			Key:           aws.String(key),
			Body:          bytes.NewReader(f.Body),
			ContentLength: aws.Int64(int64(len(f.Body))),
			ContentType:   aws.String(f.ContentType),
			CacheControl:  aws.String("no-cache"),
		})
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
