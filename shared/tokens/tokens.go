// Package tokens issues and checks voters' ballot tokens. A token is 128
// random bits, written as 26 base32 characters; the database keeps only its
// keyed hash (HMAC-SHA-256 under a secret key), so a copy of the database
// does not let anyone vote, and neither the token nor the key is ever
// logged. Register hands the tokens out once, through a Sink: a CSV file in
// the harness's state directory, or objects in a private S3 bucket.
package tokens

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/votingpipe/voting/shared/config"
)

// Bits is a token's randomness.
const Bits = 128

// Len is a token's length in characters.
const Len = 26

var enc = base32.StdEncoding.WithPadding(base32.NoPadding)

// New returns a new random token.
func New() string {
	var b [Bits / 8]byte
	rand.Read(b[:]) // never fails (crypto/rand panics rather than return short)
	return enc.EncodeToString(b[:])
}

// Parse returns the canonical form of a token as a person may type or scan
// it (any case, surrounding spaces, dashes or spaces between groups), and
// whether it has a token's form. A token of the right form may still be
// unknown.
func Parse(s string) (string, bool) {
	s = strings.ToUpper(strings.TrimSpace(s))
	if len(s) > 64 {
		return "", false
	}
	s = strings.NewReplacer("-", "", " ", "").Replace(s)
	if len(s) != Len {
		return "", false
	}
	if _, err := enc.DecodeString(s); err != nil {
		return "", false
	}
	return s, true
}

// Key is the secret key of the tokens' keyed hashes.
type Key []byte

// MinKeyBytes is the shortest key accepted.
const MinKeyBytes = 32

// ErrShortKey is returned for a key shorter than MinKeyBytes.
var ErrShortKey = errors.New("the token key must be at least 32 bytes")

// NewKey checks k's length.
func NewKey(k []byte) (Key, error) {
	if len(k) < MinKeyBytes {
		return nil, ErrShortKey
	}
	return Key(k), nil
}

// Hash returns the keyed hash of a token in canonical form: what the
// database keeps and looks tokens up by.
func (k Key) Hash(token string) []byte {
	m := hmac.New(sha256.New, k)
	m.Write([]byte("ballot-token\x00"))
	m.Write([]byte(token))
	return m.Sum(nil)
}

// Receipt returns the receipt of a voter's cast ballot: a keyed digest of
// the voter and where the broker stored the vote, which only the holder of
// the key can issue or verify.
func (k Key) Receipt(voterID string, partition int32, offset int64) string {
	m := hmac.New(sha256.New, k)
	m.Write([]byte("receipt\x00"))
	m.Write([]byte(voterID))
	var b [12]byte
	for i := range 4 {
		b[i] = byte(uint32(partition) >> (24 - 8*i))
	}
	for i := range 8 {
		b[4+i] = byte(uint64(offset) >> (56 - 8*i))
	}
	m.Write(b[:])
	return strings.ToLower(enc.EncodeToString(m.Sum(nil)[:10]))
}

// ID identifies the key without revealing it: a keyed digest of a fixed
// text, recorded with the election so that tokens are never issued or
// checked under two keys.
func (k Key) ID() string {
	m := hmac.New(sha256.New, k)
	m.Write([]byte("token-key-id"))
	return strings.ToLower(enc.EncodeToString(m.Sum(nil)[:10]))
}

// String never shows the key.
func (k Key) String() string { return "tokens.Key(redacted)" }

// GoString never shows the key.
func (k Key) GoString() string { return k.String() }

// LoadKey returns the key of the ballot tokens' hashes: TOKEN_KEY (hex), or
// the value of the secret TOKEN_KEY_SECRET_ARN names, read with secret
// (its bytes are the key: at least 32). It is an error to have neither.
func LoadKey(ctx context.Context, t config.Tokens, secret func(ctx context.Context, arn string) (string, error)) (Key, error) {
	if t.Key != "" {
		b, err := hex.DecodeString(t.Key)
		if err != nil {
			return nil, errors.New("TOKEN_KEY: not hex")
		}
		return NewKey(b)
	}
	if t.KeySecretARN == "" {
		return nil, errors.New("TOKEN_KEY_SECRET_ARN (or TOKEN_KEY) is required: the key of the ballot tokens' hashes")
	}
	if secret == nil {
		return nil, errors.New("TOKEN_KEY_SECRET_ARN: no way to read secrets here; set TOKEN_KEY")
	}
	text, err := secret(ctx, t.KeySecretARN)
	if err != nil {
		return nil, fmt.Errorf("TOKEN_KEY_SECRET_ARN: %w", err)
	}
	k, err := NewKey([]byte(text))
	if err != nil {
		return nil, fmt.Errorf("TOKEN_KEY_SECRET_ARN %s: %w", t.KeySecretARN, err)
	}
	return k, nil
}
