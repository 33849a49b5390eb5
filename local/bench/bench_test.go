package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/votingpipe/voting/local/bench"
	"github.com/votingpipe/voting/local/internal/testkit"
	"github.com/votingpipe/voting/shared/config"
)

// A small run of the benchmark: every figure is produced and printed, and
// the elections it runs audit clean. It checks that the command works, not
// how fast anything is.
func TestBenchSmoke(t *testing.T) {
	cfg, err := config.LoadFrom[config.Config](map[string]string{"DATABASE_URL": testkit.NewDatabase(t)}, config.Local)
	if err != nil {
		t.Fatal(err)
	}
	res, err := bench.Run(context.Background(), cfg, bench.Options{Voters: 2000, Partitions: 3, Seed: 42, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if !res.AuditOK {
		t.Fatal("a benchmarked election failed its audit")
	}
	for name, v := range map[string]float64{
		"copy": res.CopyRowsPerS, "statement": res.TallyStatementVotesPerS, "drain": res.TallyDrainVotesPerS,
		"e2e": res.E2EVotesPerS, "latency p99": res.DashboardLatencyP99Ms, "ratio": res.TallyDrainRatioToCopy,
	} {
		if v <= 0 {
			t.Errorf("%s figure is %v", name, v)
		}
	}
	if res.DashboardSamples == 0 || res.PeakRSSBytes == 0 || res.Stages["tally"].Records != 2000 {
		t.Errorf("samples %d, rss %d, stages %+v", res.DashboardSamples, res.PeakRSSBytes, res.Stages)
	}
	if res.TallyDrainNoResultsVotesPerS <= 0 || res.TallyDrainBusyVotesPerS <= 0 || res.TallyDrainNoResultsBusyVotesPerS <= 0 {
		t.Errorf("drains with and without results by state: %v, %v (busy span %v, %v)", res.TallyDrainVotesPerS,
			res.TallyDrainNoResultsVotesPerS, res.TallyDrainBusyVotesPerS, res.TallyDrainNoResultsBusyVotesPerS)
	}
	var phases []string
	for _, c := range res.Costs {
		phases = append(phases, c.Phase)
		if c.Votes <= 0 || c.WallSeconds <= 0 || c.GoCPUSeconds <= 0 || c.GoMicrosPerVote <= 0 {
			t.Errorf("cost of %q: %+v", c.Phase, c)
		}
		// The server is local: /proc has its processes.
		if !c.PGKnown || c.PGCPUSeconds < c.PGOwnCPUSeconds || c.CoresBusy <= 0 {
			t.Errorf("Postgres cost of %q: %+v", c.Phase, c)
		}
		// Counting a vote writes its row and index entries to the WAL.
		if !c.WALKnown || c.WALBytesPerVote < 50 {
			t.Errorf("WAL of %q: %+v", c.Phase, c)
		}
	}
	if want := []string{bench.PhaseStatement, bench.PhaseElection, bench.PhaseDrain, bench.PhaseDrainNoResults, bench.PhasePaced}; !slices.Equal(phases, want) {
		t.Errorf("phases %q, want %q", phases, want)
	}
	votes := res.Kafka[cfg.Topics.Votes]
	if votes.Records != 2000 || votes.BytesPerVote <= 0 || res.Kafka[cfg.Topics.Voters].Records != 2000 || res.KafkaBytesPerVote <= votes.BytesPerVote {
		t.Errorf("kafka bytes: %+v", res.Kafka)
	}
	if _, ok := res.Kafka[cfg.Topics.VotesDLQ]; !ok {
		t.Errorf("kafka bytes lack the dead letter topic: %+v", res.Kafka)
	}
	if r := res.Render; r.States == 0 || r.WithMapMs <= 0 || r.WithoutMapMs <= 0 || r.WithMapIndexBytes <= r.WithoutMapIndexBytes {
		t.Errorf("render: %+v", r)
	}
	var table, js bytes.Buffer
	if err := res.Print(&table, false); err != nil || !strings.Contains(table.String(), "× COPY") {
		t.Errorf("table: %v\n%s", err, table.String())
	}
	for _, want := range []string{"1 run", "µs CPU per vote", "bytes per vote", "cores busy", "without results by state"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, table.String())
		}
	}
	if err := res.Print(&js, true); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(js.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"copy_rows_per_s", "tally_drain_votes_per_s", "e2e_votes_per_s", "e2e_seconds",
		"dashboard_latency_p50_ms", "dashboard_latency_p99_ms", "peak_rss_bytes", "costs", "kafka_topics", "dashboard_render",
		"tally_drain_without_results_by_state_votes_per_s"} {
		if _, ok := m[k]; !ok {
			t.Errorf("--json lacks %s", k)
		}
	}
}
