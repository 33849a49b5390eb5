// Package rietest drives the built Lambda bootstraps through the local
// harness: each function's bootstrap runs under the Lambda runtime
// interface emulator (aws-lambda-rie, the go.mod tool; no Docker) and the
// harness invokes it over the Invoke API, exactly as --invoke-endpoint
// does, for a small election on the embedded Kafka broker and a fresh
// Postgres database. It lives in its own package so building the
// bootstraps does not count against the harness tests' time.
package rietest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/votingpipe/voting/infra"
	"github.com/votingpipe/voting/local/harness"
	"github.com/votingpipe/voting/local/internal/lambdatest"
	"github.com/votingpipe/voting/local/internal/testkit"
	"github.com/votingpipe/voting/local/invoke"
	"github.com/votingpipe/voting/shared/config"
)

// functions run under the emulator for the harness-driven election.
var functions = []string{infra.Register, infra.Ballot, infra.Tally}

// emulate runs bootstrap under the emulator with env as the whole
// environment and returns its invocation URL.
func emulate(t *testing.T, rie, bootstrap string, env map[string]string) (string, *lambdatest.Logs) {
	t.Helper()
	e := lambdatest.Start(t, rie, bootstrap, env)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s logs:\n%s", filepath.Base(filepath.Dir(bootstrap)), e.Logs)
		}
	})
	return e.URL, e.Logs
}

func TestHarnessDrivesBootstrapsUnderEmulator(t *testing.T) {
	start := time.Now()
	dir, rie := build(t)
	t.Logf("built bootstraps and emulator in %s", time.Since(start).Round(time.Millisecond))

	dsn := testkit.NewDatabase(t)
	cfg, err := config.LoadFrom[config.Config](map[string]string{
		"DATABASE_URL":     dsn,
		"DASHBOARD_DIR":    t.TempDir(),
		"KAFKA_PARTITIONS": "2",
	}, config.Local)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	// A persistent embedded broker (in a scratch directory), so the audit
	// checks the votes topic's end offsets too.
	env, err := harness.Open(context.Background(), cfg, log, harness.EnvOptions{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()

	// Each bootstrap sees only what a deployed function would: its
	// configuration in the environment.
	fnEnv := map[string]string{
		"DATABASE_URL":     dsn,
		"KAFKA_BROKERS":    strings.Join(env.Config.Kafka.Brokers, ","),
		"KAFKA_PARTITIONS": "2",
		"DASHBOARD_DIR":    t.TempDir(),
		"LOG_LEVEL":        "warn",
		"AWS_REGION":       "us-east-1",
		"TOKEN_KEY":        strings.Repeat("5e", 32),
		"TOKENS_FILE":      filepath.Join(t.TempDir(), "tokens.csv"),
	}
	var spec []string
	for _, fn := range functions {
		u, _ := emulate(t, rie, filepath.Join(dir, fn, "bootstrap"), fnEnv)
		spec = append(spec, fn+"="+u)
	}
	// What --invoke-endpoint register=URL,ballot=URL,tally=URL builds.
	endpoints, err := invoke.ParseEndpoints(strings.Join(spec, ","))
	if err != nil {
		t.Fatal(err)
	}
	invokers, err := invoke.Targets{Endpoints: endpoints}.Invokers(context.Background(), functions)
	if err != nil {
		t.Fatal(err)
	}

	// A handler error comes back from the emulator as HTTP 200 with an
	// errorType body: the invoker reports it as a function error.
	_, err = invokers[infra.Tally].Invoke(context.Background(), []byte(`{"records": 5}`))
	var fe *invoke.FunctionError
	if !errors.As(err, &fe) {
		t.Fatalf("a malformed event answered %v; want a function error", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const voters = 2000
	sum, err := harness.Run(ctx, env, harness.RunOptions{
		Voters: voters, Candidates: 3, Seed: 21, UntilDone: true, Functions: functions, Out: io.Discard,
		Invokers: invokers,
	})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Tallied != voters || sum.Rejected != 0 {
		t.Fatalf("tallied %d, rejected %d; want %d, 0", sum.Tallied, sum.Rejected, voters)
	}
	var out bytes.Buffer
	rep, err := harness.Audit(context.Background(), env, &out)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("audit:\n%s", out.String())
	}
	for _, p := range rep.Partitions {
		if p.End < 0 {
			t.Fatalf("audit did not check the end offsets:\n%s", out.String())
		}
	}
	t.Logf("election of %d voters through the emulated functions in %.1fs: ballot %d invocations, tally %d",
		voters, sum.Seconds, sum.Stats[infra.Ballot].Invocations.Load(), sum.Stats[infra.Tally].Invocations.Load())
	if f := sum.Stats[infra.Tally].Failures.Load() + sum.Stats[infra.Ballot].Failures.Load(); f != 0 {
		t.Fatalf("%d failed invocations; the single-environment endpoints must be invoked one at a time", f)
	}
}
