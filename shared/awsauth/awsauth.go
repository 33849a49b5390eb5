package awsauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/votingpipe/voting/shared/config"
	"github.com/votingpipe/voting/shared/store"
)

// Credentials returns the function's credentials as the SDK takes them:
// Lambda puts its execution role's in the environment (config.AWS), which
// is all the default chain would read there, without linking the chain's
// other sources (shared files, SSO, IMDS) into every function.
func Credentials(a config.AWS) aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(a.AccessKeyID, a.SecretAccessKey, a.SessionToken)
}

// SecretReader reads the string value of a secret; SecretsManager is the
// real one, tests give another.
type SecretReader interface {
	SecretString(ctx context.Context, arn string) (string, error)
}

// Secrets reads the pipeline's secrets through Reader, or through Secrets
// Manager with AWS (the region and credentials Lambda sets) when Reader is
// nil.
type Secrets struct {
	Reader SecretReader
	AWS    config.AWS
}

// String returns the SecretString of the secret arn.
func (s *Secrets) String(ctx context.Context, arn string) (string, error) {
	r := s.Reader
	if r == nil {
		r = &SecretsManager{AWS: s.AWS}
	}
	return r.SecretString(ctx, arn)
}

// DatabaseSecret is the JSON of a database secret as RDS and Secrets
// Manager's rotation templates write it. Only username and password are
// required; host, port and dbname, when present, replace those of
// DATABASE_URL.
type DatabaseSecret struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Host     string `json:"host,omitempty"`
	Port     Port   `json:"port,omitempty"`
	DBName   string `json:"dbname,omitempty"`
	Engine   string `json:"engine,omitempty"`
}

// Port is a port number written either as a JSON number or a string.
type Port string

// UnmarshalJSON accepts 5432 and "5432".
func (p *Port) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*p = ""
		return nil
	}
	if _, err := strconv.ParseUint(s, 10, 16); err != nil {
		return fmt.Errorf("port %s is not a port number", s)
	}
	*p = Port(s)
	return nil
}

// ParseDatabaseSecret decodes and checks a database secret. Errors never
// carry the secret's text.
func ParseDatabaseSecret(text string) (DatabaseSecret, error) {
	var s DatabaseSecret
	if err := json.Unmarshal([]byte(text), &s); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return s, fmt.Errorf("database secret is not a JSON object (syntax error at byte %d)", syn.Offset)
		}
		return s, fmt.Errorf("database secret: %w", err)
	}
	var missing []string
	if s.Username == "" {
		missing = append(missing, "username")
	}
	if s.Password == "" {
		missing = append(missing, "password")
	}
	if len(missing) > 0 {
		return s, fmt.Errorf("database secret has no %s", strings.Join(missing, " or "))
	}
	return s, nil
}

// MergeDatabaseURL returns base (a postgres:// URL) with the secret's user
// and password, and its host, port and database name where the secret has
// them. Everything else in base (sslmode and other parameters) is kept.
func MergeDatabaseURL(base string, s DatabaseSecret) (string, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", errors.New("DATABASE_URL must be a postgres:// URL to combine it with DATABASE_SECRET_ARN")
	}
	u.User = url.UserPassword(s.Username, s.Password)
	host, port := u.Hostname(), u.Port()
	if s.Host != "" {
		host = s.Host
	}
	if s.Port != "" {
		port = string(s.Port)
	}
	if port != "" {
		u.Host = net.JoinHostPort(host, port)
	} else if strings.Contains(host, ":") {
		u.Host = "[" + host + "]"
	} else {
		u.Host = host
	}
	if s.DBName != "" {
		u.Path = "/" + s.DBName
	}
	return u.String(), nil
}

// DatabaseURL returns the connection string: DATABASE_URL, with the user
// and password (and host, port, dbname where given) of the secret
// DATABASE_SECRET_ARN names, when it is set.
func (s *Secrets) DatabaseURL(ctx context.Context, db config.Database) (string, error) {
	if db.SecretARN == "" {
		return db.URL, nil
	}
	text, err := s.String(ctx, db.SecretARN)
	if err != nil {
		return "", fmt.Errorf("DATABASE_SECRET_ARN: %w", err)
	}
	sec, err := ParseDatabaseSecret(text)
	if err != nil {
		return "", fmt.Errorf("DATABASE_SECRET_ARN %s: %w", db.SecretARN, err)
	}
	return MergeDatabaseURL(db.URL, sec)
}

// KafkaSecret is an MSK SASL/SCRAM secret.
type KafkaSecret struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// KafkaCredentials fills k's SCRAM username and password from the secret
// KAFKA_SASL_SECRET_ARN names, when it is set and they are not.
func (s *Secrets) KafkaCredentials(ctx context.Context, k *config.Kafka) error {
	if k.SASLSecretARN == "" || (k.SASLUsername != "" && k.SASLPassword != "") {
		return nil
	}
	text, err := s.String(ctx, k.SASLSecretARN)
	if err != nil {
		return fmt.Errorf("%s: %w", "KAFKA_SASL_SECRET_ARN", err)
	}
	var ks KafkaSecret
	if err := json.Unmarshal([]byte(text), &ks); err != nil || ks.Username == "" || ks.Password == "" {
		return fmt.Errorf("%s: secret %s is not {\"username\": ..., \"password\": ...}", "KAFKA_SASL_SECRET_ARN", k.SASLSecretARN)
	}
	k.SASLUsername, k.SASLPassword = ks.Username, ks.Password
	return nil
}

// OpenStore opens the function's database: DATABASE_URL with the
// credentials of DATABASE_SECRET_ARN (when set), migrated.
func OpenStore(ctx context.Context, db config.Database, a config.AWS) (*store.Store, error) {
	dsn, err := (&Secrets{AWS: a}).DatabaseURL(ctx, db)
	if err != nil {
		return nil, err
	}
	return store.Open(ctx, dsn, store.Options{MaxConns: db.MaxConns, Migrate: true})
}
