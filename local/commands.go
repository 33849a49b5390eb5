package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/votingpipe/voting/infra"
	"github.com/votingpipe/voting/local/bench"
	"github.com/votingpipe/voting/local/harness"
	"github.com/votingpipe/voting/local/invoke"
	"github.com/votingpipe/voting/shared/config"
	"github.com/votingpipe/voting/shared/store"
)

// cli holds what every command shares: the configuration, parsed once, and
// the flags every command has.
type cli struct {
	cfg       config.Config
	log       *slog.Logger
	stateDir  string
	transport string
}

func newRoot() *cobra.Command {
	c := &cli{}
	var o runFlags
	root := &cobra.Command{
		Use:   "local",
		Short: "Run the voting pipeline on this machine, as AWS Lambda would run its functions",
		Long: `Runs the election pipeline on one machine: the register, ballot, tally and dashboard
functions, each triggered as AWS Lambda's Kafka event-source mapping triggers it, on an
embedded Kafka broker (or KAFKA_BROKERS, or NATS JetStream with --transport nats) and
Postgres (DATABASE_URL). Without a command it registers an election, runs it and keeps
running; restarting it resumes. Configuration: environment variables (see README.md).`,
		Example: `  go run ./local --voters 100000 --until-done
  go run ./local --transport nats --voters 1500 --until-done
  go run ./local reset --yes`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load[config.Config](config.Local)
			if err != nil {
				return err
			}
			c.cfg, c.log = cfg, cfg.Log.Logger()
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return c.run(cmd.Context(), o) },
	}
	root.PersistentFlags().StringVar(&c.stateDir, "state-dir", ".voting", "directory of the harness's state: the embedded broker's data, failed batches")
	root.PersistentFlags().StringVar(&c.transport, "transport", "", "what carries the records: kafka (embedded, or KAFKA_BROKERS) or nats (JetStream at NATS_URL); default: the election's, else kafka")
	o.register(root)
	root.AddCommand(c.invokeCmd(), c.auditCmd(), c.resetCmd(), c.benchCmd())
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%w (see %s --help)", err, cmd.CommandPath())
	})
	return root
}

// runFlags are the flags of the pipeline run.
type runFlags struct {
	voters, seed                 int64
	candidates, partitions       int
	rate, turnout                float64
	untilDone, invokeAWS         bool
	functions                    []string
	invokeEndpoint, functionName string
	cpuProfile, memProfile       string
}

func (o *runFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.Int64Var(&o.voters, "voters", 1000, "voters on the roll")
	f.IntVar(&o.candidates, "candidates", 3, "candidates to generate (the original demo's parties first)")
	f.Int64Var(&o.seed, "seed", 42, "seed of the generated election: the election is a pure function of it")
	f.Float64Var(&o.rate, "rate", 0, "voters per second (register paces publication; the vote rate at turnout 1); 0: as fast as possible")
	f.Float64Var(&o.turnout, "turnout", 1, "share of the roll the simulation votes for, 0-1 (0: none, real ballots only); who votes varies by state, age and voter (seeded)")
	f.BoolVar(&o.untilDone, "until-done", false, "exit once every vote is tallied and the dashboard shows it, after printing the audit")
	f.StringSliceVar(&o.functions, "functions", infra.Simulation, "functions to run here (of "+strings.Join(infra.Functions, ",")+"); with cast and without ballot, only real ballots; several harnesses on one broker share the consumer groups")
	f.IntVar(&o.partitions, "partitions", 0, "partitions of the topics the pipeline creates (default KAFKA_PARTITIONS)")
	f.StringVar(&o.invokeEndpoint, "invoke-endpoint", "", "invoke functions over the Lambda Invoke API instead of in-process: URL (all) or FUNCTION=URL,... (sam local start-lambda, aws-lambda-rie)")
	f.BoolVar(&o.invokeAWS, "invoke-aws", false, "invoke the functions deployed in AWS Lambda (AWS credential chain and region)")
	f.StringVar(&o.functionName, "lambda-function-name", "{function}", "name a function is invoked by remotely; {function} stands for register, ballot, tally or dashboard")
	f.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file (go tool pprof)")
	f.StringVar(&o.memProfile, "memprofile", "", "write a heap profile to this file when the heap peaks (go tool pprof)")
}

func (c *cli) run(ctx context.Context, o runFlags) error {
	for _, f := range o.functions {
		if !slices.Contains(infra.Functions, f) {
			return fmt.Errorf("--functions: unknown function %q (want some of %s)", f, strings.Join(infra.Functions, ","))
		}
	}
	stop, err := startCPUProfile(o.cpuProfile)
	if err != nil {
		return err
	}
	defer stop()
	if o.memProfile != "" {
		defer harness.ProfilePeakHeap(o.memProfile)()
	}
	if o.partitions > 0 {
		c.cfg.Kafka.Partitions = o.partitions
	}
	endpoints, err := invoke.ParseEndpoints(o.invokeEndpoint)
	if err != nil {
		return err
	}
	targets := invoke.Targets{Endpoints: endpoints, AWS: o.invokeAWS, FunctionName: o.functionName}
	invokers, err := targets.Invokers(ctx, o.functions)
	if err != nil {
		return err
	}
	transport := c.electionTransport(ctx)
	if targets.Remote() && transport == "nats" {
		c.log.Warn("remote functions publish where their own configuration says (Kafka); with --transport nats their records reach this pipeline only if they publish to the same JetStream streams")
	}
	env, closeEnv, err := c.openEnv(ctx, transport, false)
	if err != nil {
		return err
	}
	defer closeEnv()
	if err := harness.CheckCarrier(ctx, env); err != nil {
		return err
	}
	where := "embedded broker (state in " + c.stateDir + ")"
	if transport == "nats" {
		where = "NATS JetStream at " + config.RedactedURL(c.cfg.NATS.URL)
	} else if env.Embedded == nil {
		where = strings.Join(c.cfg.Kafka.Brokers, ",")
	}
	fmt.Printf("pipeline: %s on %s; database %s\n", strings.Join(o.functions, ", "), where, config.RedactedURL(c.cfg.Database.URL))
	sum, err := harness.Run(ctx, env, harness.RunOptions{
		Voters: o.voters, Candidates: o.candidates, Seed: o.seed, Rate: o.rate, Turnout: o.turnout,
		UntilDone: o.untilDone, Functions: o.functions, Invokers: invokers,
		Terminal: term.IsTerminal(int(os.Stdout.Fd())), Out: os.Stdout,
	})
	if err != nil {
		return err
	}
	sum.Print(os.Stdout, o.functions)
	if o.untilDone {
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

func (c *cli) invokeCmd() *cobra.Command {
	var event string
	cmd := &cobra.Command{
		Use:   "invoke FUNCTION -e EVENT.json",
		Short: "Invoke one function once with an event file, as sam local invoke does",
		Long: `Invokes FUNCTION (register, ballot, tally or dashboard) once, in this process, through
the Lambda handler path, with the event in EVENT.json (events/FUNCTION.json are samples),
and prints its JSON response. A handler error exits non-zero.`,
		Example:   "  go run ./local invoke tally -e events/tally.json",
		Args:      cobra.ExactArgs(1),
		ValidArgs: infra.Functions,
		RunE: func(cmd *cobra.Command, args []string) error {
			if event == "" {
				return errors.New("invoke: -e EVENT.json is required")
			}
			env, closeEnv, err := c.openEnv(cmd.Context(), c.electionTransport(cmd.Context()), true)
			if err != nil {
				return err
			}
			defer closeEnv()
			return harness.InvokeFile(cmd.Context(), env, args[0], event, os.Stdout)
		},
	}
	cmd.Flags().StringVarP(&event, "event", "e", "", "event file (JSON), e.g. events/tally.json")
	return cmd
}

func (c *cli) auditCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "audit",
		Short: "Recount the election and check every tally and every record; exit 1 on a mismatch",
		Long: `Recounts the votes and compares the recount with every tally view, with the rejected
records, and with the broker: every record of the election's topic, from its start on, must
be counted or rejected exactly once. It reads the transport the election was carried by
(--transport to name it; another than the election's is refused). Exits 1 on a mismatch.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, closeEnv, err := c.openEnv(cmd.Context(), c.electionTransport(cmd.Context()), true)
			if err != nil {
				return err
			}
			defer closeEnv()
			rep, err := harness.Audit(cmd.Context(), env, os.Stdout)
			if err != nil {
				return err
			}
			if !rep.OK() {
				return exitCode(1)
			}
			return nil
		},
	}
}

func (c *cli) resetCmd() *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "reset [--yes]",
		Short: "Start over: drop the election's tables and the embedded broker's state",
		Long: `Drops the election's tables (the database stays) and deletes the embedded broker's state
and the dashboard kept in the state directory, so the next run registers a new election.
It never deletes an external Kafka's topics or NATS streams: it says what they hold, and
a new election starts after their records anyway. Without --yes it only says what it
would do. It refuses while a harness runs on the state directory.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return harness.Reset(cmd.Context(), c.cfg, harness.ResetOptions{StateDir: c.stateDir, Yes: yes, Out: os.Stdout})
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "do it (without it, reset only says what it would do)")
	return cmd
}

func (c *cli) benchCmd() *cobra.Command {
	o := bench.Options{Seed: 42}
	var asJSON, castBench bool
	var cpuProfile string
	var clients int
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the pipeline against this machine's COPY ceiling, in scratch databases",
		Long: `Measures, against the COPY ceiling it measures in the same run: the tally statement alone,
the tally draining a backlog (with and without results by state), the election end to end with
per-stage records/s, vote-to-dashboard latency p50/p99 at --latency-rate and at full speed, the
dashboard render with and without the map, peak RSS, and per phase the CPU per vote of this
process and of the local Postgres server, cores busy, and Kafka bytes per vote per topic; with
--repeat N all of it N times (medians and spreads); with --scaling the same for 1, 2, 4 and 8
partitions; with --cast, ballots cast over HTTP instead (requests/s, latency p50/p99, errors,
against the tally's drain of the same votes). It runs in scratch databases it drops after.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			stop, err := startCPUProfile(cpuProfile)
			if err != nil {
				return err
			}
			defer stop()
			if o.Repeat < 1 {
				return fmt.Errorf("--repeat must be at least 1, not %d", o.Repeat)
			}
			if castBench && (o.Repeat > 1 || o.MemProfile != "") {
				return fmt.Errorf("--repeat and --memprofile are not for --cast")
			}
			if !asJSON {
				fmt.Fprintf(os.Stderr, "benchmarking %d voters on %d partitions, %d run(s) (scratch databases on %s)...\n",
					o.Voters, o.Partitions, o.Repeat, config.RedactedURL(c.cfg.Database.URL))
			}
			o.Log = c.log
			if castBench {
				res, err := bench.RunCast(cmd.Context(), c.cfg, bench.CastOptions{Voters: o.Voters, Partitions: o.Partitions,
					Seed: o.Seed, Clients: clients, Log: c.log})
				if err != nil {
					return err
				}
				return res.Print(os.Stdout, asJSON)
			}
			agg, err := bench.Repeat(cmd.Context(), c.cfg, o)
			if err != nil {
				return err
			}
			return agg.Print(os.Stdout, asJSON)
		},
	}
	f := cmd.Flags()
	f.Int64Var(&o.Voters, "voters", 200000, "voters in the benchmarked election")
	f.IntVar(&o.Partitions, "partitions", 6, "partitions of the topics")
	f.BoolVar(&o.Scaling, "scaling", false, "also run with 1, 2, 4 and 8 partitions")
	f.Float64Var(&o.LatencyRate, "latency-rate", bench.DefaultLatencyRate, "votes/s at which vote-to-dashboard latency is measured")
	f.IntVar(&o.Repeat, "repeat", 1, "run the whole measurement this many times and print each figure's median and spread")
	f.BoolVar(&asJSON, "json", false, "print one JSON object instead of a table (with --repeat: every run, the medians and spreads)")
	f.BoolVar(&castBench, "cast", false, "cast every voter's ballot over HTTP (the cast function) while the pipeline tallies: casts/s, latency, errors, against the tally's drain")
	f.IntVar(&clients, "clients", 64, "with --cast: concurrent HTTP clients")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the benchmark to this file (go tool pprof)")
	f.StringVar(&o.MemProfile, "memprofile", "", "write a heap profile to this file at the peak, right after the first full-speed election (go tool pprof)")
	return cmd
}

// electionTransport returns the transport to use: the one asked for, else
// the one the database's election is carried by, else kafka.
func (c *cli) electionTransport(ctx context.Context) string {
	if c.transport != "" {
		return c.transport
	}
	if ok, err := store.DatabaseExists(ctx, c.cfg.Database.URL); err != nil || !ok {
		return "kafka"
	}
	st, err := store.Open(ctx, c.cfg.Database.URL, store.Options{MaxConns: 1})
	if err != nil {
		return "kafka"
	}
	defer st.Close()
	if e, err := st.Election(ctx); err == nil && e != nil && e.Carrier.Known() {
		return e.Carrier.Transport
	}
	return "kafka"
}

// openEnv opens the harness environment on the chosen transport. shared
// lets a command that only reads or invokes once (audit, invoke) run beside
// a running harness. On NATS the embedded Kafka broker stays in memory.
func (c *cli) openEnv(ctx context.Context, transport string, shared bool) (*harness.Env, func(), error) {
	env, err := harness.Open(ctx, c.cfg, c.log, harness.EnvOptions{StateDir: c.stateDir, SharedState: shared, InMemory: transport == "nats"})
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
