// Package stream is the pipeline's vocabulary for records on a log of
// topics and partitions, whatever carries them: Kafka (franz-go, package
// broker), AWS Lambda's Kafka events (package kafkaevent) or NATS
// JetStream (the local harness's bridge). The stages read and write these
// records; adapters convert them. It imports nothing of the project's.
package stream

import (
	"context"
	"time"
)

// Header is a record header.
type Header struct {
	Key   string
	Value []byte
}

// Record is one record of a topic-partition. Offset is its position in the
// partition; Timestamp is when it was produced (or, with LogAppendTime, when
// the broker stored it).
type Record struct {
	Topic         string
	Partition     int32
	Offset        int64
	Key           []byte
	Value         []byte
	Headers       []Header
	Timestamp     time.Time
	LogAppendTime bool
}

// Header returns the last value of the named header, or "".
func (r *Record) Header(name string) string {
	for i := len(r.Headers) - 1; i >= 0; i-- {
		if r.Headers[i].Key == name {
			return string(r.Headers[i].Value)
		}
	}
	return ""
}

// Publisher produces records and returns once the broker has every one of
// them (or the first failure); on success each record's Partition and
// Offset say where it was stored.
type Publisher interface {
	Publish(ctx context.Context, recs ...*Record) error
}

// Producer produces records asynchronously: promise is called (from
// another goroutine) once the broker stored r or failed to; Flush waits for
// every record produced so far.
type Producer interface {
	Produce(ctx context.Context, r *Record, promise func(*Record, error))
	Flush(ctx context.Context) error
}
