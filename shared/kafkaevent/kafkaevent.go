// Package kafkaevent converts between Kafka records and the events.KafkaEvent
// JSON that AWS Lambda's MSK and self-managed Kafka event-source mappings
// deliver, and adapts a per-partition record processor into a Lambda handler
// that reports partial batch failures.
//
// It is the only place that knows the Lambda event shape: processors see
// plain *stream.Record values, and the local harness builds events with
// AppendJSON so that a handler is invoked with exactly what Lambda would send
// it.
package kafkaevent

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/votingpipe/voting/shared/stream"
)

// Event sources as Lambda names them.
const (
	SourceMSK         = "aws:kafka"
	SourceSelfManaged = "SelfManagedKafka"
)

// Meta describes where an event comes from.
type Meta struct {
	// Source is SourceMSK or SourceSelfManaged (the default).
	Source string
	// ARN is the MSK cluster ARN (empty for self-managed Kafka).
	ARN string
	// BootstrapServers is the comma-separated broker list.
	BootstrapServers string
}

// PartitionKey returns the key Lambda files a partition's records under:
// "topic-partition".
func PartitionKey(topic string, partition int32) string {
	return topic + "-" + strconv.Itoa(int(partition))
}

// Event builds the event Lambda would deliver for recs: base64 keys and
// values, headers as byte lists, millisecond timestamps, records grouped by
// "topic-partition" in offset order.
func Event(meta Meta, recs []*stream.Record) events.KafkaEvent {
	src := meta.Source
	if src == "" {
		src = SourceSelfManaged
	}
	ev := events.KafkaEvent{
		EventSource:      src,
		EventSourceARN:   meta.ARN,
		BootstrapServers: meta.BootstrapServers,
		Records:          make(map[string][]events.KafkaRecord),
	}
	for _, r := range recs {
		k := PartitionKey(r.Topic, r.Partition)
		kr := events.KafkaRecord{
			Topic:         r.Topic,
			Partition:     int64(r.Partition),
			Offset:        r.Offset,
			TimestampType: "CREATE_TIME",
			Headers:       make([]map[string]events.JSONNumberBytes, 0, len(r.Headers)),
		}
		kr.Timestamp.Time = r.Timestamp
		if r.LogAppendTime {
			kr.TimestampType = "LOG_APPEND_TIME"
		}
		if r.Key != nil {
			kr.Key = base64.StdEncoding.EncodeToString(r.Key)
		}
		if r.Value != nil {
			kr.Value = base64.StdEncoding.EncodeToString(r.Value)
		}
		for _, h := range r.Headers {
			kr.Headers = append(kr.Headers, map[string]events.JSONNumberBytes{h.Key: events.JSONNumberBytes(h.Value)})
		}
		ev.Records[k] = append(ev.Records[k], kr)
	}
	return ev
}

// Records decodes an event back into records, sorted by topic, partition and
// offset. A key or value that is not valid base64 is passed on as its raw
// text (hand-written events often carry plain JSON); the processors then judge
// it like any other payload, so a bad record can never stall a partition.
func Records(ev events.KafkaEvent) []*stream.Record {
	var out []*stream.Record
	for mapKey, list := range ev.Records {
		for _, kr := range list {
			topic := kr.Topic
			if topic == "" {
				// Fall back to the map key, "topic-partition".
				if i := strings.LastIndexByte(mapKey, '-'); i > 0 {
					topic = mapKey[:i]
				}
			}
			r := &stream.Record{
				Topic:         topic,
				Partition:     int32(kr.Partition),
				Offset:        kr.Offset,
				Timestamp:     kr.Timestamp.Time,
				LogAppendTime: kr.TimestampType == "LOG_APPEND_TIME",
				Key:           decode(kr.Key),
				Value:         decode(kr.Value),
			}
			for _, h := range kr.Headers {
				for hk, hv := range h {
					r.Headers = append(r.Headers, stream.Header{Key: hk, Value: []byte(hv)})
				}
			}
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b *stream.Record) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
	})
	return out
}

func decode(s string) []byte {
	if s == "" {
		return nil
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b
	}
	return []byte(s)
}

// Partitions splits records sorted by Records into runs of one topic-partition.
func Partitions(recs []*stream.Record) [][]*stream.Record {
	var out [][]*stream.Record
	start := 0
	for i := 1; i <= len(recs); i++ {
		if i == len(recs) || recs[i].Topic != recs[start].Topic || recs[i].Partition != recs[start].Partition {
			out = append(out, recs[start:i])
			start = i
		}
	}
	return out
}

// Response is what a Kafka-triggered function returns. With the event-source
// mapping's ReportBatchItemFailures on, Lambda retries each listed partition
// from the listed offset and checkpoints everything else.
type Response struct {
	BatchItemFailures []BatchItemFailure `json:"batchItemFailures"`
	// Summary says what the function did; Lambda ignores it, people and tests read it.
	Summary map[string]int `json:"summary,omitempty"`
}

// BatchItemFailure names the first record of a partition that failed.
type BatchItemFailure struct {
	ItemIdentifier ItemIdentifier `json:"itemIdentifier"`
}

// ItemIdentifier is Lambda's identifier of a Kafka record in a partial batch
// response: Partition is "topic-partition".
type ItemIdentifier struct {
	Partition string `json:"partition"`
	Offset    int64  `json:"offset"`
}

// ParseItemPartition splits an ItemIdentifier.Partition into topic and partition.
func ParseItemPartition(s string) (string, int32, error) {
	i := strings.LastIndexByte(s, '-')
	if i <= 0 {
		return "", 0, fmt.Errorf("item partition %q is not topic-partition", s)
	}
	p, err := strconv.ParseInt(s[i+1:], 10, 32)
	if err != nil {
		return "", 0, fmt.Errorf("item partition %q is not topic-partition: %w", s, err)
	}
	return s[:i], int32(p), nil
}
