// Package s3tokens hands voters' ballot tokens out to a private S3 bucket,
// as the deployed register function does.
package s3tokens

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"

	"github.com/votingpipe/voting/shared/s3put"
	"github.com/votingpipe/voting/shared/tokens"
)

// S3 is a tokens.Sink writing the tokens of each chunk of the roll as one private,
// KMS-encrypted CSV object, Prefix<election>/<from>.csv (from zero-padded,
// so the objects list in roll order). A chunk copied again after a crash
// is written again under the same key, replacing the tokens issued before.
type S3 struct {
	Client s3put.Putter
	Bucket string
	Prefix string
}

// Location is the S3 URL of the election's tokens.
func (s S3) Location(election string) string {
	return "s3://" + s.Bucket + "/" + s.Prefix + election + "/"
}

// Resume does nothing: the chunks register copies again replace their
// objects.
func (s S3) Resume(context.Context, string, int64) error { return nil }

// Write stores voters[from:from+len(rows)]'s tokens as one object.
func (s S3) Write(ctx context.Context, election string, from int64, rows []tokens.Issued) error {
	var b bytes.Buffer
	b.WriteString(tokens.Header + "\n")
	w := csv.NewWriter(&b)
	for _, r := range rows {
		w.Write([]string{r.VoterID, r.Token}) //nolint:errcheck // reported by Error
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	key := fmt.Sprintf("%s%s/%012d.csv", s.Prefix, election, from)
	if err := s.Client.Put(ctx, s3put.Object{Bucket: s.Bucket, Key: key, Body: b.Bytes(),
		ContentType: "text/csv", CacheControl: "no-store", Encrypt: true}); err != nil {
		return fmt.Errorf("tokens: put s3://%s/%s: %w", s.Bucket, key, err)
	}
	return nil
}
