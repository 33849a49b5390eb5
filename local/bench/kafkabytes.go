package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/votingpipe/voting/local/harness"
)

// TopicBytes is what one topic holds after the election, read back from
// the broker.
type TopicBytes struct {
	Records int64 `json:"records"`
	// Bytes are the records' key + value + header keys and values (not the
	// broker's batch and record framing).
	Bytes        int64   `json:"bytes"`
	BytesPerVote float64 `json:"bytes_per_vote"`
}

// topicBytes reads every record of the election's topics back from the
// broker, from the start to the end offsets it has now, and sums their
// sizes per topic, divided by votes.
func topicBytes(ctx context.Context, env *harness.Env, votes int64) (map[string]TopicBytes, error) {
	topics := env.Config.Topics.All()
	ends, err := kadm.NewClient(env.Deps.Kafka).ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("end offsets: %w", err)
	}
	out := map[string]TopicBytes{}
	want := map[string]map[int32]kgo.Offset{}
	left := map[string]map[int32]int64{} // partition -> end offset still to reach
	for _, t := range topics {
		out[t] = TopicBytes{}
	}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil || o.Offset <= 0 {
			return
		}
		if want[o.Topic] == nil {
			want[o.Topic], left[o.Topic] = map[int32]kgo.Offset{}, map[int32]int64{}
		}
		want[o.Topic][o.Partition] = kgo.NewOffset().AtStart()
		left[o.Topic][o.Partition] = o.Offset
	})
	if err := ends.Error(); err != nil {
		return nil, fmt.Errorf("end offsets: %w", err)
	}
	if len(want) > 0 {
		opts, err := env.ClientOpts()
		if err != nil {
			return nil, err
		}
		cl, err := kgo.NewClient(append(opts, kgo.ConsumePartitions(want))...)
		if err != nil {
			return nil, err
		}
		defer cl.Close()
		rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		for len(left) > 0 {
			fs := cl.PollFetches(rctx)
			if rctx.Err() != nil {
				return nil, fmt.Errorf("reading the topics back: %w (still to read: %v)", rctx.Err(), left)
			}
			fs.EachRecord(func(r *kgo.Record) {
				tb := out[r.Topic]
				tb.Records++
				tb.Bytes += int64(len(r.Key) + len(r.Value))
				for _, h := range r.Headers {
					tb.Bytes += int64(len(h.Key) + len(h.Value))
				}
				out[r.Topic] = tb
				if p := left[r.Topic]; p != nil && r.Offset+1 >= p[r.Partition] {
					delete(p, r.Partition)
					if len(p) == 0 {
						delete(left, r.Topic)
					}
				}
			})
		}
	}
	for t, tb := range out {
		if votes > 0 {
			tb.BytesPerVote = float64(tb.Bytes) / float64(votes)
		}
		out[t] = tb
	}
	return out, nil
}
