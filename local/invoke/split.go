package invoke

import (
	"cmp"
	"context"
	"encoding/json"
	"github.com/votingpipe/voting/local/trigger"
	"maps"
	"slices"

	"github.com/aws/aws-lambda-go/events"

	"github.com/votingpipe/voting/shared/kafkaevent"
)

// PayloadLimit is the largest synchronous invocation request Lambda
// accepts: 6 MB. The MSK event-source mapping never sends a larger batch;
// neither do remote invokers, through LimitPayload.
const PayloadLimit = 6 << 20

// LimitPayload returns an invoker that sends a Kafka event larger than max
// bytes (default PayloadLimit) as several consecutive invocations of inv,
// each within max, in offset order, and answers as one invocation would
// have: summaries added up, and, when a part fails, batchItemFailures from
// its first record on (what came before it is processed). Other payloads
// pass through.
func LimitPayload(inv trigger.Invoker, max int) trigger.Invoker {
	if max <= 0 {
		max = PayloadLimit
	}
	return &payloadLimiter{inner: inv, max: max}
}

type payloadLimiter struct {
	inner trigger.Invoker
	max   int
}

// envelope is the room left for the event's own fields.
const envelope = 1024

func (l *payloadLimiter) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	if len(payload) <= l.max {
		return l.inner.Invoke(ctx, payload)
	}
	var ev events.KafkaEvent
	if err := json.Unmarshal(payload, &ev); err != nil || len(ev.Records) == 0 {
		return l.inner.Invoke(ctx, payload)
	}
	parts, err := l.split(ev)
	if err != nil {
		return nil, err
	}
	merged := kafkaevent.Response{BatchItemFailures: []kafkaevent.BatchItemFailure{}, Summary: map[string]int{}}
	for i, part := range parts {
		body, err := json.Marshal(part)
		if err != nil {
			return nil, err
		}
		out, err := l.inner.Invoke(ctx, body)
		if err != nil {
			if i == 0 {
				return nil, err
			}
			merged.BatchItemFailures = failures(parts[i:], nil)
			break
		}
		var resp kafkaevent.Response
		if len(out) > 0 && out[0] == '{' {
			if err := json.Unmarshal(out, &resp); err != nil {
				return out, nil // unreadable: let the caller judge it
			}
		}
		for k, v := range resp.Summary {
			merged.Summary[k] += v
		}
		if len(resp.BatchItemFailures) > 0 {
			merged.BatchItemFailures = failures(parts[i+1:], resp.BatchItemFailures)
			break
		}
	}
	return json.Marshal(merged)
}

// failures lists, for every partition, the lowest offset that is either
// reported failed or in the parts not invoked.
func failures(rest []events.KafkaEvent, reported []kafkaevent.BatchItemFailure) []kafkaevent.BatchItemFailure {
	low := map[string]int64{}
	note := func(k string, off int64) {
		if cur, ok := low[k]; !ok || off < cur {
			low[k] = off
		}
	}
	for _, f := range reported {
		note(f.ItemIdentifier.Partition, f.ItemIdentifier.Offset)
	}
	for _, ev := range rest {
		for k, recs := range ev.Records {
			if len(recs) > 0 {
				note(k, recs[0].Offset)
			}
		}
	}
	out := []kafkaevent.BatchItemFailure{}
	for _, k := range slices.Sorted(maps.Keys(low)) {
		out = append(out, kafkaevent.BatchItemFailure{ItemIdentifier: kafkaevent.ItemIdentifier{Partition: k, Offset: low[k]}})
	}
	return out
}

// split cuts ev into events of at most l.max bytes, partitions in name
// order, records in offset order. A record too large for any event travels
// alone (and fails as Lambda would).
func (l *payloadLimiter) split(ev events.KafkaEvent) ([]events.KafkaEvent, error) {
	var parts []events.KafkaEvent
	cur := events.KafkaEvent{}
	size := 0
	flush := func() {
		if len(cur.Records) > 0 {
			parts = append(parts, cur)
		}
		cur = events.KafkaEvent{EventSource: ev.EventSource, EventSourceARN: ev.EventSourceARN,
			BootstrapServers: ev.BootstrapServers, Records: map[string][]events.KafkaRecord{}}
		size = envelope + len(ev.EventSource) + len(ev.EventSourceARN) + len(ev.BootstrapServers)
	}
	flush()
	for _, k := range slices.Sorted(maps.Keys(ev.Records)) {
		recs := slices.Clone(ev.Records[k])
		slices.SortStableFunc(recs, func(a, b events.KafkaRecord) int { return cmp.Compare(a.Offset, b.Offset) })
		for _, r := range recs {
			b, err := json.Marshal(r)
			if err != nil {
				return nil, err
			}
			n := len(b) + 1
			if _, open := cur.Records[k]; !open {
				n += len(k) + 8 // "key":[ ]
			}
			if size+n > l.max && len(cur.Records) > 0 {
				if _, open := cur.Records[k]; open {
					n += len(k) + 8
				}
				flush()
			}
			cur.Records[k] = append(cur.Records[k], r)
			size += n
		}
	}
	flush()
	return parts, nil
}
