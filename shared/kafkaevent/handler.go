package kafkaevent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"

	"github.com/votingpipe/voting/shared/stream"
)

// Processor handles the records of one topic-partition, in offset order.
// It returns counts for the response summary. A returned error is transient:
// the partition's records are retried from the first one. Bad records must
// not produce an error: processors dead-letter them and carry on.
type Processor interface {
	Process(ctx context.Context, recs []*stream.Record) (map[string]int, error)
}

// ProcessorFunc adapts a function to Processor.
type ProcessorFunc func(ctx context.Context, recs []*stream.Record) (map[string]int, error)

// Process calls f.
func (f ProcessorFunc) Process(ctx context.Context, recs []*stream.Record) (map[string]int, error) {
	return f(ctx, recs)
}

// Handler returns the Lambda handler for p. Each topic-partition of the event
// is processed in turn; a partition whose processing fails is reported in
// batchItemFailures from its first offset, so Lambda retries just it. When
// every partition fails the handler returns the error, so the whole batch is
// retried (and counted against the mapping's retry limit).
func Handler(p Processor, log *slog.Logger) func(context.Context, events.KafkaEvent) (Response, error) {
	if log == nil {
		log = slog.Default()
	}
	return func(ctx context.Context, ev events.KafkaEvent) (Response, error) {
		resp := Response{BatchItemFailures: []BatchItemFailure{}, Summary: map[string]int{}}
		parts := Partitions(Records(ev))
		var errs []error
		for _, recs := range parts {
			first := recs[0]
			sum, err := p.Process(ctx, recs)
			if err != nil {
				err = fmt.Errorf("%s/%d from offset %d: %w", first.Topic, first.Partition, first.Offset, err)
				log.WarnContext(ctx, "partition batch failed; it will be retried", "error", err, "records", len(recs))
				errs = append(errs, err)
				resp.BatchItemFailures = append(resp.BatchItemFailures, BatchItemFailure{ItemIdentifier{
					Partition: PartitionKey(first.Topic, first.Partition), Offset: first.Offset,
				}})
				continue
			}
			for k, v := range sum {
				resp.Summary[k] += v
			}
			resp.Summary["records"] += len(recs)
		}
		if len(parts) > 0 && len(errs) == len(parts) {
			return Response{}, errors.Join(errs...)
		}
		return resp, nil
	}
}
