package kafkaevent

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/valyala/fastjson"
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

var eventParsers fastjson.ParserPool

// DecodeEvent decodes a KafkaEvent with fastjson. ok is false when the
// payload is anything but a plainly written event, in which case the caller
// must decode it with encoding/json (which may then report an error).
func DecodeEvent(payload []byte) (ev events.KafkaEvent, ok bool) {
	// Events as Lambda writes them have no escapes; fastjson is lenient
	// with malformed ones, so any backslash goes the strict way.
	if bytes.IndexByte(payload, '\\') >= 0 {
		return ev, false
	}
	p := eventParsers.Get()
	defer eventParsers.Put(p)
	v, err := p.ParseBytes(payload)
	if err != nil {
		return ev, false
	}
	if v.Type() == fastjson.TypeNull {
		return ev, true // encoding/json leaves the zero event
	}
	obj, err := v.Object()
	if err != nil {
		return ev, false
	}
	ok = true
	seen := map[string]bool{}
	obj.Visit(func(key []byte, val *fastjson.Value) {
		if !ok {
			return
		}
		k := string(key)
		if seen[k] || !plain(key) {
			ok = false
			return
		}
		seen[k] = true
		switch k {
		case "eventSource":
			ev.EventSource, ok = str(val)
		case "eventSourceArn":
			ev.EventSourceARN, ok = str(val)
		case "bootstrapServers":
			ev.BootstrapServers, ok = str(val)
		case "records":
			ev.Records, ok = decodeRecords(val)
		default:
			ok = false // unknown, or a case-insensitive match encoding/json would accept
		}
	})
	return ev, ok
}

func decodeRecords(v *fastjson.Value) (map[string][]events.KafkaRecord, bool) {
	if v.Type() == fastjson.TypeNull {
		return nil, true
	}
	obj, err := v.Object()
	if err != nil {
		return nil, false
	}
	out := make(map[string][]events.KafkaRecord, obj.Len())
	ok := true
	obj.Visit(func(key []byte, val *fastjson.Value) {
		if !ok {
			return
		}
		k := string(key)
		if _, dup := out[k]; dup || !plain(key) {
			ok = false
			return
		}
		if val.Type() == fastjson.TypeNull {
			out[k] = nil
			return
		}
		arr, err := val.Array()
		if err != nil {
			ok = false
			return
		}
		recs := make([]events.KafkaRecord, len(arr))
		for i, rv := range arr {
			if recs[i], ok = decodeRecord(rv); !ok {
				return
			}
		}
		out[k] = recs
	})
	return out, ok
}

func decodeRecord(v *fastjson.Value) (events.KafkaRecord, bool) {
	var r events.KafkaRecord
	obj, err := v.Object()
	if err != nil {
		return r, false
	}
	ok := true
	var seen [8]bool
	once := func(i int) bool {
		if seen[i] {
			return false
		}
		seen[i] = true
		return true
	}
	obj.Visit(func(key []byte, val *fastjson.Value) {
		if !ok {
			return
		}
		switch string(key) {
		case "topic":
			if ok = once(0); ok {
				r.Topic, ok = str(val)
			}
		case "partition":
			if ok = once(1); ok {
				r.Partition, ok = integer(val)
			}
		case "offset":
			if ok = once(2); ok {
				r.Offset, ok = integer(val)
			}
		case "timestamp":
			if ok = once(3); ok {
				var ms int64
				if ms, ok = integer(val); ok {
					// As events.MilliSecondsEpochTime decodes it.
					r.Timestamp.Time = time.Unix(ms/1000, (ms%1000)*1000000)
				}
			}
		case "timestampType":
			if ok = once(4); ok {
				r.TimestampType, ok = str(val)
			}
		case "key":
			if ok = once(5); ok {
				r.Key, ok = str(val)
			}
		case "value":
			if ok = once(6); ok {
				r.Value, ok = str(val)
			}
		case "headers":
			if ok = once(7); ok {
				r.Headers, ok = decodeHeaders(val)
			}
		default:
			ok = false
		}
	})
	return r, ok
}

func decodeHeaders(v *fastjson.Value) ([]map[string]events.JSONNumberBytes, bool) {
	if v.Type() == fastjson.TypeNull {
		return nil, true
	}
	arr, err := v.Array()
	if err != nil {
		return nil, false
	}
	out := make([]map[string]events.JSONNumberBytes, len(arr))
	for i, hv := range arr {
		if hv.Type() != fastjson.TypeObject {
			return nil, false
		}
		obj, err := hv.Object()
		if err != nil {
			return nil, false
		}
		m := make(map[string]events.JSONNumberBytes, obj.Len())
		ok := true
		obj.Visit(func(key []byte, val *fastjson.Value) {
			k := string(key)
			if _, dup := m[k]; dup || !ok || !plain(key) {
				ok = false
				return
			}
			if val.Type() != fastjson.TypeArray {
				ok = false // null included: events.JSONNumberBytes decodes it its own way
				return
			}
			nums, err := val.Array()
			if err != nil {
				ok = false
				return
			}
			b := make(events.JSONNumberBytes, len(nums))
			for j, n := range nums {
				x, good := integer(n)
				if !good || x < -128 || x > 127 {
					ok = false
					return
				}
				b[j] = byte(int8(x))
			}
			m[k] = b
		})
		if !ok {
			return nil, false
		}
		out[i] = m
	}
	return out, true
}

// str reads a string that encoding/json would read identically: no escapes
// to interpret differently, valid UTF-8. null reads as "".
func str(v *fastjson.Value) (string, bool) {
	switch v.Type() {
	case fastjson.TypeNull:
		return "", true
	case fastjson.TypeString:
		b, err := v.StringBytes()
		if err != nil || !plain(b) {
			return "", false
		}
		return string(b), true
	}
	return "", false
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

// integer reads a JSON number written as a plain integer.
func integer(v *fastjson.Value) (int64, bool) {
	if v.Type() == fastjson.TypeNull {
		return 0, true
	}
	if v.Type() != fastjson.TypeNumber {
		return 0, false
	}
	raw := v.String() // the number as written
	digits := strings.TrimPrefix(raw, "-")
	if digits == "" || (len(digits) > 1 && digits[0] == '0') {
		return 0, false // JSON has no leading zeros
	}
	for i := 0; i < len(digits); i++ {
		if c := digits[i]; c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := v.Int64()
	return n, err == nil
}
