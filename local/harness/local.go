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

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/votingpipe/voting/shared/broker"
	"github.com/votingpipe/voting/shared/config"
	"github.com/votingpipe/voting/shared/kafkaevent"
	"github.com/votingpipe/voting/shared/pipeline"
)

// Env is what every harness command needs: the configuration, a broker (the
// configured one or the embedded one), and the functions' shared clients.
type Env struct {
	Config   config.Config
	Log      *slog.Logger
	Deps     *pipeline.Deps
	Embedded *broker.Embedded // nil when KAFKA_BROKERS is set
	// Persistent is true when the embedded broker keeps its data in the
	// state directory.
	Persistent bool
	// Stand-in is true when another harness holds the state directory and
	// the embedded broker is a temporary one that knows none of its records.
	StandIn bool
	// StateDir is the harness's state directory.
	StateDir   string
	lock       *os.File
	transport  Transport
	failedOnce sync.Once
	failed     *FailedBatchFile
	closeOnce  sync.Once
	onClose    []func()
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

// EnvOptions tune Open.
type EnvOptions struct {
	// StateDir holds the embedded broker's data (default .voting).
	StateDir string
	// InMemory keeps the embedded broker in memory (tests, benchmarks).
	InMemory bool
	// SharedState lets the command fall back to an in-memory broker when
	// another harness holds the state directory (invoke, audit).
	SharedState bool
}

// ClientOpts returns options that reach the environment's brokers.
func (e *Env) ClientOpts() ([]kgo.Opt, error) {
	return broker.ClientOptions(e.Config.Kafka)
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

// Open starts the embedded broker when no brokers are configured, creates
// the topics, and opens the functions' clients (creating the database if
// needed).
func Open(ctx context.Context, cfg config.Config, log *slog.Logger, o EnvOptions) (*Env, error) {
	if o.StateDir == "" {
		o.StateDir = ".voting"
	}
	e := &Env{Config: cfg, Log: log, StateDir: o.StateDir}
	topics := broker.Topics(cfg.Topics, cfg.Kafka.Partitions)
	if len(cfg.Kafka.Brokers) == 0 {
		eo := broker.EmbeddedOptions{Topics: topics}
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
		emb, err := broker.StartEmbedded(eo)
		if err != nil {
			e.Close()
			return nil, err
		}
		e.Embedded = emb
		e.Config.Kafka.Brokers = emb.Addrs()
	}
	deps, err := pipeline.Open(ctx, e.Config, log, pipeline.OpenOptions{CreateDatabase: true})
	if err != nil {
		e.Close()
		return nil, err
	}
	e.Deps = deps
	if err := broker.EnsureTopics(ctx, deps.Kafka, topics); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// Invoker returns the in-process Lambda handler of a function, invoked
// through lambda.NewHandler as the Lambda runtime does.
func (e *Env) Invoker(function string) (Invoker, error) {
	h, err := pipeline.Handler(function, e.Deps)
	if err != nil {
		return nil, err
	}
	return lambda.NewHandler(h), nil
}

// GiveUp returns how trigger t ends the retries of a failed batch, from its
// event-source mapping's settings (the same table template.yaml follows):
// nil to retry forever; else after MaximumRetryAttempts, recorded in
// <state-dir>/failed-batches.jsonl when the mapping has a failure
// destination.
func (e *Env) GiveUp(t pipeline.Trigger) *GiveUp {
	if t.MaximumRetryAttempts < 0 {
		return nil
	}
	g := &GiveUp{After: t.MaximumRetryAttempts}
	if t.OnFailure {
		g.Destination = e.failedBatches()
	}
	return g
}

func (e *Env) failedBatches() *FailedBatchFile {
	e.failedOnce.Do(func() { e.failed = &FailedBatchFile{Path: filepath.Join(e.StateDir, "failed-batches.jsonl")} })
	return e.failed
}

// Close releases everything Open started.
func (e *Env) Close() {
	e.closeOnce.Do(func() {
		for i := len(e.onClose) - 1; i >= 0; i-- {
			e.onClose[i]()
		}
		if e.Deps != nil {
			e.Deps.Close()
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
