// Command cast is the cast Lambda function, behind the HTTP API: real
// ballots (POST /ballots with a voter's token), the ballot page (GET /) and
// the candidates it lists (GET /candidates). A ballot's vote goes to
// votes_topic, where the tally counts it. Its configuration is in README.md.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/votingpipe/voting/shared/awsauth"
	"github.com/votingpipe/voting/shared/awsauth/awskafka"
	"github.com/votingpipe/voting/shared/broker"
	"github.com/votingpipe/voting/shared/cast"
	"github.com/votingpipe/voting/shared/config"
	"github.com/votingpipe/voting/shared/tokens"
)

type env struct {
	config.Database
	config.Kafka
	config.Topics
	config.Records
	config.Tokens
	config.Cast
	config.Log
	config.AWS
}

func main() {
	cfg, err := config.Load[env](config.Lambda)
	exitOn(err)
	ctx, log := context.Background(), cfg.Log.Logger().With("function", "cast")
	key, err := tokens.LoadKey(ctx, cfg.Tokens, (&awsauth.Secrets{AWS: cfg.AWS}).String)
	exitOn(err)
	st, err := awsauth.OpenStore(ctx, cfg.Database, cfg.AWS)
	exitOn(err)
	cl, err := awskafka.Connect(ctx, cfg.Kafka, cfg.AWS)
	exitOn(err)
	p := cast.New(st, broker.Producer{Client: cl}, key, cfg.Topics, cfg.Cast, log)
	lambda.StartWithOptions(p.Handle, lambda.WithEnableSIGTERM(func() { cl.Close(); st.Close() }))
}

// exitOn ends the process before the first invocation, which Lambda reports
// as an init failure with this message.
func exitOn(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "cast: cannot start:", err)
		os.Exit(1)
	}
}
