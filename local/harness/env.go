package harness

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/votingpipe/voting/infra"
	"github.com/votingpipe/voting/local/trigger"
	"github.com/votingpipe/voting/shared/ballot"
	"github.com/votingpipe/voting/shared/broker"
	"github.com/votingpipe/voting/shared/broker/embedded"
	"github.com/votingpipe/voting/shared/cast"
	"github.com/votingpipe/voting/shared/config"
	"github.com/votingpipe/voting/shared/dashboard"
	"github.com/votingpipe/voting/shared/kafkaevent"
	"github.com/votingpipe/voting/shared/register"
	"github.com/votingpipe/voting/shared/store"
	"github.com/votingpipe/voting/shared/stream"
	"github.com/votingpipe/voting/shared/tally"
	"github.com/votingpipe/voting/shared/tokens"
)

// Deps are the clients the functions share in the harness's process (in
// Lambda each function has its own).
type Deps struct {
	Store *store.Store
	// Kafka is the client the functions produce with.
	Kafka *kgo.Client
	// Publisher, Producer and Positions are Kafka's, unless another
	// transport (NATS) replaced them.
	Publisher stream.Publisher
	Producer  stream.Producer
	Positions register.Positions
}

// Env is what every harness command needs: the configuration, a broker (the
// configured one or the embedded one), and the functions' shared clients.
type Env struct {
	Config   config.Config
	Log      *slog.Logger
	Deps     *Deps
	Embedded *embedded.Broker // nil when KAFKA_BROKERS is set
	// Persistent is true when the embedded broker keeps its data in the
	// state directory.
	Persistent bool
	// StandIn is true when another harness holds the state directory and
	// the embedded broker is a temporary one that knows none of its records.
	StandIn bool
	// StateDir is the harness's state directory.
	StateDir string

	keyOnce sync.Once
	key     tokens.Key
	keyErr  error

	lock       *os.File
	transport  Transport
	failedOnce sync.Once
	failed     *trigger.FailedBatchFile
	closeOnce  sync.Once
	onClose    []func()
}

// EnvOptions tune Open.
type EnvOptions struct {
	// StateDir holds the embedded broker's data (default .voting).
	StateDir string
	// InMemory keeps the embedded broker in memory (tests, benchmarks);
	// without a StateDir, the rest of the state (tokens, failed batches)
	// goes to a temporary directory removed on Close, never to .voting.
	InMemory bool
	// SharedState lets the command fall back to an in-memory broker when
	// another harness holds the state directory (invoke, audit).
	SharedState bool
}

// Open starts the embedded broker when no brokers are configured, creates
// the topics, and opens the functions' clients (creating and migrating the
// database if needed).
func Open(ctx context.Context, cfg config.Config, log *slog.Logger, o EnvOptions) (*Env, error) {
	var tmp string
	if o.StateDir == "" && o.InMemory {
		var err error
		if tmp, err = os.MkdirTemp("", "voting-state-"); err != nil {
			return nil, err
		}
		o.StateDir = tmp
	}
	if o.StateDir == "" {
		o.StateDir = ".voting"
	}
	if tmp == "" && cfg.Dashboard.Dir == config.DefaultDashboardDir && filepath.Clean(o.StateDir) != ".voting" {
		// A harness given a state directory of its own keeps its dashboard
		// there too (unless DASHBOARD_DIR says where), so two harnesses
		// with two state directories do not write one page.
		cfg.Dashboard.Dir = filepath.Join(o.StateDir, "dashboard")
	}
	e := &Env{Config: cfg, Log: log, StateDir: o.StateDir}
	if tmp != "" {
		e.OnClose(func() { os.RemoveAll(tmp) })
	}
	topics := broker.Topics(cfg.Topics, cfg.Kafka.Partitions)
	if len(cfg.Kafka.Brokers) == 0 {
		eo := embedded.Options{Topics: topics}
		if !o.InMemory {
			dir := filepath.Join(o.StateDir, "kafka")
			lock, err := lockDir(dir)
			switch {
			case err == nil:
				e.lock = lock
				eo.DataDir = dir
				e.Persistent = true
			case o.SharedState:
				log.Warn("another harness is using the embedded broker's state; using a temporary in-memory broker", "dir", dir)
				e.StandIn = true
			default:
				return nil, err
			}
		}
		emb, err := embedded.Start(eo)
		if err != nil {
			e.Close()
			return nil, err
		}
		e.Embedded = emb
		e.Config.Kafka.Brokers = emb.Addrs()
	}
	st, err := store.Open(ctx, cfg.Database.URL, store.Options{MaxConns: cfg.Database.MaxConns, CreateDatabase: true, Migrate: true})
	if err != nil {
		e.Close()
		return nil, err
	}
	e.Deps = &Deps{Store: st}
	cl, err := broker.Connect(ctx, e.Config.Kafka, nil)
	if err != nil {
		e.Close()
		return nil, err
	}
	e.Deps.Kafka = cl
	e.Deps.Publisher, e.Deps.Producer, e.Deps.Positions = broker.Publisher{Client: cl}, broker.Producer{Client: cl}, broker.Positions{Client: cl}
	if err := broker.EnsureTopics(ctx, cl, topics); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// OnClose adds fn to what Close releases (before the clients Open made).
func (e *Env) OnClose(fn func()) { e.onClose = append(e.onClose, fn) }

// Transport returns how records travel between the functions: Kafka unless
// SetTransport chose another.
func (e *Env) Transport() Transport {
	if e.transport == nil {
		return kafkaTransport{e}
	}
	return e.transport
}

// SetTransport makes the functions' triggers and progress use t.
func (e *Env) SetTransport(t Transport) { e.transport = t }

// ClientOpts returns options that reach the environment's brokers.
func (e *Env) ClientOpts() ([]kgo.Opt, error) {
	return broker.ClientOptions(e.Config.Kafka, nil)
}

// Meta describes the event source for events built by the harness.
func (e *Env) Meta() kafkaevent.Meta {
	m := kafkaevent.Meta{Source: kafkaevent.SourceSelfManaged}
	for i, b := range e.Config.Kafka.Brokers {
		if i > 0 {
			m.BootstrapServers += ","
		}
		m.BootstrapServers += b
	}
	return m
}

// Register returns the register stage on the environment's clients,
// handing the voters' ballot tokens out in TokensFile.
func (e *Env) Register() (*register.Processor, error) {
	p := register.New(e.Deps.Store, e.Deps.Producer, e.Deps.Positions, e.Config.Topics, e.Log.With("function", infra.Register))
	key, err := e.TokenKey()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(e.StateDir, 0o755); err != nil {
		return nil, err
	}
	p.Tokens, p.TokenKey = tokens.File{Path: e.TokensFile()}, key
	return p, nil
}

// Cast returns the cast function on the environment's clients.
func (e *Env) Cast() (*cast.Processor, error) {
	key, err := e.TokenKey()
	if err != nil {
		return nil, err
	}
	return cast.New(e.Deps.Store, e.Deps.Producer, key, e.Config.Topics, e.Config.Cast, e.Log.With("function", infra.Cast)), nil
}

// Handler returns the in-process Lambda handler of a function, as its
// main builds it: what lambda.NewHandler makes of the function, so that it
// is invoked through the Lambda runtime's own path.
func (e *Env) Handler(function string) (lambda.Handler, error) {
	log := e.Log.With("function", function)
	switch function {
	case infra.Register:
		p, err := e.Register()
		if err != nil {
			return nil, err
		}
		return lambda.NewHandler(p.Register), nil
	case infra.Cast:
		p, err := e.Cast()
		if err != nil {
			return nil, err
		}
		return lambda.NewHandler(p.Handle), nil
	case infra.Ballot:
		p := ballot.New(e.Deps.Store, e.Deps.Publisher, e.Config.Topics, e.Config.Records, log)
		return kafkaevent.Fast(kafkaevent.Handler(p, log)), nil
	case infra.Tally:
		p := tally.New(e.Deps.Store, e.Deps.Publisher, e.Config.Topics, e.Config.Records, log)
		return kafkaevent.Fast(kafkaevent.Handler(p, log)), nil
	case infra.Dashboard:
		dest, err := e.DashboardDestination()
		if err != nil {
			return nil, err
		}
		// The link to the ballot page, when the cast function is served
		// (the cast server sets CAST_URL) or CAST_URL names it.
		p := dashboard.New(e.Deps.Store, dest, e.Config.Dashboard, log).WithBallot(e.Config.Cast.URL, false)
		return kafkaevent.Fast(dashboard.Handler(p)), nil
	}
	return nil, fmt.Errorf("unknown function %q (want one of %v)", function, infra.Functions)
}

// Invoker returns the in-process invoker of a function (see Handler).
func (e *Env) Invoker(function string) (trigger.Invoker, error) {
	return e.Handler(function)
}

// DashboardDestination is where the harness's dashboard is published: the
// directory DASHBOARD_DIR (publishing to S3 is the deployed function's).
func (e *Env) DashboardDestination() (dashboard.Destination, error) {
	if e.Config.Dashboard.Bucket != "" {
		return nil, errors.New("DASHBOARD_BUCKET is for the deployed dashboard function; the harness writes DASHBOARD_DIR")
	}
	return dashboard.Dir{Dir: e.Config.Dashboard.Dir}, nil
}

// GiveUp returns how trigger t ends the retries of a failed batch, from its
// event-source mapping's settings (the table template.yaml follows): nil to
// retry forever; else after MaximumRetryAttempts, recorded in
// <state-dir>/failed-batches.jsonl when the mapping has a failure
// destination.
func (e *Env) GiveUp(t infra.Trigger) *trigger.GiveUp {
	if t.MaximumRetryAttempts < 0 {
		return nil
	}
	g := &trigger.GiveUp{After: t.MaximumRetryAttempts}
	if t.OnFailure {
		e.failedOnce.Do(func() {
			e.failed = &trigger.FailedBatchFile{Path: filepath.Join(e.StateDir, "failed-batches.jsonl")}
		})
		g.Destination = e.failed
	}
	return g
}

// Close releases everything Open started.
func (e *Env) Close() {
	e.closeOnce.Do(func() {
		for i := len(e.onClose) - 1; i >= 0; i-- {
			e.onClose[i]()
		}
		if e.Deps != nil {
			if e.Deps.Kafka != nil {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				e.Deps.Kafka.Flush(ctx) //nolint:errcheck // best effort on shutdown
				cancel()
				e.Deps.Kafka.Close()
			}
			if e.Deps.Store != nil {
				e.Deps.Store.Close()
			}
		}
		if e.Embedded != nil {
			e.Embedded.Close()
		}
		if e.lock != nil {
			e.lock.Close()
		}
	})
}

// lockDir takes an exclusive lock on dir/.lock so that two harnesses never
// run the embedded broker on the same data.
func lockDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another harness is running with state directory %s (stop it, or set KAFKA_BROKERS to share a real broker)", filepath.Dir(dir))
		}
		return nil, err
	}
	return f, nil
}
