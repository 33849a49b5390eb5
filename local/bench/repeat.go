package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/votingpipe/voting/shared/config"
)

// Aggregate is the benchmark run Options.Repeat times: every run, and for
// each figure its median and spread over the runs.
type Aggregate struct {
	Voters     int64    `json:"voters"`
	Partitions int      `json:"partitions"`
	Runs       []Result `json:"runs"`
	// Medians are the figures' medians over the runs, by name (a ratio to
	// COPY is the median of the runs' ratios, not a ratio of medians).
	Medians map[string]float64 `json:"medians"`
	// Spread is each figure's minimum and maximum over the runs, and
	// (max − min) / median in %.
	Spread map[string]Spread `json:"spread"`
}

// Spread is how far a figure varied over the runs.
type Spread struct {
	Min float64 `json:"min"`
	Max float64 `json:"max"`
	// Pct is (Max − Min) / |median| × 100 (0 when the median is 0).
	Pct float64 `json:"pct_of_median"`
}

// Repeat runs the whole measurement o.Repeat times (at least once), one
// run after the other, and aggregates the runs.
func Repeat(ctx context.Context, cfg config.Config, o Options) (Aggregate, error) {
	var runs []Result
	for i := range max(o.Repeat, 1) {
		if o.Log != nil {
			o.Log.Info(fmt.Sprintf("bench: run %d of %d", i+1, max(o.Repeat, 1)))
		}
		r, err := run(ctx, cfg, o, i)
		if err != nil {
			return Aggregate{}, fmt.Errorf("run %d: %w", i+1, err)
		}
		runs = append(runs, r)
	}
	return NewAggregate(runs), nil
}

// NewAggregate computes the medians and spreads of runs (of one
// configuration).
func NewAggregate(runs []Result) Aggregate {
	a := Aggregate{Runs: runs, Medians: map[string]float64{}, Spread: map[string]Spread{}}
	if len(runs) == 0 {
		return a
	}
	a.Voters, a.Partitions = runs[0].Voters, runs[0].Partitions
	for _, sec := range sections(runs[0]) {
		for _, f := range sec.figs {
			for _, key := range []string{f.key, f.ratioKey()} {
				if key == "" {
					continue
				}
				vs := a.values(f, key == f.ratioKey())
				if len(vs) == 0 {
					continue
				}
				m := median(vs)
				a.Medians[key] = m
				sp := Spread{Min: slices.Min(vs), Max: slices.Max(vs)}
				if m != 0 {
					sp.Pct = (sp.Max - sp.Min) / math.Abs(m) * 100
				}
				a.Spread[key] = sp
			}
		}
	}
	return a
}

// values is the figure in every run that has it (or its ratio to COPY).
func (a Aggregate) values(f figure, ratio bool) []float64 {
	var vs []float64
	for _, r := range a.Runs {
		v, ok := f.get(r)
		if !ok {
			continue
		}
		if ratio {
			if r.CopyRowsPerS <= 0 {
				continue
			}
			v /= r.CopyRowsPerS
		}
		vs = append(vs, v)
	}
	return vs
}

func median(vs []float64) float64 {
	s := slices.Sorted(slices.Values(vs))
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

// figure is one printed measure: its JSON name, its label (with its unit),
// how many decimals, and whether it is also given against COPY.
type figure struct {
	key, label string
	prec       int
	ratio      bool
	get        func(Result) (float64, bool)
}

func (f figure) ratioKey() string {
	if !f.ratio {
		return ""
	}
	return f.key + "_ratio_to_copy"
}

type section struct {
	title string
	figs  []figure
}

// always wraps a getter of a figure every run has.
func always(get func(Result) float64) func(Result) (float64, bool) {
	return func(r Result) (float64, bool) { return get(r), true }
}

// positive is a figure only a run that measured it has (it is > 0).
func positive(get func(Result) float64) func(Result) (float64, bool) {
	return func(r Result) (float64, bool) { v := get(r); return v, v > 0 }
}

// sections lists the figures, in print order, that run r (the first of
// the runs) shows.
func sections(r Result) []section {
	main := section{figs: []figure{
		{"copy_rows_per_s", "ceiling: raw COPY of vote rows (rows/s)", 0, true, always(func(r Result) float64 { return r.CopyRowsPerS })},
		{"copy_bare_rows_per_s", "  the same COPY with no unique index (rows/s)", 0, true, always(func(r Result) float64 { return r.CopyBareRowsPerS })},
		{"tally_statement_votes_per_s", "tally statement alone, exactly once (votes/s)", 0, true, always(func(r Result) float64 { return r.TallyStatementVotesPerS })},
		{"tally_drain_votes_per_s", "tally drain via Kafka + Lambda events (votes/s)", 0, true, always(func(r Result) float64 { return r.TallyDrainVotesPerS })},
		{"e2e_votes_per_s", "election end to end, full speed (votes/s)", 0, true, always(func(r Result) float64 { return r.E2EVotesPerS })},
		{"e2e_seconds", "election end to end (s)", 1, false, always(func(r Result) float64 { return r.E2ESeconds })},
		{"register_seconds", "  of which register published all (s)", 1, false, always(func(r Result) float64 { return r.RegisterSeconds })},
		{"dashboard_latency_p50_ms", fmt.Sprintf("vote → dashboard p50 at %.0f votes/s (ms)", r.LatencyRate), 0, false, always(func(r Result) float64 { return r.DashboardLatencyP50Ms })},
		{"dashboard_latency_p99_ms", fmt.Sprintf("vote → dashboard p99 at %.0f votes/s (ms)", r.LatencyRate), 0, false, always(func(r Result) float64 { return r.DashboardLatencyP99Ms })},
		{"dashboard_latency_samples", "  sampled votes", 0, false, always(func(r Result) float64 { return float64(r.DashboardSamples) })},
		{"dashboard_renders", "  renders", 0, false, always(func(r Result) float64 { return float64(r.DashboardRenders) })},
		{"full_speed_dashboard_latency_p50_ms", "vote → dashboard p50 at full speed (ms)", 0, false, always(func(r Result) float64 { return r.FullSpeedLatencyP50Ms })},
		{"full_speed_dashboard_latency_p99_ms", "vote → dashboard p99 at full speed (ms)", 0, false, always(func(r Result) float64 { return r.FullSpeedLatencyP99Ms })},
		{"peak_rss_mib", "peak RSS (MiB)", 0, false, always(func(r Result) float64 { return float64(r.PeakRSSBytes) / (1 << 20) })},
	}}
	rc := r.Render
	results := section{title: fmt.Sprintf("results by state (the map): tally drain (lost = 1 − with/without) and dashboard render\n(%d states, %d candidates, the full-speed election's final snapshot)",
		rc.States, rc.Candidates), figs: []figure{
		{"tally_drain_votes_per_s", "tally drain with results by state (votes/s)", 0, true, always(func(r Result) float64 { return r.TallyDrainVotesPerS })},
		{"tally_drain_without_results_by_state_votes_per_s", "tally drain without results by state (votes/s)", 0, true, positive(func(r Result) float64 { return r.TallyDrainNoResultsVotesPerS })},
		{"tally_drain_busy_span_votes_per_s", "  with, over the tally's busy span (votes/s)", 0, false, positive(func(r Result) float64 { return r.TallyDrainBusyVotesPerS })},
		{"tally_drain_without_results_by_state_busy_span_votes_per_s", "  without, over the tally's busy span (votes/s)", 0, false, positive(func(r Result) float64 { return r.TallyDrainNoResultsBusyVotesPerS })},
		{"results_by_state_drain_cost_pct", "drain rate lost to results by state (%, busy span)", 1, false, func(r Result) (float64, bool) {
			return r.ResultsByStateCostPct, r.TallyDrainNoResultsBusyVotesPerS > 0
		}},
		{"render_with_map_ms", "dashboard render with the map (ms per render)", 2, false, positive(func(r Result) float64 { return r.Render.WithMapMs })},
		{"render_without_results_by_state_ms", "  without results by state (ms per render)", 2, false, positive(func(r Result) float64 { return r.Render.WithoutMapMs })},
		{"index_with_map_kib", "index.html with the map (KiB)", 1, false, positive(func(r Result) float64 { return float64(r.Render.WithMapIndexBytes) / 1024 })},
		{"index_without_results_by_state_kib", "  without results by state (KiB)", 1, false, positive(func(r Result) float64 { return float64(r.Render.WithoutMapIndexBytes) / 1024 })},
		{"page_with_map_kib", "whole page (every file) with the map (KiB)", 1, false, positive(func(r Result) float64 { return float64(r.Render.WithMapPageBytes) / 1024 })},
		{"page_without_results_by_state_kib", "  without results by state (KiB)", 1, false, positive(func(r Result) float64 { return float64(r.Render.WithoutMapPageBytes) / 1024 })},
	}}
	costs := section{title: "per-vote cost, by phase: CPU of this process (Go: the functions, the harness and the embedded broker) and of\n" +
		"the local Postgres server's processes (all of them, read from /proc, whoever's work it was; \"own backends\" are\n" +
		"those connected to the phase's scratch database); wall = the phase's start to its last invocation's end;\n" +
		"cores busy = (Go CPU + Postgres CPU) / wall seconds; WAL = how far the server's write-ahead log advanced"}
	for i, c := range r.Costs {
		get := func(f func(PhaseCost) float64, needPG bool) func(Result) (float64, bool) {
			return func(r Result) (float64, bool) {
				if i >= len(r.Costs) || r.Costs[i].Phase != c.Phase || (needPG && !r.Costs[i].PGKnown) {
					return 0, false
				}
				return f(r.Costs[i]), true
			}
		}
		k := "cost_" + strings.NewReplacer(" ", "_", ",", "").Replace(c.Phase) + "_"
		costs.figs = append(costs.figs,
			figure{k + "wall_seconds", c.Phase + ": wall (s)", 1, false, get(func(c PhaseCost) float64 { return c.WallSeconds }, false)},
			figure{k + "go_cpu_us_per_vote", "  Go (µs CPU per vote)", 1, false, get(func(c PhaseCost) float64 { return c.GoMicrosPerVote }, false)},
			figure{k + "pg_cpu_us_per_vote", "  Postgres, local server (µs CPU per vote)", 1, false, get(func(c PhaseCost) float64 { return c.PGMicrosPerVote }, true)},
			figure{k + "pg_own_backends_cpu_us_per_vote", "    of which own backends (µs CPU per vote)", 1, false, get(func(c PhaseCost) float64 { return c.PGOwnMicrosPerVote }, true)},
			figure{k + "cores_busy", "  cores busy", 2, false, get(func(c PhaseCost) float64 { return c.CoresBusy }, true)},
			figure{k + "wal_bytes_per_vote", "  Postgres WAL written (bytes per vote)", 0, false, func(r Result) (float64, bool) {
				if i >= len(r.Costs) || r.Costs[i].Phase != c.Phase || !r.Costs[i].WALKnown {
					return 0, false
				}
				return r.Costs[i].WALBytesPerVote, true
			}},
		)
	}
	kafka := section{title: "Kafka, full-speed election: bytes per vote (key + value + headers of every record, read back after it)"}
	for _, t := range slices.Sorted(maps.Keys(r.Kafka)) {
		kafka.figs = append(kafka.figs, figure{"kafka_" + t + "_bytes_per_vote", t + " (bytes per vote)", 1, false, func(r Result) (float64, bool) {
			tb, ok := r.Kafka[t]
			return tb.BytesPerVote, ok
		}})
	}
	if len(r.Kafka) > 0 {
		kafka.figs = append(kafka.figs, figure{"kafka_bytes_per_vote", "every topic (bytes per vote)", 1, false, always(func(r Result) float64 { return r.KafkaBytesPerVote })})
	}
	stages := section{title: "full-speed election, per stage"}
	for _, s := range slices.Sorted(maps.Keys(r.Stages)) {
		get := func(f func(StageFigures) float64) func(Result) (float64, bool) {
			return func(r Result) (float64, bool) { st, ok := r.Stages[s]; return f(st), ok }
		}
		stages.figs = append(stages.figs,
			figure{"stage_" + s + "_records_per_s", s + ": records/s", 0, false, get(func(f StageFigures) float64 { return f.PerSecond })},
			figure{"stage_" + s + "_busy_seconds", "  busy (s)", 1, false, get(func(f StageFigures) float64 { return f.Seconds })},
			figure{"stage_" + s + "_invocations", "  invocations", 0, false, get(func(f StageFigures) float64 { return float64(f.Invocations) })},
		)
	}
	scaling := section{title: "scaling"}
	for i, row := range r.Scaling {
		get := func(f func(ScalingRow) float64) func(Result) (float64, bool) {
			return func(r Result) (float64, bool) {
				if i >= len(r.Scaling) {
					return 0, false
				}
				return f(r.Scaling[i]), true
			}
		}
		k := fmt.Sprintf("scaling_p%d_", row.Partitions)
		scaling.figs = append(scaling.figs,
			figure{k + "e2e_votes_per_s", fmt.Sprintf("%d partitions: e2e (votes/s)", row.Partitions), 0, true, get(func(s ScalingRow) float64 { return s.E2EVotesPerS })},
			figure{k + "e2e_seconds", "  e2e (s)", 1, false, get(func(s ScalingRow) float64 { return s.E2ESeconds })},
			figure{k + "tally_drain_votes_per_s", "  tally drain (votes/s)", 0, true, get(func(s ScalingRow) float64 { return s.TallyDrainVotesPerS })},
		)
	}
	return []section{main, results, costs, kafka, stages, scaling}
}

// Print writes the runs' medians and spreads as a table, or with asJSON the
// aggregate as one JSON object.
func (a Aggregate) Print(w io.Writer, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(a)
	}
	if len(a.Runs) == 0 {
		return fmt.Errorf("no runs")
	}
	n := len(a.Runs)
	many := n > 1
	if many {
		fmt.Fprintf(w, "benchmark: %d voters, %d partitions, this machine, %d runs: the median of the runs, the\n"+
			"min–max over them and the spread ((max − min) / median); × COPY is the median of the runs' ratios\n\n", a.Voters, a.Partitions, n)
		fmt.Fprintf(w, "%-60s %12s %25s %8s  %s\n", "measure", "median", "min–max", "spread", "against the ceiling")
	} else {
		fmt.Fprintf(w, "benchmark: %d voters, %d partitions, this machine, 1 run\n\n", a.Voters, a.Partitions)
		fmt.Fprintf(w, "%-60s %12s  %s\n", "measure", "value", "against the ceiling")
	}
	num := func(v float64, prec int) string { return fmt.Sprintf("%.*f", prec, v) }
	for _, sec := range sections(a.Runs[0]) {
		if len(sec.figs) == 0 {
			continue
		}
		if sec.title != "" {
			fmt.Fprintf(w, "\n%s:\n", sec.title)
		}
		for _, f := range sec.figs {
			m, ok := a.Medians[f.key]
			if !ok {
				fmt.Fprintf(w, "%-60s %12s\n", f.label, "n/a")
				continue
			}
			sp := a.Spread[f.key]
			ratio := ""
			if rk := f.ratioKey(); rk != "" {
				if rm, ok := a.Medians[rk]; ok {
					ratio = fmt.Sprintf("%.2f × COPY", rm)
					if rs := a.Spread[rk]; many {
						ratio += fmt.Sprintf(" (%.2f–%.2f)", rs.Min, rs.Max)
					}
				}
			}
			if many {
				fmt.Fprintf(w, "%-60s %12s %25s %7.1f%%  %s\n", f.label, num(m, f.prec),
					num(sp.Min, f.prec)+"–"+num(sp.Max, f.prec), sp.Pct, ratio)
			} else {
				fmt.Fprintf(w, "%-60s %12s  %s\n", f.label, num(m, f.prec), ratio)
			}
		}
	}
	bad := 0
	for _, r := range a.Runs {
		if !r.AuditOK {
			bad++
		}
	}
	if bad == 0 {
		fmt.Fprintf(w, "\naudit: OK (every run)\n")
	} else {
		fmt.Fprintf(w, "\naudit: MISMATCH in %d of %d runs\n", bad, n)
	}
	return nil
}
