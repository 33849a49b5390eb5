package natsbridge

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/votingpipe/voting/shared/deadletter"
	"github.com/votingpipe/voting/shared/stream"
)

// Header names the bridge uses.
const (
	// HeaderKey carries the record key.
	HeaderKey = "Voting-Key"
	// HeaderWrapped carries a header (or key) NATS cannot carry verbatim, as
	// base64(name) ":" base64(value).
	HeaderWrapped = "Voting-Header"
)

// Message returns the NATS message of r on subject: the value as data, the
// key and headers as NATS headers.
func Message(subject string, r *stream.Record) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Data = r.Value
	if r.Key != nil {
		addHeader(m.Header, HeaderKey, r.Key, true)
	}
	// Wrap every value of a name when any one needs it, so values of one
	// name keep their order.
	wrap := map[string]bool{}
	for _, h := range r.Headers {
		if !plainName(h.Key) || !plainValue(h.Value) {
			wrap[h.Key] = true
		}
	}
	for _, h := range r.Headers {
		addHeader(m.Header, h.Key, h.Value, !wrap[h.Key])
	}
	return m
}

func addHeader(h nats.Header, name string, value []byte, plain bool) {
	if plain && plainValue(value) {
		h.Add(name, string(value))
		return
	}
	h.Add(HeaderWrapped, base64.StdEncoding.EncodeToString([]byte(name))+":"+base64.StdEncoding.EncodeToString(value))
}

// plainName is a header name NATS carries as is and that is not reserved
// (Nats-*, Voting-*).
func plainName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == ':' {
			return false
		}
	}
	l := strings.ToLower(s)
	return !strings.HasPrefix(l, "nats-") && !strings.HasPrefix(l, "voting-")
}

// plainValue is a header value that survives NATS's header parsing as is.
func plainValue(v []byte) bool {
	if len(v) == 0 || v[0] == ' ' || v[0] == '\t' || v[len(v)-1] == ' ' || v[len(v)-1] == '\t' {
		return false
	}
	for _, c := range v {
		if c < ' ' || c == 0x7f {
			return false
		}
	}
	return utf8.Valid(v)
}

// Record returns the record a message of a topic-partition stream carries:
// offset = stream sequence - 1, timestamp = time stored, key and headers
// from the NATS headers (NATS's own Nats-* headers left out). Headers come
// grouped by name in name order; the values of a name keep their order.
func Record(m jetstream.Msg, topic string, partition int32) (*stream.Record, error) {
	md, err := m.Metadata()
	if err != nil {
		return nil, fmt.Errorf("message on %s has no JetStream metadata: %w", m.Subject(), err)
	}
	r := &stream.Record{
		Topic:     topic,
		Partition: partition,
		Offset:    int64(md.Sequence.Stream) - 1,
		Timestamp: md.Timestamp,
		Value:     m.Data(),
	}
	if r.Value == nil {
		r.Value = []byte{}
	}
	h := m.Headers()
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		switch {
		case k == HeaderKey:
			r.Key = []byte(h.Get(k))
		case k == HeaderWrapped:
			for _, v := range h[k] {
				name, value, err := unwrap(v)
				if err != nil {
					return nil, fmt.Errorf("message %d on %s: %w", md.Sequence.Stream, m.Subject(), err)
				}
				if name == HeaderKey {
					r.Key = value
					continue
				}
				r.Headers = append(r.Headers, stream.Header{Key: name, Value: value})
			}
		case strings.HasPrefix(strings.ToLower(k), "nats-"):
		default:
			for _, v := range h[k] {
				r.Headers = append(r.Headers, stream.Header{Key: k, Value: []byte(v)})
			}
		}
	}
	return r, nil
}

func unwrap(v string) (string, []byte, error) {
	n, val, ok := strings.Cut(v, ":")
	if !ok {
		return "", nil, fmt.Errorf("malformed %s header %q", HeaderWrapped, v)
	}
	name, err := base64.StdEncoding.DecodeString(n)
	if err != nil {
		return "", nil, fmt.Errorf("malformed %s header %q: %w", HeaderWrapped, v, err)
	}
	value, err := base64.StdEncoding.DecodeString(val)
	if err != nil {
		return "", nil, fmt.Errorf("malformed %s header %q: %w", HeaderWrapped, v, err)
	}
	return string(name), value, nil
}

// MsgID is the de-duplication id (Nats-Msg-Id) of a record: the same for
// the same logical message however often it is published, different for
// different ones.
//
//   - A dead letter is identified by the stage that rejected it and the
//     source record's coordinates: "dead:ballot:voters_topic:3:1234".
//   - Any other record by its key and a hash of its value:
//     "<voter_id>:<hash>" for a vote or a voter (the ballot is
//     deterministic, so a redelivered voter yields the same vote and id),
//     "<candidate_id>:<hash>" for a candidate's running total (the hash
//     covers the total, so each new total is a new message). Keys longer
//     than 64 bytes or not plain text are left to the hash.
func MsgID(r *stream.Record) string {
	if stage := r.Header(deadletter.HeaderStage); stage != "" {
		if src := r.Header(deadletter.HeaderSourceTopic); src != "" {
			return "dead:" + stage + ":" + src + ":" + r.Header(deadletter.HeaderSourcePartition) +
				":" + r.Header(deadletter.HeaderSourceOffset)
		}
	}
	h := sha256.New()
	fmt.Fprintf(h, "%d:", len(r.Key))
	h.Write(r.Key)
	// Headers are part of a message's identity: the same voter published
	// by two elections of the same seed has the same key and value, but
	// not the same election_id header, and must be stored twice.
	for _, hd := range r.Headers {
		fmt.Fprintf(h, "%d:%s%d:", len(hd.Key), hd.Key, len(hd.Value))
		h.Write(hd.Value)
	}
	fmt.Fprintf(h, "%d:", len(r.Value))
	h.Write(r.Value)
	sum := base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:15])
	if len(r.Key) > 0 && len(r.Key) <= 64 && plainValue(r.Key) && !strings.ContainsAny(string(r.Key), " \t") {
		return string(r.Key) + ":" + sum
	}
	return sum
}

// keyPartitioner partitions keys exactly as Kafka's default partitioner
// (murmur2, high bit masked, modulo n), which is franz-go's default too.
// Made once: ForTopic seeds a random source (for keyless records, which
// never reach it), costlier than the hash itself. Its keyed path is
// stateless, so sharing it is safe.
var keyPartitioner = kgo.StickyKeyPartitioner(nil).ForTopic("")

// Partition returns the partition of r among n: Kafka's for its key, or,
// for a keyless record, one chosen by its de-duplication id, so that a
// retried publish reaches the same stream and is recognised.
func Partition(r *stream.Record, id string, n int) int32 {
	if r.Key != nil {
		return int32(keyPartitioner.Partition(&kgo.Record{Key: r.Key}, n))
	}
	h := fnv.New32a()
	h.Write([]byte(id))
	return int32(h.Sum32() % uint32(n))
}
