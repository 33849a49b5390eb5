package pipeline

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/votingpipe/voting/shared/awsauth"
	"github.com/votingpipe/voting/shared/broker"
	"github.com/votingpipe/voting/shared/config"
)

// LambdaMain is the whole main of a deployed function: parse and validate the
// configuration once (every problem reported), open the clients once, and
// serve invocations of the named function until Lambda stops the process.
// Errors before the first invocation exit the process, which Lambda reports
// as an init failure.
//
// Only deployed functions talk to AWS itself: LambdaMain installs the
// awsauth hooks (MSK IAM auth, database and SCRAM credentials from Secrets
// Manager).
func LambdaMain(function string) {
	broker.IAMAuth = awsauth.IAMAuth
	ResolveDatabaseURL = awsauth.DatabaseURL
	cfg, err := config.Load(config.Lambda)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := awsauth.KafkaCredentials(context.Background(), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	log := cfg.Logger().With("function", function)
	deps, err := Open(context.Background(), cfg, log, OpenOptions{})
	if err != nil {
		log.Error("start", "error", err)
		os.Exit(1)
	}
	if function == Register {
		// Nothing else creates the topics in AWS: register, which runs first,
		// creates any that are missing (with the partition count and the
		// compaction the pipeline wants). Best effort: an operator may have
		// created them, and a broker may not let this role create topics.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := broker.EnsureTopics(ctx, deps.Kafka, broker.Topics(cfg.Topics, cfg.Kafka.Partitions)); err != nil {
			log.Warn("could not create the topics; create them before the triggers need them", "error", err)
		}
		cancel()
	}
	handler, err := Handler(function, deps)
	if err != nil {
		log.Error("start", "error", err)
		os.Exit(1)
	}
	lambda.StartWithOptions(handler, lambda.WithEnableSIGTERM(deps.Close))
}
