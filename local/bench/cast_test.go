package bench_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/votingpipe/voting/local/bench"
	"github.com/votingpipe/voting/local/internal/testkit"
	"github.com/votingpipe/voting/shared/config"
)

// A small `bench --cast`: every ballot is accepted, the figures are there,
// and the election audits clean. It checks that the command works, not how
// fast anything is.
func TestBenchCastSmoke(t *testing.T) {
	cfg, err := config.LoadFrom[config.Config](map[string]string{"DATABASE_URL": testkit.NewDatabase(t)}, config.Local)
	if err != nil {
		t.Fatal(err)
	}
	res, err := bench.RunCast(context.Background(), cfg, bench.CastOptions{Voters: 600, Partitions: 2, Seed: 42, Clients: 8,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if !res.AuditOK || res.Errors != 0 || res.Statuses[202] != 600 {
		t.Fatalf("audit %v, errors %d, statuses %v", res.AuditOK, res.Errors, res.Statuses)
	}
	if res.CastsPerS <= 0 || res.CastP99Ms <= 0 || res.DrainVotesPerS <= 0 || res.CastOverDrain <= 0 {
		t.Errorf("a figure is missing: %+v", res)
	}
	var out bytes.Buffer
	if err := res.Print(&out, false); err != nil || !strings.Contains(out.String(), "casts accepted") {
		t.Errorf("printed %q (%v)", out.String(), err)
	}
}
