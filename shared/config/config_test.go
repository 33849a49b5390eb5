package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/votingpipe/voting/shared/config"
)

func TestDefaultsAreValidLocally(t *testing.T) {
	cfg, err := config.LoadFrom[config.Config](map[string]string{}, config.Local)
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if cfg.Topics.Voters != "voters_topic" || cfg.Topics.Votes != "votes_topic" ||
		cfg.Topics.CandidateTotals != "aggregated_votes_per_candidate" ||
		cfg.Topics.TurnoutTotals != "aggregated_turnout_by_location" || cfg.Topics.VotesDLQ != "votes_dlq" {
		t.Errorf("topic defaults differ from the original system's: %+v", cfg.Topics)
	}
	if cfg.Kafka.Partitions != 6 || len(cfg.Kafka.Brokers) != 0 {
		t.Errorf("kafka defaults: %+v", cfg.Kafka)
	}
	if !strings.Contains(cfg.Database.URL, "127.0.0.1:5432/voting") {
		t.Errorf("DATABASE_URL default %q", cfg.Database.URL)
	}
}

func TestInvalidConfiguration(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		role config.Role
		want []string // every one must be named in the error
	}{
		{"lambda needs brokers", map[string]string{}, config.Lambda, []string{"KAFKA_BROKERS"}},
		{"every problem at once", map[string]string{
			"KAFKA_PARTITIONS":          "0",
			"KAFKA_SASL_MECHANISM":      "SCRAM-SHA-512",
			"VOTES_TOPIC":               "bad topic!",
			"DASHBOARD_REFRESH_SECONDS": "0",
			"LOG_FORMAT":                "xml",
		}, config.Local, []string{"KAFKA_PARTITIONS", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD", "VOTES_TOPIC", "DASHBOARD_REFRESH_SECONDS", "LOG_FORMAT"}},
		{"unparsable numbers are named", map[string]string{"KAFKA_PARTITIONS": "six", "MAX_RECORD_BYTES": "big"}, config.Local,
			[]string{"KAFKA_PARTITIONS", "MAX_RECORD_BYTES"}},
		{"unknown SASL mechanism", map[string]string{"KAFKA_SASL_MECHANISM": "KERBEROS"}, config.Local, []string{"KAFKA_SASL_MECHANISM"}},
		{"IAM needs TLS", map[string]string{"KAFKA_SASL_MECHANISM": "AWS_MSK_IAM"}, config.Local, []string{"KAFKA_TLS"}},
		{"CA file must exist", map[string]string{"KAFKA_TLS": "true", "KAFKA_TLS_CA_FILE": "/nonexistent/ca.pem"}, config.Local, []string{"KAFKA_TLS_CA_FILE"}},
		{"topics must be distinct", map[string]string{"VOTES_DLQ_TOPIC": "votes_topic"}, config.Local, []string{"VOTES_DLQ_TOPIC"}},
		{"broker must be host:port", map[string]string{"KAFKA_BROKERS": "localhost"}, config.Local, []string{"KAFKA_BROKERS"}},
		{"database URL", map[string]string{"DATABASE_URL": "postgres://u:secret@[::1:5432/db"}, config.Local, []string{"DATABASE_URL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.LoadFrom[config.Config](tt.env, tt.role)
			if err == nil {
				t.Fatal("want an error")
			}
			var cerr *config.Error
			if !errors.As(err, &cerr) {
				t.Fatalf("want *config.Error, got %T: %v", err, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not name %s:\n%v", w, err)
				}
			}
			if len(cerr.Problems) < len(tt.want) {
				t.Errorf("want at least %d problems, got %d:\n%v", len(tt.want), len(cerr.Problems), err)
			}
		})
	}
}

func TestPasswordNeverInErrors(t *testing.T) {
	_, err := config.LoadFrom[config.Config](map[string]string{"DATABASE_URL": "postgres://u:hunter2secret@[::1:5432/db"}, config.Local)
	if err == nil {
		t.Fatal("want an error")
	}
	if strings.Contains(err.Error(), "hunter2secret") {
		t.Fatalf("error leaks the password: %v", err)
	}
	if got := config.RedactedURL("postgres://u:hunter2secret@db:5432/x"); strings.Contains(got, "hunter2secret") {
		t.Fatalf("RedactedURL leaks: %s", got)
	}
	if got := config.RedactSecrets("connect failed for password=hunter2secret", "host=db password=hunter2secret"); strings.Contains(got, "hunter2secret") {
		t.Fatalf("RedactSecrets leaks: %s", got)
	}
}

func TestDefaultDashboardDirIsTheDefault(t *testing.T) {
	cfg, err := config.LoadFrom[config.Config](map[string]string{}, config.Local)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Dashboard.Dir != config.DefaultDashboardDir {
		t.Errorf("DASHBOARD_DIR defaults to %q, DefaultDashboardDir is %q", cfg.Dashboard.Dir, config.DefaultDashboardDir)
	}
}
