package config

import (
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Database is how to reach Postgres.
type Database struct {
	// URL is the Postgres connection string. With DATABASE_SECRET_ARN set,
	// the user and password come from that secret instead.
	URL string `env:"DATABASE_URL" envDefault:"postgres://postgres:postgres@127.0.0.1:5432/voting?sslmode=disable"`
	// SecretARN names a Secrets Manager secret holding the database
	// credentials (username, password, and optionally host, port, dbname), as
	// RDS writes them. Used by the deployed functions.
	SecretARN string `env:"DATABASE_SECRET_ARN"`
	// MaxConns bounds the connection pool of one process.
	MaxConns int32 `env:"DATABASE_MAX_CONNS" envDefault:"8"`
}

// Validate checks the database settings.
func (d *Database) Validate(Role) []Problem {
	var ps problems
	if d.URL == "" {
		ps.add("DATABASE_URL", "must not be empty")
	} else if _, err := pgx.ParseConfig(d.URL); err != nil {
		ps.add("DATABASE_URL", "cannot be parsed as a Postgres connection string (%s)", RedactSecrets(err.Error(), d.URL))
	}
	if d.MaxConns < 1 || d.MaxConns > 1000 {
		ps.add("DATABASE_MAX_CONNS", "is %d, want 1-1000", d.MaxConns)
	}
	return ps
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
	// AWS_MSK_IAM (credentials from the function's role).
	SASLMechanism string `env:"KAFKA_SASL_MECHANISM"`
	// SASLUsername and SASLPassword are for PLAIN and SCRAM.
	SASLUsername string `env:"KAFKA_SASL_USERNAME"`
	SASLPassword string `env:"KAFKA_SASL_PASSWORD"`
	// SASLSecretARN (Lambda) names a Secrets Manager secret holding the SCRAM
	// username and password, read at start instead of the two above.
	SASLSecretARN string `env:"KAFKA_SASL_SECRET_ARN"`
	// ClientID identifies this process to the brokers.
	ClientID string `env:"KAFKA_CLIENT_ID" envDefault:"voting-pipeline"`
}

// Validate checks the broker settings; in Lambda the brokers are required.
func (k *Kafka) Validate(role Role) []Problem {
	var ps problems
	if role == Lambda && len(k.Brokers) == 0 {
		ps.add("KAFKA_BROKERS", "is required in Lambda (comma-separated host:port list)")
	}
	for _, b := range k.Brokers {
		if !strings.Contains(b, ":") {
			ps.add("KAFKA_BROKERS", "%q is not host:port", b)
		}
	}
	if k.Partitions < 1 || k.Partitions > 1024 {
		ps.add("KAFKA_PARTITIONS", "is %d, want 1-1024", k.Partitions)
	}
	switch strings.ToUpper(k.SASLMechanism) {
	case "":
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if k.SASLSecretARN != "" {
			break // the credentials come from the secret at start
		}
		if k.SASLUsername == "" {
			ps.add("KAFKA_SASL_USERNAME", "is required with KAFKA_SASL_MECHANISM=%s", k.SASLMechanism)
		}
		if k.SASLPassword == "" {
			ps.add("KAFKA_SASL_PASSWORD", "is required with KAFKA_SASL_MECHANISM=%s", k.SASLMechanism)
		}
	case "AWS_MSK_IAM":
		if !k.TLS {
			ps.add("KAFKA_TLS", "must be true with KAFKA_SASL_MECHANISM=AWS_MSK_IAM (MSK serves IAM auth on TLS only)")
		}
	default:
		ps.add("KAFKA_SASL_MECHANISM", "is %q, want one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, AWS_MSK_IAM", k.SASLMechanism)
	}
	if k.TLSCAFile != "" {
		if !k.TLS {
			ps.add("KAFKA_TLS_CA_FILE", "is set but KAFKA_TLS is not true")
		}
		if _, err := os.Stat(k.TLSCAFile); err != nil {
			ps.add("KAFKA_TLS_CA_FILE", "cannot be read: %v", err)
		}
	}
	return ps
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

// Topic is one of the pipeline's topics: its variable, its name, and
// whether it is compacted (the aggregated totals keep the latest record per
// key).
type Topic struct {
	Var       string
	Name      string
	Compacted bool
}

// List returns every topic, in pipeline order: the one list the topics are
// created, validated and reset from.
func (t Topics) List() []Topic {
	return []Topic{
		{"VOTERS_TOPIC", t.Voters, false},
		{"VOTES_TOPIC", t.Votes, false},
		{"CANDIDATE_TOTALS_TOPIC", t.CandidateTotals, true},
		{"TURNOUT_TOTALS_TOPIC", t.TurnoutTotals, true},
		{"VOTES_DLQ_TOPIC", t.VotesDLQ, false},
		{"VOTERS_DLQ_TOPIC", t.VotersDLQ, false},
	}
}

// All returns every topic name, in pipeline order.
func (t Topics) All() []string {
	var out []string
	for _, tp := range t.List() {
		out = append(out, tp.Name)
	}
	return out
}

var topicName = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

// Validate checks that every topic name is valid and distinct.
func (t *Topics) Validate(Role) []Problem {
	var ps problems
	seen := map[string]string{}
	for _, tp := range t.List() {
		if !topicName.MatchString(tp.Name) {
			ps.add(tp.Var, "%q is not a valid topic name (letters, digits, . _ -; 1-249 characters)", tp.Name)
			continue
		}
		if other, dup := seen[tp.Name]; dup {
			ps.add(tp.Var, "%q is also used by %s; every topic must be distinct", tp.Name, other)
		}
		seen[tp.Name] = tp.Var
	}
	return ps
}

// Records bounds the records the stages accept.
type Records struct {
	// MaxBytes is the largest voter or vote record accepted; larger ones
	// are dead-lettered as oversized.
	MaxBytes int `env:"MAX_RECORD_BYTES" envDefault:"65536"`
}

// Validate checks the record limit.
func (r *Records) Validate(Role) []Problem {
	var ps problems
	if r.MaxBytes < 1024 || r.MaxBytes > 16<<20 {
		ps.add("MAX_RECORD_BYTES", "is %d, want 1024-16777216", r.MaxBytes)
	}
	return ps
}

// DefaultDashboardDir is DASHBOARD_DIR's default: the dashboard of the
// harness's default state directory, .voting.
const DefaultDashboardDir = ".voting/dashboard"

// Dashboard is where and how the dashboard is published.
type Dashboard struct {
	// Dir is the local directory index.html is written to (default
	// DefaultDashboardDir).
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

// Validate checks the dashboard settings.
func (d *Dashboard) Validate(Role) []Problem {
	var ps problems
	if d.Bucket == "" && d.Dir == "" {
		ps.add("DASHBOARD_DIR", "must not be empty when DASHBOARD_BUCKET is not set")
	}
	if d.RenderInterval < 0 || d.RenderInterval > time.Minute {
		ps.add("DASHBOARD_RENDER_INTERVAL", "is %s, want 0-1m", d.RenderInterval)
	}
	if d.RefreshSeconds < 1 || d.RefreshSeconds > 3600 {
		ps.add("DASHBOARD_REFRESH_SECONDS", "is %d, want 1-3600", d.RefreshSeconds)
	}
	return ps
}

// NATS is the JetStream server of the harness's --transport nats.
type NATS struct {
	// URL is the NATS server.
	URL string `env:"NATS_URL" envDefault:"nats://127.0.0.1:4222"`
	// StreamPrefix starts the name of every JetStream stream and subject the
	// NATS transport uses (e.g. "dev_" gives subjects dev_votes_topic.0 and
	// streams dev_votes_topic_0), so several pipelines or test runs can
	// share one server.
	StreamPrefix string `env:"NATS_STREAM_PREFIX"`
	// StreamMaxAge is how long each stream keeps records (Kafka's
	// retention.ms; 0 keeps them until NATS_STREAM_MAX_BYTES is reached).
	StreamMaxAge time.Duration `env:"NATS_STREAM_MAX_AGE" envDefault:"168h"`
	// StreamMaxBytes bounds each stream (one per topic-partition); the
	// oldest records go first. -1 is unlimited.
	StreamMaxBytes int64 `env:"NATS_STREAM_MAX_BYTES" envDefault:"-1"`
}

var natsPrefix = regexp.MustCompile(`^[a-zA-Z0-9_-]{0,32}$`)

// Validate checks the NATS settings.
func (n *NATS) Validate(Role) []Problem {
	var ps problems
	if n.URL != "" {
		if u, err := url.Parse(n.URL); err != nil || u.Host == "" {
			ps.add("NATS_URL", "%q is not a URL like nats://host:4222", RedactSecrets(n.URL, n.URL))
		}
	}
	if !natsPrefix.MatchString(n.StreamPrefix) {
		ps.add("NATS_STREAM_PREFIX", "%q may hold only letters, digits, _ and - (at most 32)", n.StreamPrefix)
	}
	if n.StreamMaxAge < 0 {
		ps.add("NATS_STREAM_MAX_AGE", "is %s, want 0 (no limit) or more", n.StreamMaxAge)
	}
	if n.StreamMaxBytes != -1 && n.StreamMaxBytes < 1<<20 {
		ps.add("NATS_STREAM_MAX_BYTES", "is %d, want -1 (no limit) or at least 1048576", n.StreamMaxBytes)
	}
	return ps
}

// Log is the process's logging.
type Log struct {
	// Level is debug, info, warn or error.
	Level slog.Level `env:"LOG_LEVEL" envDefault:"info"`
	// Format is text or json (json suits CloudWatch).
	Format string `env:"LOG_FORMAT" envDefault:"text"`
}

// Validate checks the log settings.
func (l *Log) Validate(Role) []Problem {
	var ps problems
	switch l.Format {
	case "text", "json":
	default:
		ps.add("LOG_FORMAT", "is %q, want text or json", l.Format)
	}
	return ps
}

// Logger returns the process logger for the configured level and format.
func (l Log) Logger() *slog.Logger {
	opts := &slog.HandlerOptions{Level: l.Level}
	if l.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// AWS is what the deployed functions know of AWS: the region Lambda runs
// them in (AWS_REGION, set by Lambda) and their role's credentials, also
// set by Lambda. The credentials are never logged.
type AWS struct {
	Region string `env:"AWS_REGION"`
	// FunctionName is the deployed function's name (the metrics' dimension).
	FunctionName    string `env:"AWS_LAMBDA_FUNCTION_NAME"`
	AccessKeyID     string `env:"AWS_ACCESS_KEY_ID"`
	SecretAccessKey string `env:"AWS_SECRET_ACCESS_KEY"`
	SessionToken    string `env:"AWS_SESSION_TOKEN"`
}

// Validate requires a region in Lambda.
func (a *AWS) Validate(role Role) []Problem {
	var ps problems
	if role == Lambda && a.Region == "" {
		ps.add("AWS_REGION", "is required (Lambda sets it)")
	}
	return ps
}

// String never shows the credentials.
func (a AWS) String() string { return "AWS{Region: " + a.Region + "}" }

// Tokens is how voters' ballot tokens are issued (register) and checked
// (cast): the key of the keyed hash the database keeps instead of the
// tokens, and where register hands the tokens out.
type Tokens struct {
	// Key is the HMAC-SHA-256 key, hex-encoded, at least 32 bytes. Locally,
	// when unset, the harness keeps a random one in <state-dir>/token.key.
	Key string `env:"TOKEN_KEY"`
	// KeySecretARN names a Secrets Manager secret whose SecretString's bytes
	// (at least 32; the template generates 64 hex digits) are the key, as the
	// deployed functions read it.
	KeySecretARN string `env:"TOKEN_KEY_SECRET_ARN"`
	// Bucket is the private S3 bucket register writes the tokens to, in
	// Lambda (one object per chunk of the roll, under Prefix<election>/).
	Bucket string `env:"TOKENS_BUCKET"`
	Prefix string `env:"TOKENS_PREFIX" envDefault:"tokens/"`
	// File is where the register function writes the tokens when Bucket is
	// empty (sam local invoke); the harness writes <state-dir>/tokens.csv.
	File string `env:"TOKENS_FILE" envDefault:"/tmp/tokens.csv"`
}

// MinTokenKeyBytes is the shortest key Tokens accepts.
const MinTokenKeyBytes = 32

// Validate checks the key's form. (Which functions need a key, and where
// from, is theirs to say: register and cast fail to start without one.)
func (t *Tokens) Validate(Role) []Problem {
	var ps problems
	if t.Key != "" {
		if b, err := hex.DecodeString(t.Key); err != nil || len(b) < MinTokenKeyBytes {
			ps.add("TOKEN_KEY", "must be at least %d bytes, hex-encoded (e.g. openssl rand -hex 32)", MinTokenKeyBytes)
		}
	}
	return ps
}

// String never shows the key.
func (t Tokens) String() string {
	return fmt.Sprintf("Tokens{KeySet: %v, KeySecretARN: %s, Bucket: %s}", t.Key != "", t.KeySecretARN, t.Bucket)
}

// Cast is the HTTP ballot API (the cast function) and where it is served.
type Cast struct {
	// Addr is where the local harness serves the cast function.
	Addr string `env:"CAST_ADDR" envDefault:"127.0.0.1:8787"`
	// URL is the ballot page's public address, for the dashboard's link and
	// QR code and for the ballot page published beside the dashboard (its
	// API). Locally it defaults to http://CAST_ADDR/.
	URL string `env:"CAST_URL"`
	// AllowedOrigin is the one origin (the dashboard's) that browsers may
	// call the API from; empty: same-origin only.
	AllowedOrigin string `env:"CAST_ALLOWED_ORIGIN"`
	// MaxBodyBytes bounds a request body (413 beyond).
	MaxBodyBytes int `env:"CAST_MAX_BODY_BYTES" envDefault:"4096"`
	// BadTokensPerMinute is how many unknown tokens one client address may
	// send per minute before it is answered 429.
	BadTokensPerMinute int `env:"CAST_BAD_TOKENS_PER_MINUTE" envDefault:"30"`
}

// Validate checks the cast settings.
func (c *Cast) Validate(Role) []Problem {
	var ps problems
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		ps.add("CAST_ADDR", "is %q, want host:port (e.g. 127.0.0.1:8787)", c.Addr)
	}
	if c.URL != "" {
		if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			ps.add("CAST_URL", "is %q, want an http(s) URL", c.URL)
		}
	}
	if c.AllowedOrigin != "" {
		if u, err := url.Parse(c.AllowedOrigin); err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") {
			ps.add("CAST_ALLOWED_ORIGIN", "is %q, want an origin such as https://example.org", c.AllowedOrigin)
		}
	}
	if c.MaxBodyBytes < 256 || c.MaxBodyBytes > 1<<20 {
		ps.add("CAST_MAX_BODY_BYTES", "is %d, want 256-1048576", c.MaxBodyBytes)
	}
	if c.BadTokensPerMinute < 1 {
		ps.add("CAST_BAD_TOKENS_PER_MINUTE", "is %d, want at least 1", c.BadTokensPerMinute)
	}
	return ps
}

// PublicURL is URL, or http://Addr/ when it is unset.
func (c Cast) PublicURL() string {
	if c.URL != "" {
		return strings.TrimSuffix(c.URL, "/") + "/"
	}
	return "http://" + c.Addr + "/"
}
