package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/votingpipe/voting/infra"
	"github.com/votingpipe/voting/local/trigger"
	"github.com/votingpipe/voting/shared/register"
)

// RunOptions are the knobs of a pipeline run (the flags of `go run ./local`).
type RunOptions struct {
	Voters     int64
	Candidates int
	Seed       int64
	// Rate paces the votes (voters published per second); 0 is unpaced.
	Rate float64
	// UntilDone stops once every registered voter's vote is tallied and the
	// dashboard (when running) shows it.
	UntilDone bool
	// Functions to run (default all).
	Functions []string
	// Batch overrides each trigger's batch size when > 0.
	BatchSize map[string]int
	// LeaseTTL is how long a NATS trigger holds a partition of its group
	// without renewing it (default natsbridge.DefaultLeaseTTL).
	LeaseTTL time.Duration
	// Terminal selects the live progress bar rather than log lines.
	Terminal bool
	Out      io.Writer
	// Invokers substitutes how functions are invoked (default in-process).
	Invokers map[string]trigger.Invoker
}

// Summary is what a run did.
type Summary struct {
	Start    time.Time
	Seconds  float64
	Voters   int64
	Tallied  int64 // votes counted in all, this run and earlier ones
	Rejected int64
	// TalliedHere are the votes this run counted (a resumed run starts from
	// what earlier runs counted); VotesPerSec is their rate.
	TalliedHere int64
	VotesPerSec float64
	// Skipped are the records of earlier elections the functions skipped.
	Skipped   int64
	Dashboard string // path of the dashboard, when written
	Stats     map[string]*trigger.Stats
}

// Run registers the election (unless it already is) and runs the selected
// functions until ctx is done or, with UntilDone, until the election is
// fully counted.
func Run(ctx context.Context, env *Env, o RunOptions) (Summary, error) {
	start := time.Now()
	log := env.Log
	if len(o.Functions) == 0 {
		o.Functions = infra.Functions
	}
	run := func(fn string) bool { return slices.Contains(o.Functions, fn) }

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(o.Functions)+1)
	stats := map[string]*trigger.Stats{}

	if run(infra.Register) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := registerElection(ctx, env, o); err != nil && ctx.Err() == nil {
				errs <- fmt.Errorf("register: %w", err)
			}
		}()
	}

	tr := env.Transport()
	var groups []string
	for _, t := range infra.Triggers {
		if !run(t.Function) {
			continue
		}
		inv := o.Invokers[t.Function]
		if inv == nil {
			var err error
			if inv, err = env.Invoker(t.Function); err != nil {
				return Summary{}, err
			}
		}
		batch := t.BatchSize
		if n := o.BatchSize[t.Function]; n > 0 {
			batch = n
		}
		st := &trigger.Stats{}
		stats[t.Function] = st
		groups = append(groups, t.Group)
		trig, err := tr.Trigger(t, TriggerOptions{BatchSize: batch, LeaseTTL: o.LeaseTTL}, inv, st)
		if err != nil {
			return Summary{}, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := trig.Run(ctx); err != nil && ctx.Err() == nil {
				errs <- fmt.Errorf("%s trigger: %w", t.Function, err)
			}
		}()
	}

	dashboard := ""
	if run(infra.Dashboard) && env.Config.Dashboard.Bucket == "" {
		abs, _ := filepath.Abs(filepath.Join(env.Config.Dashboard.Dir, "index.html"))
		dashboard = abs
		fmt.Fprintf(o.Out, "dashboard: file://%s\n", abs)
	}

	rep := newReporter(o.Out, o.Terminal, log)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last Progress
	var err error
	if last.Tallied, _, err = env.Deps.Store.Progress(ctx, env.Config.Topics.Votes); err != nil {
		return Summary{}, err
	}
	initial := last.Tallied
	lastAt := time.Now()
	// The election's own span: from the start to the last reading that saw
	// more votes counted, not to when the harness stopped idling.
	active := start
	quiet := 0
	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-errs:
			runErr = err
			break loop
		case <-tick.C:
		}
		p, done, err := progress(ctx, env, tr, groups)
		if err != nil {
			if ctx.Err() == nil {
				log.Debug("progress", "error", err)
			}
			continue
		}
		now := time.Now()
		if dt := now.Sub(lastAt).Seconds(); dt > 0 {
			p.Rate = float64(p.Tallied-last.Tallied) / dt
		}
		if p.Tallied > last.Tallied {
			active = now
		}
		last, lastAt = p, now
		rep.update(p)
		if o.UntilDone {
			// Two readings in a row with everything consumed: the second
			// reading's end offsets include whatever the first one's
			// consumers produced last.
			if done {
				quiet++
			} else {
				quiet = 0
			}
			if quiet >= 2 {
				break loop
			}
		}
	}
	rep.finish()
	cancel()
	wg.Wait()

	if st := stats[infra.Tally]; st != nil && st.LastProcessed().After(start) {
		active = st.LastProcessed() // the last batch counted, to the moment
	}
	sum := Summary{Start: start, Seconds: active.Sub(start).Seconds(), Voters: last.Voters, Tallied: last.Tallied,
		Rejected: last.Rejected, TalliedHere: last.Tallied - initial, Dashboard: dashboard, Stats: stats}
	for _, st := range stats {
		sum.Skipped += st.Get("skipped")
	}
	if sum.Seconds > 0 {
		sum.VotesPerSec = float64(sum.TalliedHere) / sum.Seconds
	}
	return sum, runErr
}

// registerElection invokes the register function through the Lambda
// handler path, as `aws lambda invoke` would.
func registerElection(ctx context.Context, env *Env, o RunOptions) error {
	req := register.Request{Voters: o.Voters, Candidates: o.Candidates, Seed: &o.Seed, Rate: o.Rate}
	payload, err := json.Marshal(req)
	if err != nil {
		return err
	}
	var inv trigger.Invoker = lambda.NewHandler(env.Register().Register)
	if remote := o.Invokers[infra.Register]; remote != nil {
		inv = remote
	}
	out, err := inv.Invoke(ctx, payload)
	if err != nil {
		return err
	}
	var resp register.Response
	if err := json.Unmarshal(out, &resp); err != nil {
		return err
	}
	if resp.AlreadyRegistered {
		env.Log.Info("election already registered; resuming", "election", resp.Election, "voters", resp.Voters)
	}
	return nil
}

// progress reads where the pipeline stands. done is true when the election
// is fully published and every running function's group has consumed
// everything.
func progress(ctx context.Context, env *Env, tr Transport, groups []string) (Progress, bool, error) {
	var p Progress
	e, err := env.Deps.Store.Election(ctx)
	if err != nil {
		return p, false, err
	}
	published := false
	if e != nil {
		p.Voters, p.Published = e.Voters, e.Published
		published = e.PublishedAt != nil && e.Published >= e.Voters
	}
	if p.Tallied, p.Rejected, err = env.Deps.Store.Progress(ctx, env.Config.Topics.Votes); err != nil {
		return p, false, err
	}
	cast, lag, caught, err := tr.Position(ctx, groups)
	if err != nil {
		return p, false, err
	}
	if e != nil {
		cast -= e.Starts.Sum(env.Config.Topics.Votes) // earlier elections' records
	}
	p.Cast, p.Lag = cast, lag
	return p, published && caught, nil
}

// Print writes the run's summary: votes tallied and rejected, the rate over
// the election's own span, what each function did, and where the dashboard is.
func (sum Summary) Print(w io.Writer, functions []string) {
	fmt.Fprintf(w, "\n%d of %d votes tallied, %d rejected", sum.Tallied, sum.Voters, sum.Rejected)
	if earlier := sum.Tallied - sum.TalliedHere; earlier > 0 {
		fmt.Fprintf(w, " (%d of them by an earlier run)", earlier)
	}
	fmt.Fprintf(w, "; this run: %d in %.1fs (%.0f votes/s end to end)\n", sum.TalliedHere, sum.Seconds, sum.VotesPerSec)
	if sum.Skipped > 0 {
		fmt.Fprintf(w, "skipped %d records of earlier elections (before this election's start on its topics)\n", sum.Skipped)
	}
	for _, fn := range functions {
		if st := sum.Stats[fn]; st != nil {
			inv := st.Invocations.Load()
			avg := 0.0
			if inv > 0 {
				avg = float64(st.Records.Load()) / float64(inv)
			}
			fmt.Fprintf(w, "  %-9s %8d records in %6d invocations (%.0f per batch), %d failed\n",
				fn, st.Records.Load(), inv, avg, st.Failures.Load())
		}
	}
	if sum.Dashboard != "" {
		fmt.Fprintf(w, "dashboard: file://%s\n", sum.Dashboard)
	}
}
