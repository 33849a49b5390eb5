package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
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
	var table, js bytes.Buffer
	if err := res.Print(&table, false); err != nil || !strings.Contains(table.String(), "× COPY") {
		t.Errorf("table: %v\n%s", err, table.String())
	}
	if err := res.Print(&js, true); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(js.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"copy_rows_per_s", "tally_drain_votes_per_s", "e2e_votes_per_s", "e2e_seconds",
		"dashboard_latency_p50_ms", "dashboard_latency_p99_ms", "peak_rss_bytes"} {
		if _, ok := m[k]; !ok {
			t.Errorf("--json lacks %s", k)
		}
	}
}
