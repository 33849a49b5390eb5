// Package config is the pipeline's configuration: every setting comes from an
// environment variable, is parsed once in main with caarlos0/env, and is
// validated with every problem reported at once, each naming its variable.
// Nothing below main reads the environment.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/jackc/pgx/v5"
)

// Config is the whole configuration of a process: a Lambda function or the
// local harness. Each part documents its variables and defaults.
type Config struct {
	// DatabaseURL is the Postgres connection string. With DATABASE_SECRET_ARN
	// set, the user and password come from that secret instead.
	DatabaseURL string `env:"DATABASE_URL" envDefault:"postgres://postgres:postgres@127.0.0.1:5432/voting?sslmode=disable"`
	// DatabaseSecretARN names a Secrets Manager secret holding the database
	// credentials (username, password, and optionally host, port, dbname), as
	// RDS writes them. Used by the deployed functions.
	DatabaseSecretARN string `env:"DATABASE_SECRET_ARN"`
	// DatabaseMaxConns bounds the connection pool of one process.
	DatabaseMaxConns int32 `env:"DATABASE_MAX_CONNS" envDefault:"8"`

	Kafka  Kafka
	Topics Topics

	// MaxRecordBytes is the largest voter or vote record accepted; larger ones
	// are dead-lettered as oversized.
	MaxRecordBytes int `env:"MAX_RECORD_BYTES" envDefault:"65536"`

	Dashboard Dashboard

	// NATSURL is the NATS server used by the harness's --transport nats.
	NATSURL string `env:"NATS_URL" envDefault:"nats://127.0.0.1:4222"`
	// NATSStreamPrefix starts the name of every JetStream stream and subject
	// the NATS transport uses (e.g. "dev_" gives subjects dev_votes_topic.0
	// and streams dev_votes_topic_0), so several pipelines or test runs can
	// share one server.
	NATSStreamPrefix string `env:"NATS_STREAM_PREFIX"`
	// NATSStreamMaxAge is how long each stream keeps records (Kafka's
	// retention.ms; 0 keeps them until NATS_STREAM_MAX_BYTES is reached).
	NATSStreamMaxAge time.Duration `env:"NATS_STREAM_MAX_AGE" envDefault:"168h"`
	// NATSStreamMaxBytes bounds each stream (one per topic-partition); the
	// oldest records go first. -1 is unlimited.
	NATSStreamMaxBytes int64 `env:"NATS_STREAM_MAX_BYTES" envDefault:"-1"`

	// LogLevel is debug, info, warn or error.
	LogLevel slog.Level `env:"LOG_LEVEL" envDefault:"info"`
	// LogFormat is text or json (json suits CloudWatch).
	LogFormat string `env:"LOG_FORMAT" envDefault:"text"`
}

// Kafka is how to reach the brokers.
type Kafka struct {
	// Brokers is a comma-separated list of host:port. Empty means: the local
	// harness starts an embedded broker; in Lambda it is required.
	Brokers []string `env:"KAFKA_BROKERS" envSeparator:","`
	// Partitions is the partition count of the topics the pipeline creates
	// (and of the embedded broker).
	Partitions int `env:"KAFKA_PARTITIONS" envDefault:"6"`
	// TLS turns on TLS to the brokers (MSK: port 9094, 9096 for SCRAM, 9098 for IAM).
	TLS bool `env:"KAFKA_TLS"`
	// TLSCAFile is a PEM bundle to trust instead of the system roots.
	TLSCAFile string `env:"KAFKA_TLS_CA_FILE"`
	// TLSServerName overrides the name checked in the broker certificates.
	TLSServerName string `env:"KAFKA_TLS_SERVER_NAME"`
	// SASLMechanism is empty (none), PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or
	// AWS_MSK_IAM (credentials from the usual AWS chain).
	SASLMechanism string `env:"KAFKA_SASL_MECHANISM"`
	// SASLUsername and SASLPassword are for PLAIN and SCRAM.
	SASLUsername string `env:"KAFKA_SASL_USERNAME"`
	SASLPassword string `env:"KAFKA_SASL_PASSWORD"`
	// SASLSecretARN (Lambda) names a Secrets Manager secret holding the SCRAM
	// username and password, read at start instead of the two above.
	SASLSecretARN string `env:"KAFKA_SASL_SECRET_ARN"`
	// AWSRegion is used by AWS_MSK_IAM when the environment names no region.
	AWSRegion string `env:"AWS_REGION"`
	// ClientID identifies this process to the brokers.
	ClientID string `env:"KAFKA_CLIENT_ID" envDefault:"voting-pipeline"`
}

// Topics are the topic names, with the original demo's defaults.
type Topics struct {
	Voters          string `env:"VOTERS_TOPIC" envDefault:"voters_topic"`
	Votes           string `env:"VOTES_TOPIC" envDefault:"votes_topic"`
	CandidateTotals string `env:"CANDIDATE_TOTALS_TOPIC" envDefault:"aggregated_votes_per_candidate"`
	TurnoutTotals   string `env:"TURNOUT_TOTALS_TOPIC" envDefault:"aggregated_turnout_by_location"`
	VotesDLQ        string `env:"VOTES_DLQ_TOPIC" envDefault:"votes_dlq"`
	VotersDLQ       string `env:"VOTERS_DLQ_TOPIC" envDefault:"voters_dlq"`
}

// All returns every topic name, in pipeline order.
func (t Topics) All() []string {
	return []string{t.Voters, t.Votes, t.CandidateTotals, t.TurnoutTotals, t.VotesDLQ, t.VotersDLQ}
}

// Dashboard is where and how the dashboard is published.
type Dashboard struct {
	// Dir is the local directory index.html is written to.
	Dir string `env:"DASHBOARD_DIR" envDefault:".voting/dashboard"`
	// Bucket, when set, makes the dashboard function write to S3 instead of Dir.
	Bucket string `env:"DASHBOARD_BUCKET"`
	// Prefix is the S3 key prefix (e.g. "election/").
	Prefix string `env:"DASHBOARD_PREFIX"`
	// RefreshSeconds is how often the open page reloads its data.
	RefreshSeconds int `env:"DASHBOARD_REFRESH_SECONDS" envDefault:"5"`
	// RenderInterval is the least time between two renders of one dashboard
	// function instance: under load, triggers that arrive meanwhile share the
	// next render.
	RenderInterval time.Duration `env:"DASHBOARD_RENDER_INTERVAL" envDefault:"250ms"`
	// Title is the page title.
	Title string `env:"DASHBOARD_TITLE" envDefault:"Live election results"`
}

// Role says where the configuration runs, which changes what is required.
type Role int

const (
	// Local is the harness on one machine: an empty KAFKA_BROKERS means the
	// embedded broker.
	Local Role = iota
	// Lambda is a deployed function: brokers must be named.
	Lambda
)

// Load parses the process environment and validates it for role.
func Load(role Role) (Config, error) {
	return LoadFrom(nil, role)
}

// LoadFrom is Load over an explicit environment (nil: the process's own).
func LoadFrom(environ map[string]string, role Role) (Config, error) {
	opts := env.Options{}
	if environ != nil {
		opts.Environment = environ
	}
	cfg, err := env.ParseAsWithOptions[Config](opts)
	var problems []error
	if err != nil {
		var agg env.AggregateError
		if errors.As(err, &agg) {
			problems = append(problems, agg.Errors...)
		} else {
			problems = append(problems, err)
		}
	}
	if verr := cfg.Validate(role); verr != nil {
		problems = append(problems, verr)
	}
	if len(problems) > 0 {
		return cfg, &Error{Problems: flatten(problems)}
	}
	return cfg, nil
}

// Error lists every configuration problem found.
type Error struct {
	Problems []error
}

func (e *Error) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = "  - " + p.Error()
	}
	return fmt.Sprintf("invalid configuration (%d problem(s)):\n%s", len(e.Problems), strings.Join(msgs, "\n"))
}

// Unwrap returns the individual problems.
func (e *Error) Unwrap() []error { return e.Problems }

func flatten(errs []error) []error {
	var out []error
	for _, e := range errs {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			out = append(out, flatten(j.Unwrap())...)
			continue
		}
		out = append(out, e)
	}
	return out
}

var topicName = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

var natsPrefix = regexp.MustCompile(`^[a-zA-Z0-9_-]{0,32}$`)

// Validate checks the parsed values and returns every problem joined.
func (c Config) Validate(role Role) error {
	var errs []error
	bad := func(variable, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", variable, fmt.Sprintf(format, args...)))
	}

	if c.DatabaseURL == "" {
		bad("DATABASE_URL", "must not be empty")
	} else if _, err := pgx.ParseConfig(c.DatabaseURL); err != nil {
		bad("DATABASE_URL", "cannot be parsed as a Postgres connection string (%s)", RedactSecrets(err.Error(), c.DatabaseURL))
	}
	if c.DatabaseMaxConns < 1 || c.DatabaseMaxConns > 1000 {
		bad("DATABASE_MAX_CONNS", "is %d, want 1-1000", c.DatabaseMaxConns)
	}

	if role == Lambda && len(c.Kafka.Brokers) == 0 {
		bad("KAFKA_BROKERS", "is required in Lambda (comma-separated host:port list)")
	}
	for _, b := range c.Kafka.Brokers {
		if !strings.Contains(b, ":") {
			bad("KAFKA_BROKERS", "%q is not host:port", b)
		}
	}
	if c.Kafka.Partitions < 1 || c.Kafka.Partitions > 1024 {
		bad("KAFKA_PARTITIONS", "is %d, want 1-1024", c.Kafka.Partitions)
	}
	switch strings.ToUpper(c.Kafka.SASLMechanism) {
	case "":
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if c.Kafka.SASLSecretARN != "" {
			break // the credentials come from the secret at start
		}
		if c.Kafka.SASLUsername == "" {
			bad("KAFKA_SASL_USERNAME", "is required with KAFKA_SASL_MECHANISM=%s", c.Kafka.SASLMechanism)
		}
		if c.Kafka.SASLPassword == "" {
			bad("KAFKA_SASL_PASSWORD", "is required with KAFKA_SASL_MECHANISM=%s", c.Kafka.SASLMechanism)
		}
	case "AWS_MSK_IAM":
		if !c.Kafka.TLS {
			bad("KAFKA_TLS", "must be true with KAFKA_SASL_MECHANISM=AWS_MSK_IAM (MSK serves IAM auth on TLS only)")
		}
	default:
		bad("KAFKA_SASL_MECHANISM", "is %q, want one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, AWS_MSK_IAM", c.Kafka.SASLMechanism)
	}
	if c.Kafka.TLSCAFile != "" {
		if !c.Kafka.TLS {
			bad("KAFKA_TLS_CA_FILE", "is set but KAFKA_TLS is not true")
		}
		if _, err := os.Stat(c.Kafka.TLSCAFile); err != nil {
			bad("KAFKA_TLS_CA_FILE", "cannot be read: %v", err)
		}
	}

	seen := map[string]string{}
	for _, t := range []struct{ variable, name string }{
		{"VOTERS_TOPIC", c.Topics.Voters},
		{"VOTES_TOPIC", c.Topics.Votes},
		{"CANDIDATE_TOTALS_TOPIC", c.Topics.CandidateTotals},
		{"TURNOUT_TOTALS_TOPIC", c.Topics.TurnoutTotals},
		{"VOTES_DLQ_TOPIC", c.Topics.VotesDLQ},
		{"VOTERS_DLQ_TOPIC", c.Topics.VotersDLQ},
	} {
		if !topicName.MatchString(t.name) {
			bad(t.variable, "%q is not a valid topic name (letters, digits, . _ -; 1-249 characters)", t.name)
			continue
		}
		if other, dup := seen[t.name]; dup {
			bad(t.variable, "%q is also used by %s; every topic must be distinct", t.name, other)
		}
		seen[t.name] = t.variable
	}

	if c.MaxRecordBytes < 1024 || c.MaxRecordBytes > 16<<20 {
		bad("MAX_RECORD_BYTES", "is %d, want 1024-16777216", c.MaxRecordBytes)
	}
	if c.Dashboard.Bucket == "" && c.Dashboard.Dir == "" {
		bad("DASHBOARD_DIR", "must not be empty when DASHBOARD_BUCKET is not set")
	}
	if c.Dashboard.RenderInterval < 0 || c.Dashboard.RenderInterval > time.Minute {
		bad("DASHBOARD_RENDER_INTERVAL", "is %s, want 0-1m", c.Dashboard.RenderInterval)
	}
	if c.Dashboard.RefreshSeconds < 1 || c.Dashboard.RefreshSeconds > 3600 {
		bad("DASHBOARD_REFRESH_SECONDS", "is %d, want 1-3600", c.Dashboard.RefreshSeconds)
	}
	if c.NATSURL != "" {
		if u, err := url.Parse(c.NATSURL); err != nil || u.Host == "" {
			bad("NATS_URL", "%q is not a URL like nats://host:4222", RedactSecrets(c.NATSURL, c.NATSURL))
		}
	}
	if !natsPrefix.MatchString(c.NATSStreamPrefix) {
		bad("NATS_STREAM_PREFIX", "%q may hold only letters, digits, _ and - (at most 32)", c.NATSStreamPrefix)
	}
	if c.NATSStreamMaxAge < 0 {
		bad("NATS_STREAM_MAX_AGE", "is %s, want 0 (no limit) or more", c.NATSStreamMaxAge)
	}
	if c.NATSStreamMaxBytes != -1 && c.NATSStreamMaxBytes < 1<<20 {
		bad("NATS_STREAM_MAX_BYTES", "is %d, want -1 (no limit) or at least 1048576", c.NATSStreamMaxBytes)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		bad("LOG_FORMAT", "is %q, want text or json", c.LogFormat)
	}
	return errors.Join(errs...)
}

// RedactSecrets replaces the password of the connection string dsn (a URL
// or key=value pairs) wherever it appears in s, as is or in any of the
// encodings a URL gives it, so that errors and logs never carry it.
func RedactSecrets(s, dsn string) string {
	pw := passwordOf(dsn)
	if pw == "" {
		return s
	}
	for _, form := range []string{pw, url.QueryEscape(pw), url.PathEscape(pw), strings.TrimPrefix(url.UserPassword("", pw).String(), ":")} {
		s = strings.ReplaceAll(s, form, "xxxxx")
	}
	return s
}

// keywordPassword matches the password of a key=value connection string,
// quoted (with backslash escapes) or not.
var keywordPassword = regexp.MustCompile(`(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s]*)`)

// RedactedURL returns dsn with its password replaced, for log lines and
// errors. A key=value connection string keeps its form.
func RedactedURL(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return RedactSecrets(keywordPassword.ReplaceAllString(dsn, "${1}xxxxx"), dsn)
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	// The URL's own fields are replaced, not every occurrence of the
	// password's text: a password such as "postgres" must not turn the
	// scheme and the user into xxxxx.
	return u.String()
}

// urlPassword finds the password of a URL that url.Parse refuses.
var urlPassword = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@]*:([^@/]*)@`)

func passwordOf(dsn string) string {
	// What the driver itself will send: from the URL, the key=value pairs
	// (quotes and escapes undone), or PGPASSWORD.
	if c, err := pgx.ParseConfig(dsn); err == nil && c.Password != "" {
		return c.Password
	}
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok {
			return pw
		}
	}
	if m := urlPassword.FindStringSubmatch(dsn); m != nil {
		if pw, err := url.PathUnescape(m[1]); err == nil {
			return pw
		}
		return m[1]
	}
	if m := keywordPassword.FindStringSubmatch(dsn); m != nil {
		return strings.Trim(m[2], "'")
	}
	return ""
}

// Logger returns the process logger for the configured level and format.
func (c Config) Logger() *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
