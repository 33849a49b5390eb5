package bench_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/votingpipe/voting/local/bench"
)

// The aggregate of runs gives each figure's median and spread, ratios to
// COPY as the median of each run's ratio, and keeps every run.
func TestAggregateMediansAndSpread(t *testing.T) {
	run := func(copyRate, drain float64, pg bool) bench.Result {
		return bench.Result{Voters: 10, Partitions: 2, CopyRowsPerS: copyRate, TallyDrainVotesPerS: drain, AuditOK: true,
			Costs: []bench.PhaseCost{{Phase: bench.PhaseDrain, Votes: 10, WallSeconds: 1, GoMicrosPerVote: drain / 10, PGKnown: pg}}}
	}
	a := bench.NewAggregate([]bench.Result{run(100, 10, true), run(200, 40, false), run(400, 20, true)})
	if m := a.Medians["tally_drain_votes_per_s"]; m != 20 {
		t.Errorf("median drain %v, want 20", m)
	}
	if s := a.Spread["tally_drain_votes_per_s"]; s.Min != 10 || s.Max != 40 || s.Pct != 150 {
		t.Errorf("spread %+v, want 10–40, 150%%", s)
	}
	// Ratios 0.1, 0.2, 0.05: their median, not 20/200.
	if m := a.Medians["tally_drain_votes_per_s_ratio_to_copy"]; m != 0.1 {
		t.Errorf("median ratio %v, want 0.1", m)
	}
	// Postgres CPU is known in two runs: the median of those two.
	if m, ok := a.Medians["cost_tally_drain_pg_cpu_us_per_vote"]; !ok || m != 0 {
		t.Errorf("median Postgres CPU %v (%v)", m, ok)
	}
	if m := a.Medians["cost_tally_drain_go_cpu_us_per_vote"]; m != 2 {
		t.Errorf("median Go CPU %v, want 2", m)
	}
	var table, js bytes.Buffer
	if err := a.Print(&table, false); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"3 runs", "median", "min–max", "10–40", "150.0%", "µs CPU per vote", "audit: OK"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, table.String())
		}
	}
	if err := a.Print(&js, true); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Runs    []map[string]any   `json:"runs"`
		Medians map[string]float64 `json:"medians"`
		Spread  map[string]any     `json:"spread"`
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Runs) != 3 || back.Medians["copy_rows_per_s"] != 200 || back.Spread["copy_rows_per_s"] == nil {
		t.Errorf("--json: %s", js.String())
	}
}
