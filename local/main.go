// Command local runs the voting pipeline on one machine: an embedded Kafka
// broker (or KAFKA_BROKERS), Postgres from DATABASE_URL, and every function
// triggered as AWS Lambda would trigger it.
//
//	go run ./local [--voters N] [--candidates N] [--seed N] [--rate R] [--until-done] [--functions a,b]
//	go run ./local invoke FUNCTION -e EVENT.json
//	go run ./local audit
//
// Configuration comes from environment variables (see README.md).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/term"

	"github.com/votingpipe/voting/local/harness"
	"github.com/votingpipe/voting/shared/config"
	"github.com/votingpipe/voting/shared/pipeline"
	"github.com/votingpipe/voting/shared/store"
)

func main() {
	// The harness runs every function in one process: a soft memory limit
	// keeps it bounded, and under it the collector may run half as often as
	// by default (measured: 3% more votes/s). GOMEMLIMIT and GOGC override.
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(768 << 20)
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(200)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		var exit exitCode
		if errors.As(err, &exit) {
			os.Exit(int(exit))
		}
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// exitCode ends the program with a status and no further message.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit %d", int(e)) }

func run(ctx context.Context, args []string) error {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	cfg, err := config.Load(config.Local)
	if err != nil {
		return err
	}
	log := cfg.Logger()
	switch cmd {
	case "run":
		return runPipeline(ctx, cfg, args)
	case "invoke":
		return invoke(ctx, cfg, args)
	case "reset":
		fs := flag.NewFlagSet("reset", flag.ContinueOnError)
		stateDir := fs.String("state-dir", ".voting", "directory of the embedded broker's data")
		yes := fs.Bool("yes", false, "do it (without it, reset only says what it would do)")
		if err := fs.Parse(args); err != nil {
			return err
		}
		return harness.Reset(ctx, cfg, harness.ResetOptions{StateDir: *stateDir, Yes: *yes, Out: os.Stdout})
	case "audit":
		fs := flag.NewFlagSet("audit", flag.ContinueOnError)
		stateDir := fs.String("state-dir", ".voting", "directory of the embedded broker's data")
		transport := fs.String("transport", "", "what carries the records: kafka or nats (NATS_URL); default: the election's")
		if err := fs.Parse(args); err != nil {
			return err
		}
		env, closeEnv, err := openEnv(ctx, cfg, log, *stateDir, electionTransport(ctx, cfg, *transport), true)
		if err != nil {
			return err
		}
		defer closeEnv()
		rep, err := harness.Audit(ctx, env, os.Stdout)
		if err != nil {
			return err
		}
		if !rep.OK() {
			return exitCode(1)
		}
		return nil
	case "bench":
		fs := flag.NewFlagSet("bench", flag.ContinueOnError)
		voters := fs.Int64("voters", 200000, "voters in the benchmarked election")
		partitions := fs.Int("partitions", 6, "partitions of the topics")
		scaling := fs.Bool("scaling", false, "also run with 1, 2, 4 and 8 partitions")
		latencyRate := fs.Float64("latency-rate", harness.DefaultLatencyRate, "votes/s at which vote-to-dashboard latency is measured")
		asJSON := fs.Bool("json", false, "print one JSON object instead of a table")
		cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the benchmark to this file (go tool pprof)")
		if err := fs.Parse(args); err != nil {
			return err
		}
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
		if !*asJSON {
			fmt.Fprintf(os.Stderr, "benchmarking %d voters on %d partitions (scratch databases on %s)...\n",
				*voters, *partitions, config.RedactedURL(cfg.DatabaseURL))
		}
		res, err := harness.Bench(ctx, cfg, harness.BenchOptions{Voters: *voters, Partitions: *partitions,
			Seed: 42, Scaling: *scaling, LatencyRate: *latencyRate, Log: log})
		if err != nil {
			return err
		}
		return res.Print(os.Stdout, *asJSON)
	case "help", "-h", "--help":
		usage()
		return nil
	}
	usage()
	return fmt.Errorf("unknown command %q", cmd)
}

func usage() {
	fmt.Fprint(os.Stderr, `usage:
  go run ./local [flags]                    run the pipeline (go run ./local -h for flags)
  go run ./local invoke FUNCTION -e EVENT    invoke one function once with an event file
  go run ./local audit                       recount and check every tally; exit 1 on mismatch
  go run ./local reset --yes                 start over: drop the election's tables and the embedded broker's state
  go run ./local bench [--voters N] [--partitions N] [--scaling] [--json]
                                             throughput against this machine's COPY ceiling
`)
}

func runPipeline(ctx context.Context, cfg config.Config, args []string) error {
	fs := flag.NewFlagSet("local", flag.ContinueOnError)
	voters := fs.Int64("voters", 1000, "voters on the roll")
	candidates := fs.Int("candidates", 3, "candidates to generate")
	seed := fs.Int64("seed", 42, "seed of the generated election")
	rate := fs.Float64("rate", 0, "votes per second (0: as fast as possible)")
	untilDone := fs.Bool("until-done", false, "exit once every vote is tallied and the dashboard shows it")
	functions := fs.String("functions", strings.Join(pipeline.Functions, ","), "functions to run here")
	partitions := fs.Int("partitions", 0, "partitions of the topics the pipeline creates (default KAFKA_PARTITIONS)")
	stateDir := fs.String("state-dir", ".voting", "directory of the embedded broker's data (kept between runs)")
	transport := fs.String("transport", "", "what carries the records: kafka (embedded or KAFKA_BROKERS) or nats (JetStream at NATS_URL); default: the election's, else kafka")
	invokeEndpoint := fs.String("invoke-endpoint", "", "invoke functions over the Lambda Invoke API instead of in-process: URL (all) or FUNCTION=URL,... (sam local start-lambda, aws-lambda-rie)")
	invokeAWS := fs.Bool("invoke-aws", false, "invoke the functions deployed in AWS Lambda (AWS credential chain and region)")
	functionName := fs.String("lambda-function-name", "{function}", "name a function is invoked by remotely; {function} stands for register, ballot, tally or dashboard")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file (go tool pprof)")
	memProfile := fs.String("memprofile", "", "write a heap profile to this file when the heap peaks (go tool pprof)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	stop, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stop()
	if *memProfile != "" {
		stop := harness.ProfilePeakHeap(*memProfile)
		defer stop()
	}
	var fns []string
	for _, f := range strings.Split(*functions, ",") {
		f = strings.TrimSpace(f)
		if !slices.Contains(pipeline.Functions, f) {
			return fmt.Errorf("--functions: unknown function %q (want some of %s)", f, strings.Join(pipeline.Functions, ","))
		}
		fns = append(fns, f)
	}
	if *partitions > 0 {
		cfg.Kafka.Partitions = *partitions
	}
	log := cfg.Logger()
	endpoints, err := harness.ParseEndpoints(*invokeEndpoint)
	if err != nil {
		return err
	}
	targets := harness.InvokeTargets{Endpoints: endpoints, AWS: *invokeAWS, FunctionName: *functionName}
	invokers, err := targets.Invokers(ctx, fns)
	if err != nil {
		return err
	}
	*transport = electionTransport(ctx, cfg, *transport)
	if targets.Remote() && *transport == "nats" {
		log.Warn("remote functions publish where their own configuration says (Kafka today); with --transport nats their records reach this pipeline only if they publish to the same JetStream streams")
	}
	env, closeEnv, err := openEnv(ctx, cfg, log, *stateDir, *transport, false)
	if err != nil {
		return err
	}
	defer closeEnv()
	if err := harness.CheckCarrier(ctx, env); err != nil {
		return err
	}
	where := "embedded broker (state in " + *stateDir + ")"
	if *transport == "nats" {
		where = "NATS JetStream at " + config.RedactedURL(cfg.NATSURL)
	} else if env.Embedded == nil {
		where = strings.Join(cfg.Kafka.Brokers, ",")
	}
	fmt.Printf("pipeline: %s on %s; database %s\n", strings.Join(fns, ", "), where, config.RedactedURL(cfg.DatabaseURL))

	sum, err := harness.Run(ctx, env, harness.RunOptions{
		Voters: *voters, Candidates: *candidates, Seed: *seed, Rate: *rate,
		UntilDone: *untilDone, Functions: fns, Invokers: invokers,
		Terminal: term.IsTerminal(int(os.Stdout.Fd())), Out: os.Stdout,
	})
	if err != nil {
		return err
	}
	fmt.Printf("\n%d of %d votes tallied, %d rejected", sum.Tallied, sum.Voters, sum.Rejected)
	if earlier := sum.Tallied - sum.TalliedHere; earlier > 0 {
		fmt.Printf(" (%d of them by an earlier run)", earlier)
	}
	fmt.Printf("; this run: %d in %.1fs (%.0f votes/s end to end)\n", sum.TalliedHere, sum.Seconds, sum.VotesPerSec)
	if sum.Skipped > 0 {
		fmt.Printf("skipped %d records of earlier elections (before this election's start on its topics)\n", sum.Skipped)
	}
	for _, fn := range fns {
		if st := sum.Stats[fn]; st != nil {
			inv := st.Invocations.Load()
			avg := 0.0
			if inv > 0 {
				avg = float64(st.Records.Load()) / float64(inv)
			}
			fmt.Printf("  %-9s %8d records in %6d invocations (%.0f per batch), %d failed\n",
				fn, st.Records.Load(), inv, avg, st.Failures.Load())
		}
	}
	if sum.Dashboard != "" {
		fmt.Printf("dashboard: file://%s\n", sum.Dashboard)
	}
	if *untilDone {
		rep, err := harness.Audit(context.WithoutCancel(ctx), env, os.Stdout)
		if err != nil {
			return err
		}
		if !rep.OK() {
			return exitCode(1)
		}
	}
	return nil
}

func invoke(ctx context.Context, cfg config.Config, args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return errors.New("usage: go run ./local invoke FUNCTION -e EVENT.json")
	}
	function, args := args[0], args[1:]
	fs := flag.NewFlagSet("invoke", flag.ContinueOnError)
	event := fs.String("e", "", "event file (JSON), e.g. events/"+function+".json")
	stateDir := fs.String("state-dir", ".voting", "directory of the embedded broker's data")
	transport := fs.String("transport", "", "what the function publishes to: kafka or nats (NATS_URL); default: the election's")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *event == "" {
		return errors.New("invoke: -e EVENT.json is required")
	}
	env, closeEnv, err := openEnv(ctx, cfg, cfg.Logger(), *stateDir, electionTransport(ctx, cfg, *transport), true)
	if err != nil {
		return err
	}
	defer closeEnv()
	return harness.InvokeFile(ctx, env, function, *event, os.Stdout)
}

// electionTransport returns the transport to use: the one asked for, else
// the one the database's election is carried by, else kafka.
func electionTransport(ctx context.Context, cfg config.Config, asked string) string {
	if asked != "" {
		return asked
	}
	if ok, err := store.DatabaseExists(ctx, cfg.DatabaseURL); err != nil || !ok {
		return "kafka"
	}
	st, err := store.Open(ctx, cfg.DatabaseURL, store.Options{MaxConns: 1})
	if err != nil {
		return "kafka"
	}
	defer st.Close()
	if e, err := st.Election(ctx); err == nil && e != nil && e.Carrier.Known() {
		return e.Carrier.Transport
	}
	return "kafka"
}

// startCPUProfile profiles the process into path until stop is called; an
// empty path profiles nothing.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// openEnv opens the harness environment on the chosen transport. shared
// lets a command that only reads or invokes once (audit, invoke) run beside
// a running harness. On NATS the embedded Kafka broker stays in memory.
func openEnv(ctx context.Context, cfg config.Config, log *slog.Logger, stateDir, transport string, shared bool) (*harness.Env, func(), error) {
	env, err := harness.Open(ctx, cfg, log, harness.EnvOptions{StateDir: stateDir, SharedState: shared, InMemory: transport == "nats"})
	if err != nil {
		return nil, nil, err
	}
	closeTransport, err := harness.SelectTransport(ctx, env, transport)
	if err != nil {
		env.Close()
		return nil, nil, err
	}
	return env, func() { closeTransport(); env.Close() }, nil
}
