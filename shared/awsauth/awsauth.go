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
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	saslaws "github.com/twmb/franz-go/pkg/sasl/aws"

	"github.com/votingpipe/voting/shared/config"
)

// KafkaSecretEnv names a Secrets Manager secret holding the SASL/SCRAM
// credentials as MSK stores them: {"username": "...", "password": "..."}.
// ExportKafkaSecret turns it into KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD,
// so no password is ever written into the function's configuration.
const KafkaSecretEnv = "KAFKA_SASL_SECRET_ARN"

// loadAWS loads the default AWS configuration (environment, shared files,
// the Lambda execution role), with region when it is not empty.
func loadAWS(ctx context.Context, region string) (aws.Config, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if region != "" {
		opts = append(opts, awsconfig.WithRegion(region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	return cfg, nil
}

// IAMMechanism returns the AWS_MSK_IAM SASL mechanism. Credentials are
// retrieved (and cached and refreshed by the SDK) for every new broker
// connection, so rotated role credentials are picked up.
func IAMMechanism(ctx context.Context, region string) (sasl.Mechanism, error) {
	cfg, err := loadAWS(ctx, region)
	if err != nil {
		return nil, err
	}
	creds := aws.NewCredentialsCache(cfg.Credentials)
	return saslaws.ManagedStreamingIAM(func(ctx context.Context) (saslaws.Auth, error) {
		c, err := creds.Retrieve(ctx)
		if err != nil {
			return saslaws.Auth{}, fmt.Errorf("AWS credentials for MSK IAM: %w", err)
		}
		return saslaws.Auth{AccessKey: c.AccessKeyID, SecretKey: c.SecretAccessKey, SessionToken: c.SessionToken}, nil
	}), nil
}

// IAMAuth is broker.IAMAuth for the deployed functions.
func IAMAuth(region string) (kgo.Opt, error) {
	m, err := IAMMechanism(context.Background(), region)
	if err != nil {
		return nil, err
	}
	return kgo.SASL(m), nil
}

// SecretGetter is the part of *secretsmanager.Client that this package uses.
type SecretGetter interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

var _ SecretGetter = (*secretsmanager.Client)(nil)

// Secrets reads secrets through Client, or through a client made from the
// default AWS configuration on first use when Client is nil.
type Secrets struct {
	Client SecretGetter
	Region string

	once sync.Once
	err  error
}

func (s *Secrets) client(ctx context.Context) (SecretGetter, error) {
	s.once.Do(func() {
		if s.Client != nil {
			return
		}
		cfg, err := loadAWS(ctx, s.Region)
		if err != nil {
			s.err = err
			return
		}
		s.Client = secretsmanager.NewFromConfig(cfg)
	})
	return s.Client, s.err
}

// String returns the SecretString of the secret arn.
func (s *Secrets) String(ctx context.Context, arn string) (string, error) {
	cl, err := s.client(ctx)
	if err != nil {
		return "", err
	}
	out, err := cl.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
	if err != nil {
		return "", fmt.Errorf("read secret %s: %w", arn, err)
	}
	if out.SecretString == nil {
		return "", fmt.Errorf("secret %s has no SecretString (binary secrets are not supported)", arn)
	}
	return *out.SecretString, nil
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

// DatabaseURL resolves the connection string from cfg.DatabaseSecretARN and
// cfg.DatabaseURL.
func (s *Secrets) DatabaseURL(ctx context.Context, cfg config.Config) (string, error) {
	text, err := s.String(ctx, cfg.DatabaseSecretARN)
	if err != nil {
		return "", err
	}
	sec, err := ParseDatabaseSecret(text)
	if err != nil {
		return "", fmt.Errorf("%s: %w", cfg.DatabaseSecretARN, err)
	}
	return MergeDatabaseURL(cfg.DatabaseURL, sec)
}

// KafkaSecret is an MSK SASL/SCRAM secret.
type KafkaSecret struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// KafkaCredentials fills cfg.Kafka's SCRAM username and password from the
// secret KAFKA_SASL_SECRET_ARN names, when it is set and they are not.
func (s *Secrets) KafkaCredentials(ctx context.Context, cfg *config.Config) error {
	k := &cfg.Kafka
	if k.SASLSecretARN == "" || (k.SASLUsername != "" && k.SASLPassword != "") {
		return nil
	}
	text, err := s.String(ctx, k.SASLSecretARN)
	if err != nil {
		return fmt.Errorf("%s: %w", KafkaSecretEnv, err)
	}
	var ks KafkaSecret
	if err := json.Unmarshal([]byte(text), &ks); err != nil || ks.Username == "" || ks.Password == "" {
		return fmt.Errorf("%s: secret %s is not {\"username\": ..., \"password\": ...}", KafkaSecretEnv, k.SASLSecretARN)
	}
	k.SASLUsername, k.SASLPassword = ks.Username, ks.Password
	return nil
}

// Default reads secrets with the default AWS configuration.
var Default = &Secrets{}

// DatabaseURL is pipeline.ResolveDatabaseURL for the deployed functions.
func DatabaseURL(ctx context.Context, cfg config.Config) (string, error) {
	if Default.Region == "" {
		Default.Region = cfg.Kafka.AWSRegion
	}
	return Default.DatabaseURL(ctx, cfg)
}

// KafkaCredentials is (*Secrets).KafkaCredentials with the default AWS
// configuration.
func KafkaCredentials(ctx context.Context, cfg *config.Config) error {
	if Default.Region == "" {
		Default.Region = cfg.Kafka.AWSRegion
	}
	return Default.KafkaCredentials(ctx, cfg)
}
