package kafkaevent

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/votingpipe/voting/shared/metrics"
)

// Measured wraps a handler so that every invocation writes its counters as
// one CloudWatch embedded metric format line (no SDK call): each summary
// counter of the response as a Count metric named by names (or by the
// counter's name in CamelCase), "Records", "PartitionsFailed" and
// "BatchSeconds". A counter named "base.detail" is emitted as the metric of
// base with the dimension Reason=detail (rejections by reason), beside
// base's total. A nil emitter measures nothing.
func Measured(h HandlerFunc, em *metrics.Emitter, names map[string]string) HandlerFunc {
	if em == nil {
		return h
	}
	name := func(k string) string {
		if n, ok := names[k]; ok {
			return n
		}
		var b strings.Builder
		for _, w := range strings.FieldsFunc(k, func(r rune) bool { return r == '_' || r == '-' }) {
			b.WriteString(strings.ToUpper(w[:1]) + w[1:])
		}
		return b.String()
	}
	return func(ctx context.Context, ev events.KafkaEvent) (Response, error) {
		start := time.Now()
		resp, err := h(ctx, ev)
		n := 0
		for _, recs := range ev.Records {
			n += len(recs)
		}
		ms := []metrics.Metric{
			{Name: "Records", Value: float64(n), Unit: metrics.Count},
			{Name: "BatchSeconds", Value: time.Since(start).Seconds(), Unit: metrics.Seconds},
		}
		failed := len(resp.BatchItemFailures)
		if err != nil {
			failed = len(ev.Records)
		}
		ms = append(ms, metrics.Metric{Name: "PartitionsFailed", Value: float64(failed), Unit: metrics.Count})
		type byReason struct {
			metric, reason string
			n              int
		}
		var reasons []byReason
		for _, k := range slices.Sorted(maps.Keys(resp.Summary)) {
			if k == "records" {
				continue
			}
			if base, detail, ok := strings.Cut(k, "."); ok {
				reasons = append(reasons, byReason{name(base), detail, resp.Summary[k]})
				continue
			}
			ms = append(ms, metrics.Metric{Name: name(k), Value: float64(resp.Summary[k]), Unit: metrics.Count})
		}
		em.Emit(ms...) //nolint:errcheck // metrics never fail an invocation
		for _, r := range reasons {
			em.EmitWith([]metrics.Dimension{{Name: "Reason", Value: r.reason}}, //nolint:errcheck
				metrics.Metric{Name: r.metric, Value: float64(r.n), Unit: metrics.Count})
		}
		return resp, err
	}
}
