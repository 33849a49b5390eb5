package harness

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/votingpipe/voting/infra"
	"github.com/votingpipe/voting/local/trigger"
	"github.com/votingpipe/voting/shared/broker"
	"github.com/votingpipe/voting/shared/election"
)

// Runner is a running trigger: it feeds one function until ctx is done.
type Runner interface {
	Run(ctx context.Context) error
}

// mapping is the event-source mapping of trigger t as the harness runs it.
func (e *Env) mapping(t infra.Trigger, o TriggerOptions, inv trigger.Invoker, stats *trigger.Stats) trigger.Mapping {
	batch := t.BatchSize
	if o.BatchSize > 0 {
		batch = o.BatchSize
	}
	return trigger.Mapping{Function: t.Function, Topic: t.Topic(e.Config.Topics), Group: t.Group, BatchSize: batch,
		Window: t.Window, Invoker: inv, Meta: e.Meta(), GiveUp: e.GiveUp(t), Stats: stats, Log: e.Log}
}

// Transport is what carries records between the functions: Kafka (the
// default) or another broker bridged to the same events.KafkaEvent shape.
type Transport interface {
	// Trigger returns the runner that feeds function t's invocations.
	Trigger(t infra.Trigger, o TriggerOptions, inv trigger.Invoker, stats *trigger.Stats) (Runner, error)
	// Position reports the votes cast so far (records on the votes topic) and
	// each consumer group's lag; caught is true when every group has
	// consumed everything.
	Position(ctx context.Context, groups []string) (cast int64, lag map[string]int64, caught bool, err error)
	// VoteEnds returns the end offset of every partition of the votes topic.
	VoteEnds(ctx context.Context) (map[int32]int64, error)
	// Carrier identifies the transport and broker.
	Carrier(ctx context.Context) (election.Carrier, error)
}

// TriggerOptions tune a trigger beyond its function's table entry.
type TriggerOptions struct {
	// BatchSize overrides the trigger's batch size when > 0.
	BatchSize int
	// LeaseTTL is how long a NATS trigger holds a partition without
	// renewing it (default natsbridge.DefaultLeaseTTL).
	LeaseTTL time.Duration
}

// kafkaTransport is the Kafka transport of an Env.
type kafkaTransport struct{ env *Env }

func (k kafkaTransport) Trigger(t infra.Trigger, o TriggerOptions, inv trigger.Invoker, stats *trigger.Stats) (Runner, error) {
	opts, err := k.env.ClientOpts()
	if err != nil {
		return nil, err
	}
	return &trigger.KafkaTrigger{Mapping: k.env.mapping(t, o, inv, stats), ClientOpts: opts}, nil
}

func (k kafkaTransport) Position(ctx context.Context, groups []string) (int64, map[string]int64, bool, error) {
	adm := kadm.NewClient(k.env.Deps.Kafka)
	var cast int64
	ends, err := adm.ListEndOffsets(ctx, k.env.Config.Topics.Votes)
	if err != nil {
		return 0, nil, false, err
	}
	ends.Each(func(o kadm.ListedOffset) { cast += o.Offset })
	lag := map[string]int64{}
	caught := true
	if len(groups) > 0 {
		lags, err := adm.Lag(ctx, groups...)
		if err != nil {
			return cast, nil, false, err
		}
		for _, g := range groups {
			gl, ok := lags[g]
			if !ok || gl.Error() != nil {
				caught = false
				continue
			}
			total := gl.Lag.Total()
			lag[g] = total
			if total != 0 || len(gl.Lag) == 0 {
				caught = false
			}
		}
	}
	return cast, lag, caught, nil
}

func (k kafkaTransport) VoteEnds(ctx context.Context) (map[int32]int64, error) {
	return broker.TopicEnds(ctx, k.env.Deps.Kafka, k.env.Config.Topics.Votes)
}

func (k kafkaTransport) Carrier(ctx context.Context) (election.Carrier, error) {
	return broker.Positions{Client: k.env.Deps.Kafka}.Carrier(ctx)
}
