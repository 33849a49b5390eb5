// Command dashboard is the dashboard Lambda function, triggered by
// aggregated_votes_per_candidate: each invocation renders the results page
// from one consistent Postgres snapshot and publishes it to the dashboard
// bucket. Its configuration is in README.md.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/votingpipe/voting/shared/awsauth"
	"github.com/votingpipe/voting/shared/config"
	"github.com/votingpipe/voting/shared/dashboard"
	"github.com/votingpipe/voting/shared/dashboard/s3site"
	"github.com/votingpipe/voting/shared/kafkaevent"
	"github.com/votingpipe/voting/shared/metrics"
)

type env struct {
	config.Database
	config.Dashboard
	config.Cast
	config.Log
	config.AWS
}

func main() {
	cfg, err := config.Load[env](config.Lambda)
	exitOn(err)
	ctx, log := context.Background(), cfg.Log.Logger().With("function", "dashboard")
	st, err := awsauth.OpenStore(ctx, cfg.Database, cfg.AWS)
	exitOn(err)
	var dest dashboard.Destination = dashboard.Dir{Dir: cfg.Dashboard.Dir} // sam local invoke
	if cfg.Dashboard.Bucket != "" {
		client := &s3site.S3{Region: cfg.AWS.Region, Credentials: awsauth.Credentials(cfg.AWS)}
		dest, err = s3site.New(client, cfg.Dashboard.Bucket, cfg.Dashboard.Prefix)
		exitOn(err)
	}
	em, err := metrics.New(os.Stdout, metrics.Namespace, map[string]string{"FunctionName": cfg.AWS.FunctionName})
	exitOn(err)
	// With CAST_URL the page links to the ballot page, and ballot.html is
	// published beside it (casting through the API at CAST_URL).
	p := dashboard.New(st, dest, cfg.Dashboard, log).WithBallot(cfg.Cast.URL, cfg.Dashboard.Bucket != "")
	h := dashboard.Handler(p)
	lambda.StartWithOptions(kafkaevent.Fast(kafkaevent.Measured(h, em, nil)), lambda.WithEnableSIGTERM(st.Close))
}

// exitOn ends the process before the first invocation, which Lambda reports
// as an init failure with this message.
func exitOn(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "dashboard: cannot start:", err)
		os.Exit(1)
	}
}
