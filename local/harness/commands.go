package harness

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/votingpipe/voting/shared/store"
)

// Audit recounts the election and compares it with every tally view, with
// rejected_votes, and with votes_topic's end offsets: every record offset
// must be counted or rejected exactly once.
func Audit(ctx context.Context, env *Env, w io.Writer) (store.AuditReport, error) {
	ends, err := env.Transport().VoteEnds(ctx)
	if err != nil {
		return store.AuditReport{}, fmt.Errorf("read end offsets of %s: %w", env.Config.Topics.Votes, err)
	}
	if _, onKafka := env.Transport().(kafkaTransport); onKafka && env.Embedded != nil && !env.Persistent {
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
