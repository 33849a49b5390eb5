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
	// Turnout is the share of the roll that votes (0: 1, everyone).
	Turnout float64
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
	Start   time.Time
	Seconds float64
	Voters  int64
	// Voting is how many of the voters vote (the votes to expect; the
	// voters when the election's turnout is 1).
	Voting   int64
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
	if len(o.Functions) == 0 {
		o.Functions = infra.Simulation
	}
	r := &running{env: env, o: o, start: time.Now(), stats: map[string]*trigger.Stats{},
		errs: make(chan error, len(o.Functions)+1)}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := r.startFunctions(ctx); err != nil {
		cancel()
		r.wg.Wait()
		return Summary{}, err
	}
	if slices.Contains(o.Functions, infra.Dashboard) && env.Config.Dashboard.Bucket == "" {
		r.dashboard, _ = filepath.Abs(filepath.Join(env.Config.Dashboard.Dir, "index.html"))
		fmt.Fprintf(o.Out, "dashboard: file://%s\n", r.dashboard)
	}
	runErr := r.watch(ctx)
	cancel()
	r.wg.Wait()
	return r.summary(), runErr
}

// running is one Run: the functions it started and what it has seen.
type running struct {
	env       *Env
	o         RunOptions
	start     time.Time
	wg        sync.WaitGroup
	errs      chan error
	stats     map[string]*trigger.Stats
	groups    []string
	dashboard string
	// first and last are the first and last progress readings; active is
	// the election's own end: the last reading that saw more votes counted.
	first, last Progress
	active      time.Time
}

// startFunctions starts register (when selected) and the trigger of every
// selected Kafka-triggered function.
func (r *running) startFunctions(ctx context.Context) error {
	if slices.Contains(r.o.Functions, infra.Cast) {
		if err := r.serveCast(ctx); err != nil {
			return err
		}
	}
	if slices.Contains(r.o.Functions, infra.Register) {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			if err := registerElection(ctx, r.env, r.o); err != nil && ctx.Err() == nil {
				r.errs <- fmt.Errorf("register: %w", err)
			}
		}()
	}
	for _, t := range infra.Triggers {
		if !slices.Contains(r.o.Functions, t.Function) {
			continue
		}
		inv := r.o.Invokers[t.Function]
		if inv == nil {
			var err error
			if inv, err = r.env.Invoker(t.Function); err != nil {
				return err
			}
		}
		st := &trigger.Stats{}
		r.stats[t.Function], r.groups = st, append(r.groups, t.Group)
		trig, err := r.env.Transport().Trigger(t, TriggerOptions{BatchSize: r.o.BatchSize[t.Function], LeaseTTL: r.o.LeaseTTL}, inv, st)
		if err != nil {
			return err
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			if err := trig.Run(ctx); err != nil && ctx.Err() == nil {
				r.errs <- fmt.Errorf("%s trigger: %w", t.Function, err)
			}
		}()
	}
	return nil
}

// serveCast serves the cast function on CAST_ADDR until ctx ends; the
// dashboard links to it (unless CAST_URL names another address).
func (r *running) serveCast(ctx context.Context) error {
	inv := r.o.Invokers[infra.Cast]
	if inv == nil {
		var err error
		if inv, err = r.env.Invoker(infra.Cast); err != nil {
			return err
		}
	}
	srv, err := ServeCast(r.env.Config.Cast.Addr, inv, r.env.Log)
	if err != nil {
		return err
	}
	if r.env.Config.Cast.URL == "" {
		r.env.Config.Cast.URL = srv.URL
	}
	fmt.Fprintf(r.o.Out, "ballot page: %s (voters' tokens: %s)\n", r.env.Config.Cast.PublicURL(), r.env.TokensFile())
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		<-ctx.Done()
		srv.Close()
	}()
	return nil
}

// watch reports progress every second until ctx ends, a function fails, or
// (UntilDone) the election is fully counted: two readings in a row with
// everything consumed, the second one's end offsets including whatever the
// first one's consumers produced last.
func (r *running) watch(ctx context.Context) error {
	var err error
	if r.first.Tallied, _, err = r.env.Deps.Store.Progress(ctx, r.env.Config.Topics.Votes); err != nil {
		return err
	}
	r.last, r.active = r.first, r.start
	rep := newReporter(r.o.Out, r.o.Terminal, r.env.Log)
	defer rep.finish()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastAt, quiet := time.Now(), 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-r.errs:
			return err
		case <-tick.C:
		}
		p, done, err := progress(ctx, r.env, r.env.Transport(), r.groups)
		if err != nil {
			if ctx.Err() == nil {
				r.env.Log.Debug("progress", "error", err)
			}
			continue
		}
		now := time.Now()
		if dt := now.Sub(lastAt).Seconds(); dt > 0 {
			p.Rate = float64(p.Tallied-r.last.Tallied) / dt
		}
		if p.Tallied > r.last.Tallied {
			r.active = now
		}
		r.last, lastAt = p, now
		rep.update(p)
		// Real voters only (cast without ballot): done once every voter who
		// votes has been counted, not when the topics are merely caught up.
		if done && (slices.Contains(r.o.Functions, infra.Ballot) || !slices.Contains(r.o.Functions, infra.Cast) || p.Tallied >= p.expected()) {
			quiet++
		} else {
			quiet = 0
		}
		if r.o.UntilDone && quiet >= 2 {
			return nil
		}
	}
}

// summary says what the run did; its rate is over the election's own span.
func (r *running) summary() Summary {
	active := r.active
	if st := r.stats[infra.Tally]; st != nil && st.LastProcessed().After(r.start) {
		active = st.LastProcessed() // the last batch counted, to the moment
	}
	sum := Summary{Start: r.start, Seconds: active.Sub(r.start).Seconds(), Voters: r.last.Voters, Voting: r.last.Voting, Tallied: r.last.Tallied,
		Rejected: r.last.Rejected, TalliedHere: r.last.Tallied - r.first.Tallied, Dashboard: r.dashboard, Stats: r.stats}
	for _, st := range r.stats {
		sum.Skipped += st.Get("skipped")
	}
	if sum.Seconds > 0 {
		sum.VotesPerSec = float64(sum.TalliedHere) / sum.Seconds
	}
	return sum
}

// registerElection invokes the register function through the Lambda
// handler path, as `aws lambda invoke` would.
func registerElection(ctx context.Context, env *Env, o RunOptions) error {
	req := register.Request{Voters: o.Voters, Candidates: o.Candidates, Seed: &o.Seed, Rate: o.Rate}
	if o.Turnout != 0 {
		req.Turnout = &o.Turnout
	}
	payload, err := json.Marshal(req)
	if err != nil {
		return err
	}
	var inv trigger.Invoker
	if remote := o.Invokers[infra.Register]; remote == nil {
		p, err := env.Register()
		if err != nil {
			return err
		}
		inv = lambda.NewHandler(p.Register)
	}
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
		if e.RollComplete {
			p.Voting = e.Voting
		}
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
	expected := sum.Voting
	if expected == 0 {
		expected = sum.Voters // the roll is not complete yet
	}
	fmt.Fprintf(w, "\n%d of %d votes tallied, %d rejected", sum.Tallied, expected, sum.Rejected)
	if sum.Voting > 0 && sum.Voting < sum.Voters {
		fmt.Fprintf(w, " (%d of %d voters vote: turnout %.1f%%)", sum.Voting, sum.Voters, 100*float64(sum.Voting)/float64(sum.Voters))
	}
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
