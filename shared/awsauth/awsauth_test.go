package awsauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/votingpipe/voting/shared/awsauth"
	"github.com/votingpipe/voting/shared/config"
)

// fakeSecrets serves SecretString values by ARN.
type fakeSecrets map[string]string

func (f fakeSecrets) SecretString(_ context.Context, arn string) (string, error) {
	s, ok := f[arn]
	if !ok {
		return "", errors.New("ResourceNotFoundException: secret " + arn + " not found")
	}
	return s, nil
}

func TestMergeDatabaseURL(t *testing.T) {
	tests := []struct {
		name   string
		base   string
		secret awsauth.DatabaseSecret
		want   string
	}{
		{
			name:   "credentials only keep host, database and parameters",
			base:   "postgres://db.internal:5432/voting?sslmode=require",
			secret: awsauth.DatabaseSecret{Username: "voting", Password: "s3cr/et@:x"},
			want:   "postgres://voting:s3cr%2Fet%40%3Ax@db.internal:5432/voting?sslmode=require",
		},
		{
			name:   "host, port and dbname of an RDS secret replace the URL's",
			base:   "postgres://placeholder/postgres?sslmode=verify-full&connect_timeout=5",
			secret: awsauth.DatabaseSecret{Username: "u", Password: "p", Host: "x.rds.amazonaws.com", Port: "6543", DBName: "election"},
			want:   "postgres://u:p@x.rds.amazonaws.com:6543/election?sslmode=verify-full&connect_timeout=5",
		},
		{
			name:   "a user and password in DATABASE_URL are replaced",
			base:   "postgresql://postgres:postgres@127.0.0.1:5432/voting",
			secret: awsauth.DatabaseSecret{Username: "app", Password: "pw"},
			want:   "postgresql://app:pw@127.0.0.1:5432/voting",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := awsauth.MergeDatabaseURL(tt.base, tt.secret)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			pc, err := pgx.ParseConfig(got)
			if err != nil {
				t.Fatal(err)
			}
			if pc.User != tt.secret.Username || pc.Password != tt.secret.Password {
				t.Errorf("pgx reads user %q password %q", pc.User, pc.Password)
			}
		})
	}
	if _, err := awsauth.MergeDatabaseURL("host=x user=y", awsauth.DatabaseSecret{Username: "u", Password: "p"}); err == nil {
		t.Error("a key=value DATABASE_URL was accepted; want an error asking for a URL")
	}
}

func TestParseDatabaseSecret(t *testing.T) {
	// The shape RDS writes for a secret attached to an instance: port is a number.
	s, err := awsauth.ParseDatabaseSecret(`{"username":"voting","password":"pw","engine":"postgres","host":"h","port":5432,"dbname":"voting"}`)
	if err != nil {
		t.Fatal(err)
	}
	if s.Port != "5432" || s.Host != "h" || s.DBName != "voting" {
		t.Errorf("parsed %+v", s)
	}
	// A managed master-user secret has only the credentials; port may be a string.
	if s, err := awsauth.ParseDatabaseSecret(`{"username":"u","password":"p","port":"5433"}`); err != nil || s.Port != "5433" {
		t.Errorf("string port: %+v, %v", s, err)
	}
	for _, bad := range []string{`{"username":"u"}`, `not json hunter2`, `{"username":"u","password":"hunter2","port":"x"}`} {
		_, err := awsauth.ParseDatabaseSecret(bad)
		if err == nil {
			t.Errorf("%s: accepted", bad)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error %q carries the secret text", err)
		}
	}
}

func TestSecretsDatabaseURL(t *testing.T) {
	sec, _ := json.Marshal(map[string]any{"username": "voting", "password": "pw", "host": "db", "port": 5432})
	s := &awsauth.Secrets{Reader: fakeSecrets{"arn:db": string(sec)}}
	cfg := config.Database{URL: "postgres://localhost/voting?sslmode=require", SecretARN: "arn:db"}
	got, err := s.DatabaseURL(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if want := "postgres://voting:pw@db:5432/voting?sslmode=require"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	cfg.SecretARN = "arn:missing"
	if _, err := s.DatabaseURL(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "arn:missing") {
		t.Errorf("missing secret: %v", err)
	}
}

func TestKafkaCredentials(t *testing.T) {
	s := &awsauth.Secrets{Reader: fakeSecrets{"arn:scram": `{"username":"voting","password":"scram-pw"}`, "arn:bad": `{}`}}
	cfg, err := config.LoadFrom[config.Config](map[string]string{"KAFKA_BROKERS": "b:9096", "KAFKA_TLS": "true",
		"KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "KAFKA_SASL_SECRET_ARN": "arn:scram"}, config.Lambda)
	if err != nil {
		t.Fatalf("SCRAM credentials from a secret must not be required in the environment: %v", err)
	}
	if err := s.KafkaCredentials(context.Background(), &cfg.Kafka); err != nil {
		t.Fatal(err)
	}
	if cfg.Kafka.SASLUsername != "voting" || cfg.Kafka.SASLPassword != "scram-pw" {
		t.Errorf("config has user %q password %q", cfg.Kafka.SASLUsername, cfg.Kafka.SASLPassword)
	}

	cfg.Kafka.SASLUsername, cfg.Kafka.SASLSecretARN = "", "arn:bad"
	if err := s.KafkaCredentials(context.Background(), &cfg.Kafka); err == nil {
		t.Error("a secret without username and password was accepted")
	}
}

// The Secrets Manager client signs GetSecretValue with Signature Version 4
// for the secret's region, reads the value, and names the secret and AWS's
// error code on failure, never a value.
func TestSecretsManagerGetSecretValue(t *testing.T) {
	var got struct{ target, auth, body string }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.target, got.auth, got.body = r.Header.Get("X-Amz-Target"), r.Header.Get("Authorization"), string(b)
		if strings.Contains(got.body, "missing") {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"__type":"com.amazonaws.secretsmanager#ResourceNotFoundException","message":"not found"}`) //nolint:errcheck
			return
		}
		io.WriteString(w, `{"ARN":"x","SecretString":"{\"username\":\"u\",\"password\":\"p\"}"}`) //nolint:errcheck
	}))
	defer srv.Close()
	m := &awsauth.SecretsManager{Endpoint: srv.URL, AWS: config.AWS{Region: "us-east-1", AccessKeyID: "AKIDTEST", SecretAccessKey: "k"}}
	v, err := m.SecretString(context.Background(), "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db")
	if err != nil {
		t.Fatal(err)
	}
	if v != `{"username":"u","password":"p"}` {
		t.Errorf("value %q", v)
	}
	if got.target != "secretsmanager.GetSecretValue" || !strings.Contains(got.auth, "AKIDTEST/") ||
		!strings.Contains(got.auth, "/eu-west-1/secretsmanager/aws4_request") || !strings.Contains(got.body, `"SecretId"`) {
		t.Errorf("request: %+v", got)
	}
	_, err = m.SecretString(context.Background(), "arn:aws:secretsmanager:eu-west-1:123456789012:secret:missing")
	if err == nil || !strings.Contains(err.Error(), "ResourceNotFoundException") || !strings.Contains(err.Error(), ":secret:missing") {
		t.Errorf("error %v, want one naming the secret and AWS's code", err)
	}
}
