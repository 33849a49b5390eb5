// Package awskafka connects a deployed function to its Kafka cluster:
// SASL/SCRAM credentials from KAFKA_SASL_SECRET_ARN, or AWS_MSK_IAM signed
// with the function's role. It is apart from package awsauth so that a
// function with no Kafka client (the dashboard) links none.
package awskafka

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	saslaws "github.com/twmb/franz-go/pkg/sasl/aws"

	"github.com/votingpipe/voting/shared/awsauth"
	"github.com/votingpipe/voting/shared/broker"
	"github.com/votingpipe/voting/shared/config"
)

// Connect reads the SCRAM credentials from their secret when
// KAFKA_SASL_SECRET_ARN is set, connects to the brokers and checks the
// connection.
func Connect(ctx context.Context, k config.Kafka, a config.AWS) (*kgo.Client, error) {
	if err := (&awsauth.Secrets{AWS: a}).KafkaCredentials(ctx, &k); err != nil {
		return nil, err
	}
	return broker.Connect(ctx, k, IAMMechanism(a))
}

// IAMMechanism returns the AWS_MSK_IAM SASL mechanism, signing with the
// function's credentials (franz-go's sasl/aws signs itself; no SDK call).
func IAMMechanism(a config.AWS) sasl.Mechanism {
	return saslaws.ManagedStreamingIAM(func(context.Context) (saslaws.Auth, error) {
		if a.AccessKeyID == "" {
			return saslaws.Auth{}, errors.New("AWS_MSK_IAM: no credentials in the environment (AWS_ACCESS_KEY_ID)")
		}
		return saslaws.Auth{AccessKey: a.AccessKeyID, SecretKey: a.SecretAccessKey, SessionToken: a.SessionToken}, nil
	})
}
