package infra

import (
	"time"

	"github.com/votingpipe/voting/shared/config"
)

// The functions, as named by the harness (--functions), the SAM template
// (their logical IDs are these, capitalised, + "Function") and
// events/<name>.json.
const (
	Register  = "register"
	Ballot    = "ballot"
	Tally     = "tally"
	Dashboard = "dashboard"
	Cast      = "cast"
)

// Functions lists every function in pipeline order.
var Functions = []string{Register, Ballot, Cast, Tally, Dashboard}

// Simulation is what `go run ./local` runs by default: the simulated
// election, where the ballot stage casts every voter's vote. An election
// with real voters runs cast instead of (or beside) ballot.
var Simulation = []string{Register, Ballot, Tally, Dashboard}

// CastRoute is one route of the cast function's HTTP API.
type CastRoute struct{ Method, Path string }

// CastRoutes are the HTTP API's routes to the cast function (the template's
// HttpApi events; the local harness serves the same). Browsers' CORS
// preflights (OPTIONS) are answered by the HTTP API's CorsConfiguration in
// AWS and by the function itself locally.
var CastRoutes = []CastRoute{
	{"GET", "/"},
	{"GET", "/candidates"},
	{"GET", "/avatars/{name}"},
	{"POST", "/ballots"},
}

// CastThrottle is the HTTP API stage's throttling (the template's
// DefaultRouteSettings), which the local harness applies too: beyond it a
// request is answered 429 before it reaches the function.
var CastThrottle = struct {
	// RateLimit is the steady requests per second, BurstLimit the bucket.
	RateLimit  float64
	BurstLimit int
}{RateLimit: 10000, BurstLimit: 5000}

// Trigger is how a Kafka-triggered function is fed: the values template.yaml
// gives its event-source mapping, which the local harness's emulation of
// the mapping reads too (a test holds the template to this table).
type Trigger struct {
	Function string
	// Topic returns the topic the function consumes (a Kafka event-source
	// mapping takes exactly one).
	Topic func(config.Topics) string
	// Group is the stable consumer group (the mapping's ConsumerGroupId).
	Group string
	// BatchSize is the most records per invocation.
	BatchSize int
	// Window is how long to gather records before invoking
	// (MaximumBatchingWindowInSeconds).
	Window time.Duration
	// MaximumRetryAttempts is how many times a failed batch is retried
	// before the mapping gives up on it (the mapping's MaximumRetryAttempts);
	// -1 retries it forever, so a partition waits until the batch succeeds.
	// Ballot and tally batches fail only on transient errors and skipping one
	// would skip votes: -1. A dashboard batch may be skipped, since every
	// render reads the whole state from Postgres: a few retries.
	MaximumRetryAttempts int
	// OnFailure is whether a batch that failed every retry goes to the
	// failure destination (the mapping's DestinationConfig.OnFailure, the
	// template's FailedBatchesQueue), after which the mapping moves past it.
	// Lambda caps retries at 10 when a destination is set, so OnFailure
	// implies a finite MaximumRetryAttempts.
	OnFailure bool
}

// Triggers are the Kafka-triggered functions and their batching.
//
// Batch sizes follow what Postgres takes best on a 2-core machine: the
// exactly-once tally statement runs at ~28k rows/s with 100-record batches
// but ~70-90k rows/s with 2,000-10,000-record batches, so the tally takes up
// to 5,000 votes per invocation. Every window is 0 (Lambda's
// MaximumBatchingWindowInSeconds: 0): a partition is invoked as soon as it has
// records, and whatever arrives during an invocation forms the next batch, so
// batches are small and latency low when traffic is light, and batches grow to
// BatchSize under load. For the dashboard, which renders once per invocation,
// that makes renders coalesce under load while the page never lags the tallies
// by more than one render.
var Triggers = []Trigger{
	{
		Function:             Ballot,
		Topic:                func(t config.Topics) string { return t.Voters },
		Group:                "voting-ballot",
		BatchSize:            2000,
		Window:               0,
		MaximumRetryAttempts: -1,
		OnFailure:            false,
	},
	{
		Function:             Tally,
		Topic:                func(t config.Topics) string { return t.Votes },
		Group:                "voting-tally",
		BatchSize:            5000,
		Window:               0,
		MaximumRetryAttempts: -1,
		OnFailure:            false,
	},
	{
		// One topic: the tally publishes a candidate-totals record on every
		// batch that changes anything the page shows (turnout included), and
		// a Kafka event-source mapping takes exactly one topic.
		Function:             Dashboard,
		Topic:                func(t config.Topics) string { return t.CandidateTotals },
		Group:                "voting-dashboard",
		BatchSize:            10000,
		Window:               0,
		MaximumRetryAttempts: 5,
		OnFailure:            true,
	},
}

// TriggerFor returns the trigger of a function, and false for register.
func TriggerFor(function string) (Trigger, bool) {
	for _, t := range Triggers {
		if t.Function == function {
			return t, true
		}
	}
	return Trigger{}, false
}
