// Package deadletter builds dead-letter records: the original record, unchanged,
// with headers that say why it was set aside, where it came from and when, so
// an operator can inspect or replay it and the source partition keeps moving.
package deadletter

import (
	"strconv"
	"time"

	"github.com/votingpipe/voting/shared/stream"
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
func Record(topic string, src *stream.Record, stage, reason, detail string, at time.Time) *stream.Record {
	h := make([]stream.Header, 0, len(src.Headers)+7)
	h = append(h, src.Headers...)
	h = append(h,
		stream.Header{Key: HeaderReason, Value: []byte(reason)},
		stream.Header{Key: HeaderDetail, Value: []byte(detail)},
		stream.Header{Key: HeaderSourceTopic, Value: []byte(src.Topic)},
		stream.Header{Key: HeaderSourcePartition, Value: []byte(strconv.Itoa(int(src.Partition)))},
		stream.Header{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(src.Offset, 10))},
		stream.Header{Key: HeaderStage, Value: []byte(stage)},
		stream.Header{Key: HeaderFailedAt, Value: []byte(at.UTC().Format(time.RFC3339Nano))},
	)
	return &stream.Record{Topic: topic, Key: src.Key, Value: src.Value, Headers: h}
}
