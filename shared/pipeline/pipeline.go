// Package pipeline wires the stages together: it opens the long-lived clients
// a function needs once per process (Postgres pool, Kafka client), and builds
// each function's Lambda handler from them. The Lambda mains in functions/
// and the local harness both use it, so the code that runs in AWS is the code
// that runs and is tested locally.
package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/votingpipe/voting/shared/ballot"
	"github.com/votingpipe/voting/shared/broker"
	"github.com/votingpipe/voting/shared/config"
	"github.com/votingpipe/voting/shared/kafkaevent"
	"github.com/votingpipe/voting/shared/register"
	"github.com/votingpipe/voting/shared/store"
	"github.com/votingpipe/voting/shared/tally"
)

// Function names, as used by the harness (--functions), the SAM template and
// events/<name>.json.
const (
	Register  = "register"
	Ballot    = "ballot"
	Tally     = "tally"
	Dashboard = "dashboard"
)

// Functions lists every function in pipeline order.
var Functions = []string{Register, Ballot, Tally, Dashboard}

// Publisher produces records synchronously (Kafka by default; the harness can
// substitute another transport).
type Publisher interface {
	Publish(ctx context.Context, recs ...*kgo.Record) error
}

// Deps are the clients shared by every invocation of a function.
type Deps struct {
	Config config.Config
	Log    *slog.Logger
	Store  *store.Store
	// Kafka is the client the functions produce with.
	Kafka *kgo.Client
	// Publisher, Producer and Positions default to Kafka.
	Publisher Publisher
	Producer  register.Producer
	Positions register.Positions
}

// OpenOptions tune Open.
type OpenOptions struct {
	// CreateDatabase creates the database if missing (local runs only).
	CreateDatabase bool
	// DatabaseURL overrides Config.DatabaseURL (e.g. resolved from a secret).
	DatabaseURL string
	// KafkaOpts are extra client options (e.g. brokers of the embedded cluster).
	KafkaOpts []kgo.Opt
}

// ResolveDatabaseURL, when set (by the AWS build), turns the configuration
// into a connection string, e.g. by reading DATABASE_SECRET_ARN.
var ResolveDatabaseURL func(ctx context.Context, cfg config.Config) (string, error)

// Open connects to Postgres (applying migrations) and Kafka.
func Open(ctx context.Context, cfg config.Config, log *slog.Logger, o OpenOptions) (*Deps, error) {
	if log == nil {
		log = slog.Default()
	}
	dsn := cfg.DatabaseURL
	if o.DatabaseURL != "" {
		dsn = o.DatabaseURL
	} else if cfg.DatabaseSecretARN != "" {
		if ResolveDatabaseURL == nil {
			return nil, fmt.Errorf("DATABASE_SECRET_ARN is set but this build cannot read secrets")
		}
		var err error
		if dsn, err = ResolveDatabaseURL(ctx, cfg); err != nil {
			return nil, fmt.Errorf("resolve database credentials: %w", err)
		}
	}
	st, err := store.Open(ctx, dsn, store.Options{MaxConns: cfg.DatabaseMaxConns, CreateDatabase: o.CreateDatabase})
	if err != nil {
		return nil, err
	}
	if err := st.Migrate(ctx); err != nil {
		st.Close()
		return nil, err
	}
	cl, err := broker.NewClient(cfg.Kafka, o.KafkaOpts...)
	if err != nil {
		st.Close()
		return nil, err
	}
	// Connect now, so that wrong brokers, TLS or SASL settings fail the
	// start (a Lambda init error naming them) rather than the first batch.
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		cl.Close()
		st.Close()
		return nil, fmt.Errorf("connect to Kafka at %s: %w", strings.Join(cfg.Kafka.Brokers, ","), err)
	}
	return &Deps{
		Config:    cfg,
		Log:       log,
		Store:     st,
		Kafka:     cl,
		Publisher: broker.Publisher{Client: cl},
		Producer:  cl,
		Positions: broker.Positions{Client: cl},
	}, nil
}

// Close flushes and closes the clients.
func (d *Deps) Close() {
	if d.Kafka != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		d.Kafka.Flush(ctx) //nolint:errcheck // best effort on shutdown
		d.Kafka.Close()
	}
	if d.Store != nil {
		d.Store.Close()
	}
}

// RegisterProcessor returns the register stage over d.
func RegisterProcessor(d *Deps) *register.Processor {
	return &register.Processor{
		Roll:        d.Store,
		Producer:    d.Producer,
		Positions:   d.Positions,
		VotersTopic: d.Config.Topics.Voters,
		VotesTopic:  d.Config.Topics.Votes,
		Log:         d.Log.With("function", Register),
	}
}

// RegisterHandler is the register function: invoked directly with a
// register.Request.
func RegisterHandler(d *Deps) func(context.Context, register.Request) (register.Response, error) {
	p := RegisterProcessor(d)
	return p.Register
}

// BallotHandler is the ballot function, triggered by voters_topic.
func BallotHandler(d *Deps) func(context.Context, events.KafkaEvent) (kafkaevent.Response, error) {
	log := d.Log.With("function", Ballot)
	return kafkaevent.Handler(&ballot.Processor{
		Roll:           d.Store,
		Publisher:      d.Publisher,
		VotesTopic:     d.Config.Topics.Votes,
		VotersDLQ:      d.Config.Topics.VotersDLQ,
		MaxRecordBytes: d.Config.MaxRecordBytes,
		Log:            log,
	}, log)
}

// TallyHandler is the tally function, triggered by votes_topic.
func TallyHandler(d *Deps) func(context.Context, events.KafkaEvent) (kafkaevent.Response, error) {
	log := d.Log.With("function", Tally)
	return kafkaevent.Handler(&tally.Processor{
		Store:     d.Store,
		Publisher: d.Publisher,
		Topics: tally.Topics{
			CandidateTotals: d.Config.Topics.CandidateTotals,
			TurnoutTotals:   d.Config.Topics.TurnoutTotals,
			VotesDLQ:        d.Config.Topics.VotesDLQ,
		},
		MaxRecordBytes: d.Config.MaxRecordBytes,
		Log:            log,
	}, log)
}

// Handler returns the handler of the named function, as a value that
// lambda.NewHandler and lambda.Start accept. The Kafka-triggered ones are
// their func(context.Context, events.KafkaEvent) (kafkaevent.Response, error)
// behind kafkaevent.Fast, which decodes the same event JSON ~10x faster.
func Handler(name string, d *Deps) (any, error) {
	switch name {
	case Register:
		return RegisterHandler(d), nil
	case Ballot:
		return kafkaevent.Fast(BallotHandler(d)), nil
	case Tally:
		return kafkaevent.Fast(TallyHandler(d)), nil
	case Dashboard:
		h, err := DashboardHandler(d)
		if err != nil {
			return nil, err
		}
		return kafkaevent.Fast(h), nil
	}
	return nil, fmt.Errorf("unknown function %q (want one of register, ballot, tally, dashboard)", name)
}
