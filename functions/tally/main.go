// Command tally is the tally Lambda function, triggered by votes_topic: it
// counts each batch exactly once in Postgres, dead-letters what it does not
// count and publishes the new totals. Its configuration is in README.md.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/votingpipe/voting/shared/awsauth"
	"github.com/votingpipe/voting/shared/awsauth/awskafka"
	"github.com/votingpipe/voting/shared/broker"
	"github.com/votingpipe/voting/shared/config"
	"github.com/votingpipe/voting/shared/kafkaevent"
	"github.com/votingpipe/voting/shared/metrics"
	"github.com/votingpipe/voting/shared/tally"
)

type env struct {
	config.Database
	config.Kafka
	config.Topics
	config.Records
	config.Log
	config.AWS
}

func main() {
	cfg, err := config.Load[env](config.Lambda)
	exitOn(err)
	ctx, log := context.Background(), cfg.Log.Logger().With("function", "tally")
	st, err := awsauth.OpenStore(ctx, cfg.Database, cfg.AWS)
	exitOn(err)
	cl, err := awskafka.Connect(ctx, cfg.Kafka, cfg.AWS)
	exitOn(err)
	em, err := metrics.New(os.Stdout, metrics.Namespace, map[string]string{"FunctionName": cfg.AWS.FunctionName})
	exitOn(err)
	p := tally.New(st, broker.Publisher{Client: cl}, cfg.Topics, cfg.Records, log)
	h := kafkaevent.Measured(kafkaevent.Handler(p, log), em, tally.MetricNames)
	lambda.StartWithOptions(kafkaevent.Fast(h), lambda.WithEnableSIGTERM(func() { cl.Close(); st.Close() }))
}

// exitOn ends the process before the first invocation, which Lambda reports
// as an init failure with this message.
func exitOn(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "tally: cannot start:", err)
		os.Exit(1)
	}
}
