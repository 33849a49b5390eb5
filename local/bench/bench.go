// Package bench measures the pipeline on this machine against its storage
// ceiling, measured in the same run (go run ./local bench): the tally
// statement alone, the tally draining a backlog, the election end to end,
// vote-to-dashboard latency and peak memory.
package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/votingpipe/voting/infra"
	"github.com/votingpipe/voting/local/harness"
	"github.com/votingpipe/voting/local/trigger"
	"github.com/votingpipe/voting/shared/config"
	"github.com/votingpipe/voting/shared/dashboard"
	"github.com/votingpipe/voting/shared/election"
	"github.com/votingpipe/voting/shared/generator"
	"github.com/votingpipe/voting/shared/kafkaevent"
	"github.com/votingpipe/voting/shared/store"
	"github.com/votingpipe/voting/shared/tally"
)

// Options are the knobs of `go run ./local bench`.
type Options struct {
	Voters     int64
	Partitions int
	Seed       int64
	// LatencyRate is the sustained vote rate at which vote-to-dashboard
	// latency is measured (default: what a 1,000,000-voter election in 60 s
	// needs).
	LatencyRate float64
	// Scaling repeats the election with 1, 2, 4 and 8 partitions.
	Scaling bool
	// Repeat is how many times Repeat runs the whole measurement (default 1).
	Repeat int
	// MemProfile, when set, is where the first run writes a heap profile
	// (runtime/pprof) at its peak: right after the full-speed election,
	// with its environment still open.
	MemProfile string
	Log        *slog.Logger
}

// StageFigures are one function's throughput during the election.
type StageFigures struct {
	Records     int64   `json:"records"`
	Invocations int64   `json:"invocations"`
	Seconds     float64 `json:"seconds"`
	PerSecond   float64 `json:"records_per_s"`
}

// ScalingRow is one partition count of the scaling table.
type ScalingRow struct {
	Partitions          int     `json:"partitions"`
	E2EVotesPerS        float64 `json:"e2e_votes_per_s"`
	E2ESeconds          float64 `json:"e2e_seconds"`
	TallyDrainVotesPerS float64 `json:"tally_drain_votes_per_s"`
}

// Result is what the benchmark measured, all in one run against one
// Postgres server.
type Result struct {
	Voters     int64 `json:"voters"`
	Partitions int   `json:"partitions"`
	// CopyRowsPerS is the ceiling: raw COPY of as many vote rows into an
	// empty table shaped like votes (with its unique voter_id index).
	CopyRowsPerS float64 `json:"copy_rows_per_s"`
	// CopyBareRowsPerS is the same COPY into a table without any index.
	CopyBareRowsPerS float64 `json:"copy_bare_rows_per_s"`
	// TallyStatementVotesPerS is the exactly-once tally statement alone,
	// fed from memory by one stream per core in batches of 5,000: the
	// storage side of the tally without Kafka or the Lambda event path.
	TallyStatementVotesPerS   float64 `json:"tally_statement_votes_per_s"`
	TallyStatementRatioToCopy float64 `json:"tally_statement_ratio_to_copy"`
	// The tally function draining a backlog already on votes_topic, through
	// Kafka and the Lambda event path.
	TallyDrainVotesPerS   float64 `json:"tally_drain_votes_per_s"`
	TallyDrainRatioToCopy float64 `json:"tally_drain_ratio_to_copy"`
	// The same drain with the tally statement not maintaining the results
	// by state (store.Options.WithoutResultsByState). The two drains run
	// one after the other on the same database and topic, in alternating
	// order from run to run.
	TallyDrainNoResultsVotesPerS   float64 `json:"tally_drain_without_results_by_state_votes_per_s"`
	TallyDrainNoResultsRatioToCopy float64 `json:"tally_drain_without_results_by_state_ratio_to_copy"`
	// Both drains' rates over the tally's busy span (its first invocation's
	// start to its last one's end: without the consumer group's join and
	// the harness's start and polling), and the share of that rate that
	// maintaining the results by state costs: 1 − with/without, in %.
	TallyDrainBusyVotesPerS          float64 `json:"tally_drain_busy_span_votes_per_s"`
	TallyDrainNoResultsBusyVotesPerS float64 `json:"tally_drain_without_results_by_state_busy_span_votes_per_s"`
	ResultsByStateCostPct            float64 `json:"results_by_state_drain_cost_pct"`
	// The election end to end at full speed: register → ballot → tally →
	// dashboard, all at once.
	E2ESeconds      float64                 `json:"e2e_seconds"`
	E2EVotesPerS    float64                 `json:"e2e_votes_per_s"`
	E2ERatioToCopy  float64                 `json:"e2e_ratio_to_copy"`
	RegisterSeconds float64                 `json:"register_seconds"`
	Stages          map[string]StageFigures `json:"stages"`
	AuditOK         bool                    `json:"audit_ok"`
	// Time from a vote's Kafka timestamp to the end of the first dashboard
	// render that includes it, for sampled votes, while votes arrive at
	// LatencyRate.
	LatencyRate           float64 `json:"latency_votes_per_s"`
	DashboardLatencyP50Ms float64 `json:"dashboard_latency_p50_ms"`
	DashboardLatencyP99Ms float64 `json:"dashboard_latency_p99_ms"`
	DashboardSamples      int     `json:"dashboard_latency_samples"`
	DashboardRenders      int64   `json:"dashboard_renders"`
	// The same latency during the full-speed election, when every stage
	// competes for the machine and queues form.
	FullSpeedLatencyP50Ms float64      `json:"full_speed_dashboard_latency_p50_ms"`
	FullSpeedLatencyP99Ms float64      `json:"full_speed_dashboard_latency_p99_ms"`
	PeakRSSBytes          int64        `json:"peak_rss_bytes"`
	Scaling               []ScalingRow `json:"scaling,omitempty"`
	// Costs are the CPU per vote of each phase (see PhaseCost).
	Costs []PhaseCost `json:"costs"`
	// Kafka is every topic of the full-speed election, read back after it:
	// records, bytes and bytes per vote; KafkaBytesPerVote is their sum.
	Kafka             map[string]TopicBytes `json:"kafka_topics"`
	KafkaBytesPerVote float64               `json:"kafka_bytes_per_vote"`
	// Render is the dashboard render of the full-speed election's final
	// snapshot, with and without its results by state.
	Render RenderCost `json:"dashboard_render"`
}

// DefaultLatencyRate is the vote rate a 1,000,000-voter election needs to
// finish in 60 s.
const DefaultLatencyRate = 1_000_000.0 / 60

// Run measures the pipeline against the storage ceiling of this machine,
// in scratch databases on cfg's Postgres server that it drops afterwards,
// with an embedded broker (on disk, in a temporary directory) unless
// KAFKA_BROKERS is set.
func Run(ctx context.Context, cfg config.Config, o Options) (Result, error) {
	return run(ctx, cfg, o, 0)
}

// run is Run as the index-th of repeated runs: only the first writes the
// heap profile, and the two drains swap order from one run to the next.
func run(ctx context.Context, cfg config.Config, o Options, index int) (Result, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.LatencyRate <= 0 {
		o.LatencyRate = DefaultLatencyRate
	}
	res := Result{Voters: o.Voters, Partitions: o.Partitions, LatencyRate: o.LatencyRate}
	if index > 0 {
		// Each run's peak RSS is its own: return the free heap to the OS
		// and reset the process's high-water mark (Linux; where it cannot
		// be, a later run's peak is the process's so far).
		debug.FreeOSMemory()
		os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) //nolint:errcheck
	}
	step := func(what string) { o.Log.Info("bench: " + what) }

	step("COPY ceiling")
	ceilings, err := withScratch(ctx, cfg, "ceiling", func(dsn string) ([2]float64, error) {
		withIndex, bare, err := copyCeiling(ctx, dsn, o.Voters)
		return [2]float64{withIndex, bare}, err
	})
	if err != nil {
		return res, fmt.Errorf("copy ceiling: %w", err)
	}
	res.CopyRowsPerS, res.CopyBareRowsPerS = ceilings[0], ceilings[1]

	step("tally statement alone")
	statement, err := withScratch(ctx, cfg, "statement", func(dsn string) (PhaseCost, error) {
		return tallyStatement(ctx, dsn, o.Voters, o.Seed)
	})
	if err != nil {
		return res, fmt.Errorf("tally statement: %w", err)
	}
	res.TallyStatementVotesPerS = float64(o.Voters) / statement.WallSeconds
	res.Costs = append(res.Costs, statement)

	step("election at full speed, then the tally draining it again")
	run, err := benchElection(ctx, cfg, o, electionSpec{partitions: o.Partitions, voters: o.Voters, dashboard: true, drain: true,
		main: true, memProfile: index == 0, noResultsFirst: index%2 == 1})
	if err != nil {
		return res, err
	}
	res.E2ESeconds, res.E2EVotesPerS, res.RegisterSeconds = run.E2ESeconds, run.E2EVotesPerS, run.RegisterSeconds
	res.TallyDrainVotesPerS, res.Stages, res.AuditOK = run.TallyDrainVotesPerS, run.Stages, run.AuditOK
	res.FullSpeedLatencyP50Ms, res.FullSpeedLatencyP99Ms = run.LatencyP50Ms, run.LatencyP99Ms
	res.TallyDrainNoResultsVotesPerS, res.Kafka, res.Render = run.DrainNoResultsVotesPerS, run.Kafka, run.Render
	res.TallyDrainBusyVotesPerS, res.TallyDrainNoResultsBusyVotesPerS = run.DrainBusyVotesPerS, run.DrainNoResultsBusyVotesPerS
	if res.TallyDrainNoResultsBusyVotesPerS > 0 {
		res.ResultsByStateCostPct = (1 - res.TallyDrainBusyVotesPerS/res.TallyDrainNoResultsBusyVotesPerS) * 100
	}
	for _, tb := range res.Kafka {
		res.KafkaBytesPerVote += tb.BytesPerVote
	}
	res.Costs = append(res.Costs, run.Costs...)

	step(fmt.Sprintf("latency at %.0f votes/s", o.LatencyRate))
	paced := min(o.Voters, int64(o.LatencyRate*12))
	lat, err := benchElection(ctx, cfg, o, electionSpec{partitions: o.Partitions, voters: paced, rate: o.LatencyRate, dashboard: true})
	if err != nil {
		return res, err
	}
	res.DashboardLatencyP50Ms, res.DashboardLatencyP99Ms = lat.LatencyP50Ms, lat.LatencyP99Ms
	res.DashboardSamples, res.DashboardRenders = lat.LatencySamples, lat.Renders
	res.AuditOK = res.AuditOK && lat.AuditOK
	res.Costs = append(res.Costs, lat.Costs...)

	if c := res.CopyRowsPerS; c > 0 {
		res.E2ERatioToCopy = res.E2EVotesPerS / c
		res.TallyDrainRatioToCopy = res.TallyDrainVotesPerS / c
		res.TallyDrainNoResultsRatioToCopy = res.TallyDrainNoResultsVotesPerS / c
		res.TallyStatementRatioToCopy = res.TallyStatementVotesPerS / c
	}
	if o.Scaling {
		for _, p := range []int{1, 2, 4, 8} {
			step(fmt.Sprintf("scaling: %d partitions", p))
			r, err := benchElection(ctx, cfg, o, electionSpec{partitions: p, voters: o.Voters, drain: true})
			if err != nil {
				return res, fmt.Errorf("scaling with %d partitions: %w", p, err)
			}
			res.Scaling = append(res.Scaling, ScalingRow{Partitions: p, E2EVotesPerS: r.E2EVotesPerS,
				E2ESeconds: r.E2ESeconds, TallyDrainVotesPerS: r.TallyDrainVotesPerS})
		}
	}
	res.PeakRSSBytes = peakRSS()
	return res, nil
}

// tallyStatement registers n voters and counts one vote each with
// store.Tally, one stream per core in batches of 5,000, and returns the
// cost of counting them (whose wall time gives votes/s).
func tallyStatement(ctx context.Context, dsn string, n, seed int64) (PhaseCost, error) {
	streams := max(runtime.GOMAXPROCS(0), 1)
	st, err := store.Open(ctx, dsn, store.Options{MaxConns: int32(streams + 1)})
	if err != nil {
		return PhaseCost{}, err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return PhaseCost{}, err
	}
	cands := generator.Candidates(seed, 3)
	rows := make([]election.WeightedCandidate, len(cands))
	for i, c := range cands {
		rows[i] = election.WeightedCandidate{Candidate: c, Weight: 1}
	}
	if _, err := st.BeginElection(ctx, election.Election{Name: "bench", Seed: seed, Voters: n, Candidates: len(cands), Fingerprint: "bench"}, rows); err != nil {
		return PhaseCost{}, err
	}
	ids := make([]string, n)
	const chunk = 50_000
	for from := int64(0); from < n; from += chunk {
		vs := make([]election.Voter, 0, chunk)
		for i := from; i < min(from+chunk, n); i++ {
			vs = append(vs, generator.Voter(seed, int(i)))
			ids[i] = vs[len(vs)-1].VoterID
		}
		if err := st.CopyVoters(ctx, election.RollChunk{From: from, Voters: vs, Voting: int64(len(vs))}); err != nil {
			return PhaseCost{}, err
		}
	}
	if err := st.CompleteRoll(ctx); err != nil {
		return PhaseCost{}, err
	}
	const batch = 5000
	at := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	cost := startCost(dsn)
	for w := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Stream w counts voters w, w+streams, ... as partition w.
			var b election.TallyBatch
			var off int64
			for i := int64(w); i < n; i += int64(streams) {
				b.Ballots = append(b.Ballots, election.BallotAt{Offset: off,
					Ballot: election.Ballot{VoterID: ids[i], CandidateID: cands[i%3].CandidateID, VotingTime: at}})
				off++
				if len(b.Ballots) == batch || i+int64(streams) >= n {
					b.Topic, b.Partition = "votes_topic", int32(w)
					if _, err := st.Tally(ctx, b); err != nil {
						errs <- err
						return
					}
					b.Ballots = b.Ballots[:0]
				}
			}
		}()
	}
	wg.Wait()
	c := cost.end(PhaseStatement, n)
	close(errs)
	for err := range errs {
		return c, err
	}
	counted, _, err := st.Progress(ctx, "votes_topic")
	if err != nil || counted != n {
		return c, fmt.Errorf("counted %d of %d votes (%v)", counted, n, err)
	}
	return c, nil
}

// withScratch runs fn on a fresh database of cfg's server and drops it after.
func withScratch[T any](ctx context.Context, cfg config.Config, purpose string, fn func(dsn string) (T, error)) (T, error) {
	var zero T
	name := fmt.Sprintf("voting_bench_%s_%d", purpose, os.Getpid())
	dsn, err := store.CreateDatabase(ctx, cfg.Database.URL, name)
	if err != nil {
		return zero, err
	}
	defer store.DropDatabase(context.WithoutCancel(ctx), cfg.Database.URL, name) //nolint:errcheck // a scratch database
	return fn(dsn)
}

// copyCeiling COPYs n vote rows (random UUID voter IDs, as registered voters
// have) into an empty table shaped like votes, with its unique voter_id
// index, and returns rows/s: the cost of merely storing the votes, which
// the tally cannot beat. It also returns the rate into a bare heap table
// without the index, for reference.
func copyCeiling(ctx context.Context, dsn string, n int64) (withIndex, bare float64, err error) {
	st, err := store.Open(ctx, dsn, store.Options{MaxConns: 2, Migrate: true})
	if err != nil {
		return 0, 0, err
	}
	defer st.Close()
	ids := make([]string, n)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range ids {
		ids[i] = fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", rng.Uint32(), rng.Uint32()&0xffff, rng.Uint32()&0xfff,
			rng.Uint32()&0xfff, rng.Uint64()&0xffffffffffff)
	}
	cands := []string{"b4c79a4e-b5c8-450e-a49e-cbcfac73a322", "15408f3c-1c3c-4a24-a89d-8e1bb25ddd9b", "16f71e25-6e6f-4092-a705-b4b31703d612"}
	indexed, plain, err := st.CopyCeiling(ctx, n, func(i int64) (string, string) { return ids[i], cands[i%3] })
	if err != nil {
		return 0, 0, err
	}
	return float64(n) / indexed.Seconds(), float64(n) / plain.Seconds(), nil
}

// electionSpec is one benchmarked election.
type electionSpec struct {
	partitions int
	voters     int64
	rate       float64 // votes/s; 0 = full speed
	dashboard  bool    // run the dashboard and measure latency
	drain      bool    // afterwards, measure the tally draining the votes again
	// main is the full-speed election of Run: afterwards it also reads the
	// topics back, measures the dashboard render and, with drain, drains
	// again without results by state (first when noResultsFirst).
	main, noResultsFirst bool
	memProfile           bool // write Options.MemProfile after the election
}

// electionRun is what one election measured.
type electionRun struct {
	E2ESeconds, E2EVotesPerS, RegisterSeconds, TallyDrainVotesPerS float64
	LatencyP50Ms, LatencyP99Ms                                     float64
	LatencySamples                                                 int
	Renders                                                        int64
	Stages                                                         map[string]StageFigures
	AuditOK                                                        bool
	DrainNoResultsVotesPerS, DrainBusyVotesPerS                    float64
	DrainNoResultsBusyVotesPerS                                    float64
	Costs                                                          []PhaseCost
	Kafka                                                          map[string]TopicBytes
	Render                                                         RenderCost
}

func benchElection(ctx context.Context, cfg config.Config, o Options, spec electionSpec) (electionRun, error) {
	name := fmt.Sprintf("p%d", spec.partitions)
	if spec.rate > 0 {
		name += "_paced"
	}
	return withScratch(ctx, cfg, name, func(dsn string) (electionRun, error) {
		env, closeEnv, err := benchEnv(ctx, cfg, o, dsn, name, spec.partitions)
		if err != nil {
			return electionRun{}, err
		}
		defer closeEnv()
		run, tallyInv, err := runElection(ctx, env, o, spec)
		if err != nil {
			return run, err
		}
		if spec.memProfile && o.MemProfile != "" {
			if err := writeHeapProfile(o.MemProfile); err != nil {
				return run, err
			}
		}
		if spec.main {
			if run.Kafka, err = topicBytes(ctx, env, spec.voters); err != nil {
				return run, err
			}
			if run.Render, err = renderCost(ctx, env); err != nil {
				return run, fmt.Errorf("dashboard render: %w", err)
			}
		}
		if !spec.drain {
			return run, nil
		}
		with := func() error {
			rate, cost, err := drainAgain(ctx, env, tallyInv, spec.voters, PhaseDrain, true)
			run.TallyDrainVotesPerS, run.DrainBusyVotesPerS = rate.toLast, rate.busy
			run.Costs = append(run.Costs, cost)
			return err
		}
		without := func() error {
			st, err := store.Open(ctx, dsn, store.Options{MaxConns: env.Config.Database.MaxConns, WithoutResultsByState: true})
			if err != nil {
				return err
			}
			defer st.Close()
			log := env.Log.With("function", infra.Tally)
			p := tally.New(st, env.Deps.Publisher, env.Config.Topics, env.Config.Records, log)
			inv := kafkaevent.Fast(kafkaevent.Handler(p, log))
			rate, cost, err := drainAgain(ctx, env, inv, spec.voters, PhaseDrainNoResults, false)
			run.DrainNoResultsVotesPerS, run.DrainNoResultsBusyVotesPerS = rate.toLast, rate.busy
			run.Costs = append(run.Costs, cost)
			return err
		}
		drains := []func() error{with}
		if spec.main {
			drains = append(drains, without)
			if spec.noResultsFirst {
				drains[0], drains[1] = without, with
			}
		}
		for _, d := range drains {
			if err := d(); err != nil {
				return run, err
			}
		}
		slices.SortStableFunc(run.Costs, func(a, b PhaseCost) int {
			return slices.Index(phaseOrder, a.Phase) - slices.Index(phaseOrder, b.Phase)
		})
		return run, nil
	})
}

// writeHeapProfile writes a heap profile of what is live now to path.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC() // the profile's in-use figures are as of the last GC
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// benchEnv opens a harness environment on the scratch database dsn: the
// embedded broker keeps its records on disk, as local runs do, so the peak
// RSS is the pipeline's and not a million records in memory; on a shared
// broker (KAFKA_BROKERS) the run gets topics of its own, deleted after.
func benchEnv(ctx context.Context, cfg config.Config, o Options, dsn, name string, partitions int) (*harness.Env, func(), error) {
	c := cfg
	c.Database.URL = dsn
	c.Kafka.Partitions = partitions
	dir, err := os.MkdirTemp("", "voting-bench")
	if err != nil {
		return nil, nil, err
	}
	c.Dashboard.Dir = filepath.Join(dir, "dashboard")
	if len(c.Kafka.Brokers) > 0 {
		suffix := fmt.Sprintf("_bench%d_%s", os.Getpid(), name)
		for _, t := range []*string{&c.Topics.Voters, &c.Topics.Votes, &c.Topics.CandidateTotals,
			&c.Topics.TurnoutTotals, &c.Topics.VotesDLQ, &c.Topics.VotersDLQ} {
			*t += suffix
		}
	}
	env, err := harness.Open(ctx, c, o.Log, harness.EnvOptions{StateDir: filepath.Join(dir, "state")})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return env, func() {
		if len(cfg.Kafka.Brokers) > 0 {
			kadm.NewClient(env.Deps.Kafka).DeleteTopics(context.WithoutCancel(ctx), c.Topics.All()...) //nolint:errcheck
		}
		env.Close()
		os.RemoveAll(dir)
	}, nil
}

// runElection runs one election to the end with every function timed (and
// the dashboard's latency sampled when spec says so), and audits it. It
// returns the tally's in-process handler for a drain after.
func runElection(ctx context.Context, env *harness.Env, o Options, spec electionSpec) (electionRun, trigger.Invoker, error) {
	var run electionRun
	functions := []string{infra.Register, infra.Ballot, infra.Tally}
	invokers := map[string]trigger.Invoker{}
	timers := map[string]*timedInvoker{}
	for _, fn := range []string{infra.Ballot, infra.Tally} {
		inv, err := env.Invoker(fn)
		if err != nil {
			return run, nil, err
		}
		timers[fn] = &timedInvoker{inner: inv}
		invokers[fn] = timers[fn]
	}
	var sampler *latencySampler
	if spec.dashboard {
		sampler = newLatencySampler(env, spec.voters/int64(spec.partitions)/2000)
		inv, err := sampler.invoker(ctx)
		if err != nil {
			return run, nil, err
		}
		timers[infra.Dashboard] = &timedInvoker{inner: inv}
		invokers[infra.Dashboard] = timers[infra.Dashboard]
		functions = append(functions, infra.Dashboard)
		sctx, stop := context.WithCancel(ctx)
		defer stop()
		go sampler.consume(sctx)
	}
	phase := PhaseElection
	if spec.rate > 0 {
		phase = PhasePaced
	}
	cost := startCost(env.Config.Database.URL)
	sum, err := harness.Run(ctx, env, harness.RunOptions{Voters: spec.voters, Candidates: 3, Seed: o.Seed, Rate: spec.rate,
		UntilDone: true, Functions: functions, Invokers: invokers, Out: io.Discard})
	if err != nil {
		return run, nil, err
	}
	c := cost.end(phase, spec.voters)
	if sum.Tallied != spec.voters {
		return run, nil, fmt.Errorf("the election ended with %d of %d votes tallied", sum.Tallied, spec.voters)
	}
	// The election is done when the last vote is tallied (and rendered):
	// measure to the last invocation rather than to Run's polling tick.
	last := timers[infra.Tally].lastEnd()
	if d := timers[infra.Dashboard]; d != nil && d.lastEnd().After(last) {
		last = d.lastEnd()
	}
	run.E2ESeconds = last.Sub(sum.Start).Seconds()
	c.activeWall(run.E2ESeconds)
	run.Costs = append(run.Costs, c)
	run.E2EVotesPerS = float64(spec.voters) / run.E2ESeconds
	if e, err := env.Deps.Store.Election(ctx); err == nil && e != nil && e.PublishedAt != nil {
		run.RegisterSeconds = e.PublishedAt.Sub(sum.Start).Seconds()
	}
	run.Stages = map[string]StageFigures{}
	for fn, tm := range timers {
		st := sum.Stats[fn]
		f := StageFigures{Records: st.Records.Load(), Invocations: st.Invocations.Load(), Seconds: tm.span().Seconds()}
		if f.Seconds > 0 {
			f.PerSecond = float64(f.Records) / f.Seconds
		}
		run.Stages[fn] = f
	}
	if sampler != nil {
		run.LatencyP50Ms, run.LatencyP99Ms, run.LatencySamples = sampler.percentiles()
		run.Renders = sampler.renders()
	}
	rep, err := harness.Audit(ctx, env, io.Discard)
	if err != nil {
		return run, nil, err
	}
	run.AuditOK = rep.OK()
	return run, timers[infra.Tally].inner, nil
}

// drainRate is a drain's votes/s from the start of the harness's run to
// the last invocation's end, and over the tally's busy span (first
// invocation's start to last one's end).
type drainRate struct{ toLast, busy float64 }

// drainAgain measures the tally alone, from scratch, over the votes already
// on the topic: the tallies are reset, the group starts over, and it
// returns its votes/s (drainRate) and the drain's cost (phase).
// Afterwards it checks that the results by state were maintained or not,
// as withResults says the tally invoker does.
func drainAgain(ctx context.Context, env *harness.Env, tally trigger.Invoker, voters int64, phase string,
	withResults bool) (drainRate, PhaseCost, error) {
	if err := settle(ctx, env.Config.Database.URL); err != nil {
		return drainRate{}, PhaseCost{}, err
	}
	if err := env.Deps.Store.ResetTallies(ctx); err != nil {
		return drainRate{}, PhaseCost{}, err
	}
	tg, _ := infra.TriggerFor(infra.Tally)
	if _, err := kadm.NewClient(env.Deps.Kafka).DeleteGroup(ctx, tg.Group); err != nil {
		return drainRate{}, PhaseCost{}, fmt.Errorf("reset the tally group: %w", err)
	}
	drain := &timedInvoker{inner: tally}
	cost := startCost(env.Config.Database.URL)
	sum, err := harness.Run(ctx, env, harness.RunOptions{UntilDone: true, Functions: []string{infra.Tally},
		Invokers: map[string]trigger.Invoker{infra.Tally: drain}, Out: io.Discard})
	if err != nil {
		return drainRate{}, PhaseCost{}, err
	}
	c := cost.end(phase, voters)
	c.activeWall(drain.lastEnd().Sub(sum.Start).Seconds())
	if sum.Tallied != voters {
		return drainRate{}, c, fmt.Errorf("%s: the drain ended with %d of %d votes tallied", phase, sum.Tallied, voters)
	}
	snap, err := env.Deps.Store.Snapshot(ctx)
	if err != nil {
		return drainRate{}, c, err
	}
	if got := len(snap.Results) > 0; got != withResults {
		return drainRate{}, c, fmt.Errorf("%s: results by state for %d states after the drain", phase, len(snap.Results))
	}
	return drainRate{toLast: float64(voters) / drain.lastEnd().Sub(sum.Start).Seconds(),
		busy: float64(voters) / drain.span().Seconds()}, c, nil
}

// settle vacuums and analyzes the database at dsn and checkpoints, so that
// no autovacuum of what ran before and no pending checkpoint lands in the
// drain measured next (each drain starts from the same state).
func settle(ctx context.Context, dsn string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `VACUUM ANALYZE`); err != nil {
		return fmt.Errorf("vacuum before the drain: %w", err)
	}
	// CHECKPOINT needs superuser or pg_checkpoint; without it, vacuum alone.
	conn.Exec(ctx, `CHECKPOINT`) //nolint:errcheck
	return nil
}

// timedInvoker records when a function was first and last busy.
type timedInvoker struct {
	inner       trigger.Invoker
	mu          sync.Mutex
	first, last time.Time
}

func (t *timedInvoker) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	start := time.Now()
	out, err := t.inner.Invoke(ctx, payload)
	end := time.Now()
	t.mu.Lock()
	if t.first.IsZero() {
		t.first = start
	}
	t.last = end
	t.mu.Unlock()
	return out, err
}

func (t *timedInvoker) span() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last.Sub(t.first)
}

func (t *timedInvoker) lastEnd() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}

// latencySampler measures, for sampled votes, the time from the vote's
// Kafka timestamp to the end of the first dashboard render that includes it.
// It wraps the dashboard processor's source and publisher: just before a
// render reads its snapshot, it asks which pending sampled votes are
// counted (those are certainly in the snapshot, which is read after); when
// that render is published, each of them has its latency. A vote counted in
// the moment between the two reads is credited to the next render, so the
// figures err on the slow side.
type latencySampler struct {
	env     *harness.Env
	every   int64
	mu      sync.Mutex
	pending map[string]time.Time // sampled voter_id -> its vote's Kafka timestamp
	inRead  []string             // counted before the current render's snapshot
	lat     []time.Duration
	n       int64
}

func newLatencySampler(env *harness.Env, every int64) *latencySampler {
	return &latencySampler{env: env, every: max(every, 1), pending: map[string]time.Time{}}
}

// invoker returns the dashboard function with the sampler around its
// processor, behind the same Lambda handler path as harness.Env.Handler.
func (s *latencySampler) invoker(ctx context.Context) (trigger.Invoker, error) {
	pub, err := s.env.DashboardDestination()
	if err != nil {
		return nil, err
	}
	c := s.env.Config.Dashboard
	proc := &dashboard.Processor{
		Source:      sampledSource{s, s.env.Deps.Store},
		Publisher:   sampledPublisher{s, pub},
		Options:     dashboard.Options{Title: c.Title, RefreshSeconds: c.RefreshSeconds},
		Log:         s.env.Log,
		MinInterval: c.RenderInterval,
	}
	return lambda.NewHandler(kafkaevent.Fast(dashboard.Handler(proc))), nil
}

type sampledSource struct {
	s     *latencySampler
	inner dashboard.Source
}

func (w sampledSource) Snapshot(ctx context.Context) (dashboard.Snapshot, error) {
	s := w.s
	s.mu.Lock()
	ids := make([]string, 0, len(s.pending))
	for id := range s.pending {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	var counted []string
	if len(ids) > 0 {
		var err error
		if counted, err = s.env.Deps.Store.Counted(ctx, ids); err != nil {
			return dashboard.Snapshot{}, err
		}
	}
	s.mu.Lock()
	s.inRead = counted
	s.mu.Unlock()
	return w.inner.Snapshot(ctx)
}

type sampledPublisher struct {
	s     *latencySampler
	inner dashboard.Destination
}

func (w sampledPublisher) Publish(ctx context.Context, p dashboard.Page) error {
	if err := w.inner.Publish(ctx, p); err != nil {
		return err
	}
	s, now := w.s, time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	for _, id := range s.inRead {
		if ts, ok := s.pending[id]; ok {
			s.lat = append(s.lat, now.Sub(ts))
			delete(s.pending, id)
		}
	}
	s.inRead = nil
	return nil
}

// consume reads partition 0 of votes_topic and remembers every n-th vote.
func (s *latencySampler) consume(ctx context.Context) {
	opts, err := s.env.ClientOpts()
	if err != nil {
		return
	}
	cl, err := kgo.NewClient(append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		s.env.Config.Topics.Votes: {0: kgo.NewOffset().AtStart()}}))...)
	if err != nil {
		return
	}
	defer cl.Close()
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset%s.every == 0 {
				s.mu.Lock()
				s.pending[string(r.Key)] = r.Timestamp
				s.mu.Unlock()
			}
		})
	}
}

func (s *latencySampler) renders() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func (s *latencySampler) percentiles() (p50, p99 float64, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.lat) == 0 {
		return 0, 0, 0
	}
	l := slices.Clone(s.lat)
	slices.Sort(l)
	at := func(q float64) float64 {
		return float64(l[min(int(q*float64(len(l))), len(l)-1)]) / float64(time.Millisecond)
	}
	return at(0.50), at(0.99), len(l)
}

// peakRSS returns the process's peak resident set size (Linux), or 0.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// Print writes the result as a table (the same as a one-run Aggregate's),
// or with asJSON as one JSON object.
func (r Result) Print(w io.Writer, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(r)
	}
	return NewAggregate([]Result{r}).Print(w, false)
}
