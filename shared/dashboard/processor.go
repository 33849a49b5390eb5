package dashboard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/votingpipe/voting/shared/config"
	"github.com/votingpipe/voting/shared/kafkaevent"
)

// New returns the dashboard function's processor: pages rendered from src
// as the configuration says, published to dest.
func New(src Source, dest Destination, c config.Dashboard, log *slog.Logger) *Processor {
	return &Processor{Source: src, Publisher: dest, Log: log, MinInterval: c.RenderInterval,
		Options: Options{Title: c.Title, RefreshSeconds: c.RefreshSeconds}}
}

// WithBallot makes the page link to the ballot page at url (CAST_URL), and
// publish ballot.html beside itself when page is true.
func (p *Processor) WithBallot(url string, page bool) *Processor {
	p.Options.BallotURL, p.Options.BallotPage = url, page
	return p
}

// Processor renders the dashboard from a Source and publishes it.
type Processor struct {
	Source    Source
	Publisher Destination
	Options   Options
	// Log receives one line per render (default slog.Default()).
	Log *slog.Logger
	// MinInterval is the least time between the starts of two renders. A
	// call that comes sooner waits for the interval to pass, and the calls
	// that arrive meanwhile share its render: under load the page is rendered
	// at most once per interval and lags the tallies by at most one interval
	// and one render. 0 renders as often as called.
	MinInterval time.Duration
	// Now is the clock (default time.Now); Render reads it first, when a
	// call arrives.
	Now func() time.Time

	mu        sync.Mutex
	lastStart time.Time
	last      Result
}

// Result describes one render.
type Result struct {
	// TakenAt is the snapshot's time; Counted its votes counted.
	TakenAt time.Time
	Counted int64
	// Files and Bytes are the rendered page's file count and total size
	// (publishers skip unchanged static files, so fewer bytes may be sent).
	Files int
	Bytes int
	// Read, Render and Publish are how long each step took.
	Read, Render, Publish time.Duration
	// Coalesced is true when this call did not render itself but returned
	// a render that started after the call arrived (see Processor.Render).
	Coalesced bool
}

// Render reads a snapshot, renders it and publishes the page: one render per
// call. Calls that overlap are coalesced: a call that arrives while a render
// is running waits for it, then either renders or, when a render that
// started after its arrival has already finished, returns that render's
// result, since it already reflects everything the call was triggered by.
// So under load renders do not pile up, and the page never lags the
// tallies by more than one render.
func (p *Processor) Render(ctx context.Context) (Result, error) {
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	arrived := now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lastStart.After(arrived) {
		r := p.last
		r.Coalesced = true
		return r, nil
	}
	if p.Source == nil || p.Publisher == nil {
		return Result{}, errors.New("dashboard: processor needs a Source and a Publisher")
	}
	if wait := time.Until(p.lastStart.Add(p.MinInterval)); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return Result{}, ctx.Err()
		}
	}
	start := now()
	snap, err := p.Source.Snapshot(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("dashboard snapshot: %w", err)
	}
	read := time.Now()
	page, err := Render(snap, p.Options)
	if err != nil {
		return Result{}, err
	}
	rendered := time.Now()
	if err := p.Publisher.Publish(ctx, page); err != nil {
		return Result{}, err
	}
	done := time.Now()
	res := Result{TakenAt: snap.TakenAt, Counted: snap.Counted, Files: len(page.Files), Bytes: page.Size(),
		Read: read.Sub(start), Render: rendered.Sub(read), Publish: done.Sub(rendered)}
	p.lastStart, p.last = start, res
	p.log().LogAttrs(ctx, slog.LevelDebug, "dashboard rendered",
		slog.Int64("counted", res.Counted), slog.Int("bytes", res.Bytes),
		slog.Duration("read", res.Read), slog.Duration("render", res.Render), slog.Duration("publish", res.Publish))
	return res, nil
}

func (p *Processor) log() *slog.Logger {
	if p.Log != nil {
		return p.Log
	}
	return slog.Default()
}

// Handler returns the dashboard function's Lambda handler: each invocation
// renders the page once from the Source, however many records or partitions
// the event carries (the aggregated topics' records are only a trigger; an
// empty event renders too). Its summary is {"records": n, "renders": 1}, or
// "coalesced": 1 instead of "renders" when a concurrent render served it.
// Any error (Postgres, publishing) is returned, so the batch is retried.
func Handler(p *Processor) kafkaevent.HandlerFunc {
	return func(ctx context.Context, ev events.KafkaEvent) (kafkaevent.Response, error) {
		n := 0
		for _, recs := range ev.Records {
			n += len(recs)
		}
		res, err := p.Render(ctx)
		if err != nil {
			return kafkaevent.Response{}, err
		}
		sum := map[string]int{"records": n}
		if res.Coalesced {
			sum["coalesced"] = 1
		} else {
			sum["renders"] = 1
		}
		return kafkaevent.Response{BatchItemFailures: []kafkaevent.BatchItemFailure{}, Summary: sum}, nil
	}
}
