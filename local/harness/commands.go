package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/votingpipe/voting/shared/store"
)

// ErrOtherCarrier means the environment's transport or broker is not the
// one that carries the database's election.
var ErrOtherCarrier = errors.New("the election is carried by another transport or broker")

// CheckCarrier returns an error naming both when the database holds an
// election carried by another transport or broker than env's: its records
// are not there, so neither a run nor an audit makes sense on env.
func CheckCarrier(ctx context.Context, env *Env) error {
	e, err := env.Deps.Store.Election(ctx)
	if err != nil || e == nil || !e.Carrier.Known() {
		return err
	}
	c, err := env.Transport().Carrier(ctx)
	if err != nil {
		return fmt.Errorf("identify the broker: %w", err)
	}
	if c == e.Carrier {
		return nil
	}
	hint := "use the same --transport, state directory, KAFKA_BROKERS or NATS_URL and NATS_STREAM_PREFIX as when it was registered"
	if c.Transport != e.Carrier.Transport {
		hint = fmt.Sprintf("run with --transport %s", e.Carrier.Transport)
	}
	return fmt.Errorf("%w: the database's election %q is carried by %s, but this command reads %s; %s, or start over with `go run ./local reset --yes`",
		ErrOtherCarrier, e.Name, e.Carrier, c, hint)
}

// Audit recounts the election and compares it with every tally view, with
// rejected_votes, and with votes_topic's end offsets: every record offset
// from the election's start on must be counted or rejected exactly once.
// It refuses (ErrOtherCarrier) a transport that does not carry the
// election.
func Audit(ctx context.Context, env *Env, w io.Writer) (store.AuditReport, error) {
	_, onKafka := env.Transport().(kafkaTransport)
	temporary := onKafka && env.StandIn
	if !temporary {
		if err := CheckCarrier(ctx, env); err != nil {
			return store.AuditReport{}, err
		}
	}
	ends, err := env.Transport().VoteEnds(ctx)
	if err != nil {
		return store.AuditReport{}, fmt.Errorf("read end offsets of %s: %w", env.Config.Topics.Votes, err)
	}
	if temporary {
		// A temporary broker knows nothing of the running pipeline's records.
		fmt.Fprintln(w, "note: the embedded broker's state is in use by a running harness; checking the database only")
		ends = nil
	}
	rep, err := env.Deps.Store.Audit(ctx, env.Config.Topics.Votes, ends)
	if err != nil {
		return rep, err
	}
	rep.Print(w)
	return rep, nil
}

// InvokeFile invokes a function once with the event in path (as
// `sam local invoke -e` does) and writes its JSON response to w.
func InvokeFile(ctx context.Context, env *Env, function, path string, w io.Writer) error {
	payload, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	inv, err := env.Invoker(function)
	if err != nil {
		return err
	}
	out, err := inv.Invoke(ctx, payload)
	if err != nil {
		return fmt.Errorf("%s returned an error: %w", function, err)
	}
	_, err = fmt.Fprintf(w, "%s\n", out)
	return err
}
