package harness

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/votingpipe/voting/infra"
	"github.com/votingpipe/voting/local/natsbridge"
	"github.com/votingpipe/voting/local/trigger"
	"github.com/votingpipe/voting/shared/election"
	"github.com/votingpipe/voting/shared/kafkaevent"
)

// Transports are the values of --transport.
var Transports = []string{"kafka", "nats"}

// SelectTransport switches env to the named transport: "kafka" (the
// default; nothing to do) or "nats" (UseNATS). The returned function
// releases what it opened.
func SelectTransport(ctx context.Context, env *Env, name string) (func(), error) {
	switch name {
	case "", "kafka":
		return func() {}, nil
	case "nats":
		return UseNATS(ctx, env)
	}
	return nil, fmt.Errorf("--transport: %q is not one of %s", name, strings.Join(Transports, ", "))
}

// UseNATS switches env to NATS JetStream (--transport nats): it connects to
// NATS_URL, creates the streams of every topic if missing, makes the
// functions publish and register produce through JetStream, and feeds
// their triggers from it. Call it before Run; the returned function closes
// the connection (after what was produced is acknowledged).
func UseNATS(ctx context.Context, env *Env) (func(), error) {
	o := natsbridge.OptionsFrom(env.Config.NATS, env.Config.Kafka)
	o.Log = env.Log
	b, err := natsbridge.Connect(ctx, o)
	if err != nil {
		return nil, err
	}
	if err := b.EnsureStreams(ctx, env.Config.Topics.All()...); err != nil {
		b.Close()
		return nil, err
	}
	t := &natsTransport{env: env, bridge: b, groups: map[string][]string{}}
	for _, tr := range infra.Triggers {
		t.groups[tr.Group] = []string{tr.Topic(env.Config.Topics)}
	}
	env.Deps.Publisher = b
	env.Deps.Producer = b
	env.Deps.Positions = b
	env.SetTransport(t)
	return b.Close, nil
}

// natsTransport is the NATS JetStream transport of an Env.
type natsTransport struct {
	env    *Env
	bridge *natsbridge.Bridge
	groups map[string][]string // consumer group -> topics
}

// Bridge returns the JetStream bridge of env when it uses the NATS
// transport.
func (e *Env) Bridge() (*natsbridge.Bridge, bool) {
	if t, ok := e.transport.(*natsTransport); ok {
		return t.bridge, true
	}
	return nil, false
}

func (n *natsTransport) meta() kafkaevent.Meta {
	m := kafkaevent.Meta{Source: kafkaevent.SourceSelfManaged}
	if u, err := url.Parse(n.env.Config.NATS.URL); err == nil {
		m.BootstrapServers = u.Host
	}
	return m
}

func (n *natsTransport) Trigger(t infra.Trigger, o TriggerOptions, inv trigger.Invoker, stats *trigger.Stats) (Runner, error) {
	m := n.env.mapping(t, o, inv, stats)
	m.Meta = n.meta()
	return &trigger.NATSTrigger{Mapping: m, Bridge: n.bridge, LeaseTTL: o.LeaseTTL}, nil
}

func (n *natsTransport) Position(ctx context.Context, groups []string) (int64, map[string]int64, bool, error) {
	ends, err := n.bridge.Ends(ctx, n.env.Config.Topics.Votes)
	if err != nil {
		return 0, nil, false, err
	}
	var cast int64
	for _, e := range ends {
		cast += e
	}
	lag := map[string]int64{}
	caught := true
	for _, g := range groups {
		var total int64
		for _, topic := range n.groups[g] {
			for p := range int32(n.bridge.Partitions()) {
				l, ok, err := n.bridge.Lag(ctx, topic, p, g)
				if err != nil {
					return cast, nil, false, err
				}
				if !ok {
					caught = false
				}
				total += l
			}
		}
		lag[g] = total
		if total != 0 {
			caught = false
		}
	}
	return cast, lag, caught, nil
}

func (n *natsTransport) VoteEnds(ctx context.Context) (map[int32]int64, error) {
	return n.bridge.Ends(ctx, n.env.Config.Topics.Votes)
}

func (n *natsTransport) Carrier(ctx context.Context) (election.Carrier, error) {
	return n.bridge.Carrier(ctx)
}

var _ Transport = (*natsTransport)(nil)
