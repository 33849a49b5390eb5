package pipeline

import (
	"context"

	"github.com/aws/aws-lambda-go/events"

	"github.com/votingpipe/voting/shared/dashboard"
	"github.com/votingpipe/voting/shared/kafkaevent"
)

// DashboardPublisher returns where the dashboard is published: S3 when
// DASHBOARD_BUCKET is set, DASHBOARD_DIR otherwise.
func DashboardPublisher(ctx context.Context, d *Deps) (dashboard.Publisher, error) {
	c := d.Config.Dashboard
	if c.Bucket != "" {
		return dashboard.NewS3Publisher(ctx, c.Bucket, c.Prefix)
	}
	return dashboard.DirPublisher{Dir: c.Dir}, nil
}

// DashboardHandler is the dashboard function, triggered by the aggregated
// topics: it renders the page from Postgres once per invocation, however
// many records the event carries (they are only the signal that totals
// changed). Invocations that overlap share one render.
func DashboardHandler(d *Deps) (func(context.Context, events.KafkaEvent) (kafkaevent.Response, error), error) {
	pub, err := DashboardPublisher(context.Background(), d)
	if err != nil {
		return nil, err
	}
	c := d.Config.Dashboard
	return dashboard.Handler(&dashboard.Processor{
		Source:      d.Store,
		Publisher:   pub,
		Options:     dashboard.Options{Title: c.Title, RefreshSeconds: c.RefreshSeconds},
		Log:         d.Log.With("function", Dashboard),
		MinInterval: c.RenderInterval,
	}), nil
}
