package kafkaevent

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

// HandlerFunc is a Kafka-triggered function: what every stage's handler is.
type HandlerFunc func(context.Context, events.KafkaEvent) (Response, error)

// Fast returns fn as a lambda.Handler that decodes the event with fastjson
// instead of encoding/json. The Lambda runtime (and lambda.NewHandler) call
// a value that implements lambda.Handler directly with the raw payload, so
// this is the same invocation path with a faster decoder: profiled, decoding
// the event took two thirds of the tally's CPU in Go, most of it
// encoding/json scanning kilobytes of base64 per record.
//
// It is exact: an event decodes to the same events.KafkaEvent as with
// encoding/json, and anything the fast path is not certain to read the same
// way (an unknown or repeated field, an escape, a number that is not a plain
// integer, invalid UTF-8, a decoding error) goes through encoding/json, so
// errors are encoding/json's too. Responses are encoded as lambda.NewHandler
// encodes them.
func Fast(fn HandlerFunc) lambda.Handler { return fastHandler(fn) }

type fastHandler HandlerFunc

// Invoke decodes the event, calls the function and encodes its response.
func (h fastHandler) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	ev, ok := DecodeEvent(payload)
	if !ok {
		// encoding/json, exactly as lambda.NewHandler would do it, errors included.
		return lambda.NewHandler((HandlerFunc)(h)).Invoke(ctx, payload)
	}
	resp, err := h(ctx, ev)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // as lambda.NewHandler's default
	if err := enc.Encode(resp); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// DecodeEvent decodes a KafkaEvent in one pass over the payload, with no
// syntax tree and no copies: the event's strings share payload's memory, so
// payload must not be modified afterwards (the Lambda runtime and the
// harness give every invocation a payload of its own). ok is false
// when the payload is anything but a plainly written event, in which case
// the caller must decode it with encoding/json (which may then report an
// error).
func DecodeEvent(payload []byte) (ev events.KafkaEvent, ok bool) {
	// Events as Lambda writes them have no escapes, so a string ends at the
	// next quote; any backslash goes the strict way.
	if bytes.IndexByte(payload, '\\') >= 0 {
		return ev, false
	}
	s := scanner{b: payload}
	if s.null() {
		return ev, s.end() // encoding/json leaves the zero event
	}
	var seen [4]bool
	ok = s.object(func(key []byte) bool {
		switch string(key) {
		case "eventSource":
			return first(&seen[0]) && s.into(&ev.EventSource)
		case "eventSourceArn":
			return first(&seen[1]) && s.into(&ev.EventSourceARN)
		case "bootstrapServers":
			return first(&seen[2]) && s.into(&ev.BootstrapServers)
		case "records":
			if !first(&seen[3]) {
				return false
			}
			var good bool
			ev.Records, good = s.records()
			return good
		}
		return false // unknown, or a case-insensitive match encoding/json would accept
	})
	return ev, ok && s.end()
}

// scanner reads the JSON of a Kafka event, refusing (false) whatever it
// cannot read exactly as encoding/json reads it into events.KafkaEvent.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next byte after white space (0 at the end).
func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) byte(c byte) bool {
	if s.peek() == c {
		s.i++
		return true
	}
	return false
}

// end reports whether only white space is left.
func (s *scanner) end() bool {
	s.ws()
	return s.i == len(s.b)
}

// null consumes a null.
func (s *scanner) null() bool {
	if s.peek() == 'n' && bytes.HasPrefix(s.b[s.i:], []byte("null")) {
		s.i += 4
		return true
	}
	return false
}

// rawString reads a string's bytes (there are no escapes: DecodeEvent
// checked) and checks encoding/json reads them the same.
func (s *scanner) rawString() ([]byte, bool) {
	if !s.byte('"') {
		return nil, false
	}
	n := bytes.IndexByte(s.b[s.i:], '"')
	if n < 0 {
		return nil, false
	}
	b := s.b[s.i : s.i+n]
	s.i += n + 1
	return b, plain(b)
}

// str reads a string or null (""). The string shares the payload's memory
// rather than copying it: the records' base64 is most of an event, and the
// payload is never written to once it is decoded (see DecodeEvent).
func (s *scanner) str() (string, bool) {
	if s.null() {
		return "", true
	}
	b, ok := s.rawString()
	if !ok || len(b) == 0 {
		return "", ok
	}
	return unsafe.String(&b[0], len(b)), true
}

// integer reads a number written as a plain integer, or null (0).
func (s *scanner) integer() (int64, bool) {
	if s.null() {
		return 0, true
	}
	s.ws()
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	digits := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	if s.i == digits || (s.i-digits > 1 && s.b[digits] == '0') || s.i-digits > 18 {
		return 0, false // not a number, a leading zero, or too long to be sure
	}
	if s.i < len(s.b) {
		switch s.b[s.i] {
		case '.', 'e', 'E':
			return 0, false // encoding/json refuses these for an integer field
		}
	}
	n, err := strconv.ParseInt(string(s.b[start:s.i]), 10, 64)
	return n, err == nil
}

// object reads an object, calling field for each key with the scanner at
// its value; field reads the value and reports whether it could.
func (s *scanner) object(field func(key []byte) bool) bool {
	if !s.byte('{') {
		return false
	}
	if s.byte('}') {
		return true
	}
	for {
		key, ok := s.rawString()
		if !ok || !s.byte(':') || !field(key) {
			return false
		}
		if s.byte('}') {
			return true
		}
		if !s.byte(',') {
			return false
		}
	}
}

// array reads an array, calling elem at each element.
func (s *scanner) array(elem func() bool) bool {
	if !s.byte('[') {
		return false
	}
	if s.byte(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if s.byte(']') {
			return true
		}
		if !s.byte(',') {
			return false
		}
	}
}

func (s *scanner) records() (map[string][]events.KafkaRecord, bool) {
	if s.null() {
		return nil, true
	}
	out := map[string][]events.KafkaRecord{}
	ok := s.object(func(key []byte) bool {
		k := string(key)
		if _, dup := out[k]; dup {
			return false
		}
		if s.null() {
			out[k] = nil
			return true
		}
		recs := []events.KafkaRecord{}
		good := s.array(func() bool {
			r, ok := s.record()
			recs = append(recs, r)
			return ok
		})
		out[k] = recs
		return good
	})
	return out, ok
}

func (s *scanner) record() (events.KafkaRecord, bool) {
	var r events.KafkaRecord
	var seen [8]bool
	ok := s.object(func(key []byte) bool {
		var good bool
		switch string(key) {
		case "topic":
			return first(&seen[0]) && s.into(&r.Topic)
		case "partition":
			if good = first(&seen[1]); good {
				r.Partition, good = s.integer()
			}
		case "offset":
			if good = first(&seen[2]); good {
				r.Offset, good = s.integer()
			}
		case "timestamp":
			var ms int64
			if good = first(&seen[3]); good {
				if ms, good = s.integer(); good {
					// As events.MilliSecondsEpochTime decodes it.
					r.Timestamp.Time = time.Unix(ms/1000, (ms%1000)*1000000)
				}
			}
		case "timestampType":
			return first(&seen[4]) && s.into(&r.TimestampType)
		case "key":
			return first(&seen[5]) && s.into(&r.Key)
		case "value":
			return first(&seen[6]) && s.into(&r.Value)
		case "headers":
			if good = first(&seen[7]); good {
				r.Headers, good = s.headers()
			}
		}
		return good
	})
	return r, ok
}

// first marks a field seen and reports whether it was not already: a
// repeated field goes to encoding/json, which keeps the last value.
func first(seen *bool) bool {
	if *seen {
		return false
	}
	*seen = true
	return true
}

// into reads a string (or null) into dst.
func (s *scanner) into(dst *string) bool {
	v, ok := s.str()
	*dst = v
	return ok
}

func (s *scanner) headers() ([]map[string]events.JSONNumberBytes, bool) {
	if s.null() {
		return nil, true
	}
	out := []map[string]events.JSONNumberBytes{}
	ok := s.array(func() bool {
		m := map[string]events.JSONNumberBytes{}
		out = append(out, m)
		return s.object(func(key []byte) bool {
			k := string(key)
			if _, dup := m[k]; dup || s.peek() != '[' {
				return false // null included: events.JSONNumberBytes decodes it its own way
			}
			b := events.JSONNumberBytes{}
			good := s.array(func() bool {
				if s.peek() == 'n' {
					return false // null is not a byte
				}
				x, ok := s.integer()
				if !ok || x < -128 || x > 127 {
					return false
				}
				b = append(b, byte(int8(x)))
				return true
			})
			m[k] = b
			return good
		})
	})
	return out, ok
}

// plain reports whether b is text encoding/json would read the same: valid
// UTF-8 with no control characters (JSON allows none unescaped; fastjson
// does not check).
func plain(b []byte) bool {
	// Eight bytes at a time: keys and values are kilobytes of base64, all
	// printable ASCII, so the common case never looks at a byte on its own.
	const highs, spaces = 0x8080808080808080, 0x2020202020202020
	i := 0
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		// A byte below 0x20 borrows in w-spaces; a byte >= 0x80 is not ASCII.
		if (w-spaces)&^w&highs != 0 || w&highs != 0 {
			return plainSlow(b)
		}
	}
	for ; i < len(b); i++ {
		if b[i] < 0x20 || b[i] >= 0x80 {
			return plainSlow(b)
		}
	}
	return true
}

func plainSlow(b []byte) bool {
	for _, c := range b {
		if c < 0x20 {
			return false
		}
	}
	return utf8.Valid(b)
}
