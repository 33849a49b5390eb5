package awskafka_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/votingpipe/voting/shared/awsauth/awskafka"
	"github.com/votingpipe/voting/shared/config"
)

func TestIAMMechanism(t *testing.T) {
	m := awskafka.IAMMechanism(config.AWS{Region: "eu-west-1", AccessKeyID: "AKIDEXAMPLE",
		SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", SessionToken: "token"})
	if m.Name() != "AWS_MSK_IAM" {
		t.Errorf("mechanism %s", m.Name())
	}
	_, first, err := m.Authenticate(context.Background(), "b-1.voting.abc123.c2.kafka.eu-west-1.amazonaws.com:9098")
	if err != nil {
		t.Fatal(err)
	}
	var msg map[string]string
	if err := json.Unmarshal(first, &msg); err != nil {
		t.Fatalf("challenge %s: %v", first, err)
	}
	if !strings.HasPrefix(msg["x-amz-credential"], "AKIDEXAMPLE/") || !strings.Contains(msg["x-amz-credential"], "/eu-west-1/kafka-cluster/") {
		t.Errorf("x-amz-credential %q", msg["x-amz-credential"])
	}
	if msg["x-amz-security-token"] != "token" || msg["action"] != "kafka-cluster:Connect" {
		t.Errorf("challenge %v", msg)
	}
	if strings.Contains(string(first), "wJalrXUtnFEMI") {
		t.Error("the challenge carries the secret key")
	}
	if _, _, err := awskafka.IAMMechanism(config.AWS{}).Authenticate(context.Background(), "b:9098"); err == nil {
		t.Error("no credentials accepted")
	}
}
