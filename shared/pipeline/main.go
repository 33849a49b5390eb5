package pipeline

import (
	"context"
	"fmt"
	"os"

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
// Manager) before reading the configuration.
func LambdaMain(function string) {
	broker.IAMAuth = awsauth.IAMAuth
	ResolveDatabaseURL = awsauth.DatabaseURL
	if err := awsauth.ExportKafkaSecret(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cfg, err := config.Load(config.Lambda)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	log := cfg.Logger().With("function", function)
	deps, err := Open(context.Background(), cfg, log, OpenOptions{})
	if err != nil {
		log.Error("start", "error", err)
		os.Exit(1)
	}
	handler, err := Handler(function, deps)
	if err != nil {
		log.Error("start", "error", err)
		os.Exit(1)
	}
	lambda.StartWithOptions(handler, lambda.WithEnableSIGTERM(deps.Close))
}
