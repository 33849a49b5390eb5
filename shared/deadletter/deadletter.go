// Package deadletter builds dead-letter records: the original record, unchanged,
// with headers that say why it was set aside, where it came from and when, so
// an operator can inspect or replay it and the source partition keeps moving.
package deadletter

import (
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Header names carried by every dead letter.
const (
	HeaderReason          = "reason"
	HeaderDetail          = "detail"
	HeaderSourceTopic     = "source_topic"
	HeaderSourcePartition = "source_partition"
	HeaderSourceOffset    = "source_offset"
	HeaderStage           = "stage"
	HeaderFailedAt        = "failed_at"
)

// Record returns the dead letter of src for topic: the same key and value,
// keeping src's own headers, plus the reason (a short code such as
// "malformed"), a human-readable detail, the source coordinates, the stage that
// rejected it and the time (RFC 3339).
func Record(topic string, src *kgo.Record, stage, reason, detail string, at time.Time) *kgo.Record {
	h := make([]kgo.RecordHeader, 0, len(src.Headers)+7)
	h = append(h, src.Headers...)
	h = append(h,
		kgo.RecordHeader{Key: HeaderReason, Value: []byte(reason)},
		kgo.RecordHeader{Key: HeaderDetail, Value: []byte(detail)},
		kgo.RecordHeader{Key: HeaderSourceTopic, Value: []byte(src.Topic)},
		kgo.RecordHeader{Key: HeaderSourcePartition, Value: []byte(strconv.Itoa(int(src.Partition)))},
		kgo.RecordHeader{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(src.Offset, 10))},
		kgo.RecordHeader{Key: HeaderStage, Value: []byte(stage)},
		kgo.RecordHeader{Key: HeaderFailedAt, Value: []byte(at.UTC().Format(time.RFC3339Nano))},
	)
	return &kgo.Record{Topic: topic, Key: src.Key, Value: src.Value, Headers: h}
}

// Header returns the value of the named header of r, or "".
func Header(r *kgo.Record, name string) string {
	for i := len(r.Headers) - 1; i >= 0; i-- {
		if r.Headers[i].Key == name {
			return string(r.Headers[i].Value)
		}
	}
	return ""
}
