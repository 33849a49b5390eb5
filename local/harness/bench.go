package harness

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/votingpipe/voting/shared/config"
	"github.com/votingpipe/voting/shared/pipeline"
	"github.com/votingpipe/voting/shared/store"
)

// BenchOptions are the knobs of `go run ./local bench`.
type BenchOptions struct {
	Voters     int64
	Partitions int
	Seed       int64
	// Scaling repeats the election with 1, 2, 4 and 8 partitions.
	Scaling bool
	Log     *slog.Logger
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

// BenchResult is what the benchmark measured, all in one run against one
// Postgres server.
type BenchResult struct {
	Voters     int64 `json:"voters"`
	Partitions int   `json:"partitions"`
	// CopyRowsPerS is the ceiling: raw COPY of as many vote rows into an
	// empty table shaped like votes (with its unique voter_id index).
	CopyRowsPerS float64 `json:"copy_rows_per_s"`
	// CopyBareRowsPerS is the same COPY into a table without any index.
	CopyBareRowsPerS float64 `json:"copy_bare_rows_per_s"`
	// The election end to end: register → ballot → tally (→ dashboard).
	E2ESeconds      float64 `json:"e2e_seconds"`
	E2EVotesPerS    float64 `json:"e2e_votes_per_s"`
	E2ERatioToCopy  float64 `json:"e2e_ratio_to_copy"`
	RegisterSeconds float64 `json:"register_seconds"`
	// The tally alone draining every vote already on votes_topic.
	TallyDrainVotesPerS   float64 `json:"tally_drain_votes_per_s"`
	TallyDrainRatioToCopy float64 `json:"tally_drain_ratio_to_copy"`
	// Time from a vote's Kafka timestamp to the end of the first dashboard
	// render that includes it (sampled votes of partition 0).
	DashboardLatencyP50Ms float64                 `json:"dashboard_latency_p50_ms"`
	DashboardLatencyP99Ms float64                 `json:"dashboard_latency_p99_ms"`
	DashboardSamples      int                     `json:"dashboard_latency_samples"`
	DashboardRenders      int64                   `json:"dashboard_renders"`
	PeakRSSBytes          int64                   `json:"peak_rss_bytes"`
	Stages                map[string]StageFigures `json:"stages"`
	AuditOK               bool                    `json:"audit_ok"`
	Scaling               []ScalingRow            `json:"scaling,omitempty"`
}

// Bench measures the pipeline against the storage ceiling of this machine,
// in scratch databases on cfg's Postgres server that it drops afterwards,
// with an in-memory embedded broker unless KAFKA_BROKERS is set.
func Bench(ctx context.Context, cfg config.Config, o BenchOptions) (BenchResult, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	res := BenchResult{Voters: o.Voters, Partitions: o.Partitions}

	ceilings, err := withScratch(ctx, cfg, "ceiling", func(dsn string) ([2]float64, error) {
		withIndex, bare, err := copyCeiling(ctx, dsn, o.Voters)
		return [2]float64{withIndex, bare}, err
	})
	if err != nil {
		return res, fmt.Errorf("copy ceiling: %w", err)
	}
	ceiling := ceilings[0]
	res.CopyRowsPerS, res.CopyBareRowsPerS = ceilings[0], ceilings[1]

	run, err := benchElection(ctx, cfg, o, o.Partitions, true)
	if err != nil {
		return res, err
	}
	res.E2ESeconds, res.E2EVotesPerS = run.E2ESeconds, run.E2EVotesPerS
	res.RegisterSeconds = run.RegisterSeconds
	res.TallyDrainVotesPerS = run.TallyDrainVotesPerS
	res.DashboardLatencyP50Ms, res.DashboardLatencyP99Ms = run.DashboardLatencyP50Ms, run.DashboardLatencyP99Ms
	res.DashboardSamples, res.DashboardRenders = run.DashboardSamples, run.DashboardRenders
	res.Stages, res.AuditOK = run.Stages, run.AuditOK
	if ceiling > 0 {
		res.E2ERatioToCopy = res.E2EVotesPerS / ceiling
		res.TallyDrainRatioToCopy = res.TallyDrainVotesPerS / ceiling
	}
	if o.Scaling {
		for _, p := range []int{1, 2, 4, 8} {
			r, err := benchElection(ctx, cfg, o, p, false)
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

// withScratch runs fn on a fresh database of cfg's server and drops it after.
func withScratch[T any](ctx context.Context, cfg config.Config, purpose string, fn func(dsn string) (T, error)) (T, error) {
	var zero T
	name := fmt.Sprintf("voting_bench_%s_%d", purpose, os.Getpid())
	dsn, err := store.WithDatabase(cfg.DatabaseURL, name)
	if err != nil {
		return zero, err
	}
	dropDatabase(ctx, cfg.DatabaseURL, name)
	defer dropDatabase(context.WithoutCancel(ctx), cfg.DatabaseURL, name)
	if err := store.EnsureDatabase(ctx, dsn); err != nil {
		return zero, err
	}
	return fn(dsn)
}

func dropDatabase(ctx context.Context, serverDSN, name string) {
	admin, err := store.WithDatabase(serverDSN, "postgres")
	if err != nil {
		return
	}
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)") //nolint:errcheck
}

// copyCeiling COPYs n vote rows (random UUID voter IDs, as registered voters
// have) into an empty table shaped like votes, with its unique voter_id
// index, and returns rows/s: the cost of merely storing the votes, which
// the tally cannot beat. It also returns the rate into a bare heap table
// without the index, for reference.
func copyCeiling(ctx context.Context, dsn string, n int64) (withIndex, bare float64, err error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close(ctx)
	ids := make([]string, n)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range ids {
		ids[i] = fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", rng.Uint32(), rng.Uint32()&0xffff, rng.Uint32()&0xfff,
			rng.Uint32()&0xfff, rng.Uint64()&0xffffffffffff)
	}
	cands := []string{"b4c79a4e-b5c8-450e-a49e-cbcfac73a322", "15408f3c-1c3c-4a24-a89d-8e1bb25ddd9b", "16f71e25-6e6f-4092-a705-b4b31703d612"}
	copyInto := func(table string) (float64, error) {
		at := time.Now()
		var i int64
		t0 := time.Now()
		_, err := conn.CopyFrom(ctx, pgx.Identifier{table},
			[]string{"voter_id", "candidate_id", "voting_time", "vote", "src_partition", "src_offset"},
			pgx.CopyFromFunc(func() ([]any, error) {
				if i == n {
					return nil, nil
				}
				row := []any{ids[i], cands[i%3], at, int32(1), int32(i % 6), i}
				i++
				return row, nil
			}))
		if err != nil {
			return 0, err
		}
		return float64(n) / time.Since(t0).Seconds(), nil
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE copy_ceiling (voter_id text COLLATE "C" NOT NULL UNIQUE,
		candidate_id text COLLATE "C" NOT NULL, voting_time timestamptz NOT NULL, vote int NOT NULL DEFAULT 1,
		src_partition int, src_offset bigint);
		CREATE TABLE copy_bare (voter_id text, candidate_id text, voting_time timestamptz, vote int,
		src_partition int, src_offset bigint)`); err != nil {
		return 0, 0, err
	}
	if withIndex, err = copyInto("copy_ceiling"); err != nil {
		return 0, 0, err
	}
	if bare, err = copyInto("copy_bare"); err != nil {
		return 0, 0, err
	}
	var c1, c2 int64
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM copy_ceiling), (SELECT count(*) FROM copy_bare)`).Scan(&c1, &c2); err != nil || c1 != n || c2 != n {
		return 0, 0, fmt.Errorf("copied %d and %d of %d rows (%v)", c1, c2, n, err)
	}
	return withIndex, bare, nil
}

// electionRun is one benchmarked election.
type electionRun struct {
	E2ESeconds, E2EVotesPerS, RegisterSeconds, TallyDrainVotesPerS float64
	DashboardLatencyP50Ms, DashboardLatencyP99Ms                   float64
	DashboardSamples                                               int
	DashboardRenders                                               int64
	Stages                                                         map[string]StageFigures
	AuditOK                                                        bool
}

func benchElection(ctx context.Context, cfg config.Config, o BenchOptions, partitions int, withDashboard bool) (electionRun, error) {
	return withScratch(ctx, cfg, fmt.Sprintf("p%d", partitions), func(dsn string) (electionRun, error) {
		var run electionRun
		c := cfg
		c.DatabaseURL = dsn
		c.Kafka.Partitions = partitions
		dir, err := os.MkdirTemp("", "voting-bench-dashboard")
		if err != nil {
			return run, err
		}
		defer os.RemoveAll(dir)
		c.Dashboard.Dir = dir
		if len(c.Kafka.Brokers) > 0 {
			// A shared broker: topics of this run only, deleted afterwards.
			suffix := fmt.Sprintf("_bench%d_p%d", os.Getpid(), partitions)
			for _, t := range []*string{&c.Topics.Voters, &c.Topics.Votes, &c.Topics.CandidateTotals,
				&c.Topics.TurnoutTotals, &c.Topics.VotesDLQ, &c.Topics.VotersDLQ} {
				*t += suffix
			}
		}
		// The embedded broker keeps its records on disk, as local runs do, so
		// the peak RSS is the pipeline's and not a million records in memory.
		state, err := os.MkdirTemp("", "voting-bench-state")
		if err != nil {
			return run, err
		}
		defer os.RemoveAll(state)
		env, err := Open(ctx, c, o.Log, EnvOptions{StateDir: state})
		if err != nil {
			return run, err
		}
		defer env.Close()
		if len(cfg.Kafka.Brokers) > 0 {
			defer kadm.NewClient(env.Deps.Kafka).DeleteTopics(context.WithoutCancel(ctx), c.Topics.All()...) //nolint:errcheck
		}

		functions := []string{pipeline.Register, pipeline.Ballot, pipeline.Tally}
		invokers := map[string]Invoker{}
		timers := map[string]*timedInvoker{}
		for _, fn := range []string{pipeline.Ballot, pipeline.Tally} {
			inv, err := env.Invoker(fn)
			if err != nil {
				return run, err
			}
			timers[fn] = &timedInvoker{inner: inv}
			invokers[fn] = timers[fn]
		}
		var sampler *latencySampler
		if withDashboard {
			if inv, err := env.Invoker(pipeline.Dashboard); err == nil {
				sampler = newLatencySampler(env, inv, o.Voters/int64(partitions)/2000)
				invokers[pipeline.Dashboard] = sampler
				functions = append(functions, pipeline.Dashboard)
				go sampler.consume(ctx)
			} else {
				o.Log.Warn("dashboard not measured", "error", err)
			}
		}

		sum, err := Run(ctx, env, RunOptions{Voters: o.Voters, Candidates: 3, Seed: o.Seed, UntilDone: true,
			Functions: functions, Invokers: invokers, Out: io.Discard})
		if err != nil {
			return run, err
		}
		if sum.Tallied != o.Voters {
			return run, fmt.Errorf("the election ended with %d of %d votes tallied", sum.Tallied, o.Voters)
		}
		if sampler != nil {
			sampler.stop()
		}
		// The election is done when the last vote is tallied (and rendered):
		// measure to the last invocation rather than to Run's polling tick.
		last := timers[pipeline.Tally].lastEnd()
		if sampler != nil {
			if l := sampler.lastEnd(); l.After(last) {
				last = l
			}
		}
		run.E2ESeconds = last.Sub(sum.Start).Seconds()
		run.E2EVotesPerS = float64(o.Voters) / run.E2ESeconds
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
			run.DashboardLatencyP50Ms, run.DashboardLatencyP99Ms, run.DashboardSamples = sampler.percentiles()
			run.DashboardRenders = sum.Stats[pipeline.Dashboard].Invocations.Load()
		}
		rep, err := Audit(ctx, env, io.Discard)
		if err != nil {
			return run, err
		}
		run.AuditOK = rep.OK()

		// The tally alone, from scratch, over the votes already on the topic.
		if _, err := env.Deps.Store.Pool().Exec(ctx, `TRUNCATE votes, tally_candidate, tally_state, tally_gender,
			tally_age_band, tally_timeline, rejected_votes`); err != nil {
			return run, err
		}
		tg, _ := pipeline.TriggerFor(pipeline.Tally)
		if _, err := kadm.NewClient(env.Deps.Kafka).DeleteGroup(ctx, tg.Group); err != nil {
			return run, fmt.Errorf("reset the tally group: %w", err)
		}
		drain := &timedInvoker{inner: timers[pipeline.Tally].inner}
		dsum, err := Run(ctx, env, RunOptions{UntilDone: true, Functions: []string{pipeline.Tally},
			Invokers: map[string]Invoker{pipeline.Tally: drain}, Out: io.Discard})
		if err != nil {
			return run, err
		}
		if dsum.Tallied != o.Voters {
			return run, fmt.Errorf("the drain ended with %d of %d votes tallied", dsum.Tallied, o.Voters)
		}
		run.TallyDrainVotesPerS = float64(o.Voters) / drain.lastEnd().Sub(dsum.Start).Seconds()
		return run, nil
	})
}

// timedInvoker records when a function was first and last busy.
type timedInvoker struct {
	inner       Invoker
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

// latencySampler wraps the dashboard function and measures, for sampled
// votes, the time from the vote's Kafka timestamp to the end of the first
// render whose snapshot includes it. Which votes a render includes is read
// just before it starts (anything counted later is credited to the next
// render), so the figures err on the slow side.
type latencySampler struct {
	timedInvoker
	env     *Env
	every   int64
	mu      sync.Mutex
	pending map[string]time.Time
	lat     []time.Duration
	cancel  context.CancelFunc
}

func newLatencySampler(env *Env, inv Invoker, every int64) *latencySampler {
	return &latencySampler{timedInvoker: timedInvoker{inner: inv}, env: env, every: max(every, 1), pending: map[string]time.Time{}}
}

// consume reads partition 0 of votes_topic and remembers every n-th vote.
func (s *latencySampler) consume(ctx context.Context) {
	ctx, s.cancel = context.WithCancel(ctx)
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

func (s *latencySampler) stop() {
	if s.cancel != nil {
		s.cancel()
	}
}

func (s *latencySampler) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	s.mu.Lock()
	ids := make([]string, 0, len(s.pending))
	for id := range s.pending {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	var counted []string
	if len(ids) > 0 {
		rows, err := s.env.Deps.Store.Pool().Query(ctx, `SELECT voter_id FROM votes WHERE voter_id = ANY($1)`, ids)
		if err == nil {
			counted, _ = pgx.CollectRows(rows, pgx.RowTo[string])
		}
	}
	out, err := s.timedInvoker.Invoke(ctx, payload)
	if err == nil {
		now := time.Now()
		s.mu.Lock()
		for _, id := range counted {
			// A render that overlapped this one may have taken it already.
			if ts, ok := s.pending[id]; ok {
				s.lat = append(s.lat, now.Sub(ts))
				delete(s.pending, id)
			}
		}
		s.mu.Unlock()
	}
	return out, err
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

// Print writes the result as a table.
func (r BenchResult) Print(w io.Writer, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		return enc.Encode(r)
	}
	ratio := func(x float64) string { return fmt.Sprintf("%.2f × COPY", x) }
	fmt.Fprintf(w, "benchmark: %d voters, %d partitions, this machine, one run\n\n", r.Voters, r.Partitions)
	fmt.Fprintf(w, "%-44s %14s  %s\n", "measure", "value", "against the ceiling")
	fmt.Fprintf(w, "%-44s %14.0f  %s\n", "ceiling: raw COPY of vote rows (rows/s)", r.CopyRowsPerS, "1.00 × COPY")
	fmt.Fprintf(w, "%-44s %14.0f  %s\n", "  (same COPY with no unique index)", r.CopyBareRowsPerS, ratio(r.CopyBareRowsPerS/r.CopyRowsPerS))
	fmt.Fprintf(w, "%-44s %14.0f  %s\n", "tally drain, exactly once (votes/s)", r.TallyDrainVotesPerS, ratio(r.TallyDrainRatioToCopy))
	fmt.Fprintf(w, "%-44s %14.0f  %s\n", "election end to end (votes/s)", r.E2EVotesPerS, ratio(r.E2ERatioToCopy))
	fmt.Fprintf(w, "%-44s %14.1f\n", "election end to end (s)", r.E2ESeconds)
	fmt.Fprintf(w, "%-44s %14.1f\n", "  of which register published all (s)", r.RegisterSeconds)
	if r.DashboardSamples > 0 {
		fmt.Fprintf(w, "%-44s %14.0f\n", "vote → dashboard latency p50 (ms)", r.DashboardLatencyP50Ms)
		fmt.Fprintf(w, "%-44s %14.0f  (%d sampled votes, %d renders)\n", "vote → dashboard latency p99 (ms)", r.DashboardLatencyP99Ms, r.DashboardSamples, r.DashboardRenders)
	}
	fmt.Fprintf(w, "%-44s %14.0f\n", "peak RSS (MiB)", float64(r.PeakRSSBytes)/(1<<20))
	fmt.Fprintf(w, "%-44s %14v\n", "audit", map[bool]string{true: "OK", false: "MISMATCH"}[r.AuditOK])
	fmt.Fprintf(w, "\n%-10s %10s %12s %10s %14s\n", "stage", "records", "invocations", "busy (s)", "records/s")
	stages := slices.Collect(func(yield func(string) bool) {
		for k := range r.Stages {
			if !yield(k) {
				return
			}
		}
	})
	slices.SortFunc(stages, func(a, b string) int { return cmp.Compare(a, b) })
	for _, s := range stages {
		f := r.Stages[s]
		fmt.Fprintf(w, "%-10s %10d %12d %10.1f %14.0f\n", s, f.Records, f.Invocations, f.Seconds, f.PerSecond)
	}
	if len(r.Scaling) > 0 {
		fmt.Fprintf(w, "\n%-10s %14s %12s %18s\n", "partitions", "e2e votes/s", "e2e (s)", "tally drain votes/s")
		for _, row := range r.Scaling {
			fmt.Fprintf(w, "%-10d %14.0f %12.1f %18.0f\n", row.Partitions, row.E2EVotesPerS, row.E2ESeconds, row.TallyDrainVotesPerS)
		}
	}
	return nil
}
