// Command register is the register Lambda function, invoked directly with
// a register request ({"voters": 1000, "candidates": 3, "seed": 42}): it
// writes the candidates and the roll to Postgres and publishes every voter
// to voters_topic. Its configuration is in README.md.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/votingpipe/voting/shared/awsauth"
	"github.com/votingpipe/voting/shared/awsauth/awskafka"
	"github.com/votingpipe/voting/shared/broker"
	"github.com/votingpipe/voting/shared/config"
	"github.com/votingpipe/voting/shared/register"
	"github.com/votingpipe/voting/shared/s3put"
	"github.com/votingpipe/voting/shared/tokens"
	"github.com/votingpipe/voting/shared/tokens/s3tokens"
)

type env struct {
	config.Database
	config.Kafka
	config.Topics
	config.Tokens
	config.Log
	config.AWS
}

func main() {
	cfg, err := config.Load[env](config.Lambda)
	exitOn(err)
	ctx, log := context.Background(), cfg.Log.Logger().With("function", "register")
	key, err := tokens.LoadKey(ctx, cfg.Tokens, (&awsauth.Secrets{AWS: cfg.AWS}).String)
	exitOn(err)
	st, err := awsauth.OpenStore(ctx, cfg.Database, cfg.AWS)
	exitOn(err)
	cl, err := awskafka.Connect(ctx, cfg.Kafka, cfg.AWS)
	exitOn(err)
	// Nothing else creates the topics in AWS: register, which runs first,
	// creates those missing, with the partitions and compaction the pipeline
	// wants. Best effort: an operator may have made them, or not let it.
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	if err := broker.EnsureTopics(tctx, cl, broker.Topics(cfg.Topics, cfg.Kafka.Partitions)); err != nil {
		log.Warn("could not create the topics; create them before the triggers need them", "error", err)
	}
	cancel()
	p := register.New(st, broker.Producer{Client: cl}, broker.Positions{Client: cl}, cfg.Topics, log)
	// Every voter's ballot token, once: to the private tokens bucket (one
	// object per chunk of the roll), or to TOKENS_FILE without one.
	p.TokenKey, p.Tokens = key, tokens.File{Path: cfg.Tokens.File}
	if cfg.Tokens.Bucket != "" {
		s3 := &s3put.S3{Region: cfg.AWS.Region, Credentials: awsauth.Credentials(cfg.AWS)}
		p.Tokens = s3tokens.S3{Client: s3, Bucket: cfg.Tokens.Bucket, Prefix: cfg.Tokens.Prefix}
	}
	lambda.StartWithOptions(p.Register, lambda.WithEnableSIGTERM(func() { cl.Close(); st.Close() }))
}

// exitOn ends the process before the first invocation, which Lambda reports
// as an init failure with this message.
func exitOn(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "register: cannot start:", err)
		os.Exit(1)
	}
}
