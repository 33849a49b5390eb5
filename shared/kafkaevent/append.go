package kafkaevent

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strconv"

	"github.com/votingpipe/voting/shared/stream"
)

// AppendJSON appends to dst the JSON of Event(meta, recs), byte for byte what
// json.Marshal would give, without building the intermediate event: the
// harness builds one per invocation, and for batches of thousands of records
// encoding/json spent most of its time checking base64 text for characters
// to escape, of which base64 has none.
func AppendJSON(dst []byte, meta Meta, recs []*stream.Record) []byte {
	src := meta.Source
	if src == "" {
		src = SourceSelfManaged
	}
	dst = append(dst, `{"eventSource":`...)
	dst = appendString(dst, src)
	dst = append(dst, `,"eventSourceArn":`...)
	dst = appendString(dst, meta.ARN)
	dst = append(dst, `,"records":{`...)

	// Group by "topic-partition", keys in the order json.Marshal sorts map keys.
	groups := map[string][]*stream.Record{}
	var keys []string
	for _, r := range recs {
		k := PartitionKey(r.Topic, r.Partition)
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], r)
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ":["...)
		for j, r := range groups[k] {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = appendRecord(dst, r)
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `},"bootstrapServers":`...)
	dst = appendString(dst, meta.BootstrapServers)
	return append(dst, '}')
}

func appendRecord(dst []byte, r *stream.Record) []byte {
	dst = append(dst, `{"topic":`...)
	dst = appendString(dst, r.Topic)
	dst = append(dst, `,"partition":`...)
	dst = strconv.AppendInt(dst, int64(r.Partition), 10)
	dst = append(dst, `,"offset":`...)
	dst = strconv.AppendInt(dst, r.Offset, 10)
	dst = append(dst, `,"timestamp":`...)
	dst = strconv.AppendInt(dst, r.Timestamp.UnixMilli(), 10)
	dst = append(dst, `,"timestampType":"`...)
	if r.LogAppendTime {
		dst = append(dst, "LOG_APPEND_TIME"...)
	} else {
		dst = append(dst, "CREATE_TIME"...)
	}
	dst = append(dst, '"')
	if len(r.Key) > 0 {
		dst = append(dst, `,"key":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, r.Key)
		dst = append(dst, '"')
	}
	if len(r.Value) > 0 {
		dst = append(dst, `,"value":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, r.Value)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"headers":[`...)
	for i, h := range r.Headers {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '{')
		dst = appendString(dst, h.Key)
		dst = append(dst, ":["...)
		for j, b := range h.Value {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendInt(dst, int64(int8(b)), 10)
		}
		dst = append(dst, "]}"...)
	}
	return append(dst, "]}"...)
}

// appendString appends s as a JSON string, escaped as encoding/json escapes
// it (these are short: topics, header names, broker lists).
func appendString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s) // a string always encodes
	return append(dst, b...)
}
