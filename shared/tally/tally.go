// Package tally is the tally stage, triggered by votes_topic: each delivered
// batch is counted exactly once in one Postgres transaction (see
// store.Tally), every record it does not count is recorded with its reason
// and dead-lettered, and the new totals are published to the aggregated
// topics that trigger the dashboard (see store.PublishTotals for why the
// last record per key is always the newest).
//
// Records before the election's start on their partition belong to an
// earlier election: they are skipped, neither counted nor rejected.
package tally

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/votingpipe/voting/shared/deadletter"
	"github.com/votingpipe/voting/shared/election"
	"github.com/votingpipe/voting/shared/store"
)

// Stage is this stage's name in dead-letter headers.
const Stage = "tally"

// VoteStore counts batches and publishes totals; *store.Store implements it.
type VoteStore interface {
	Election(ctx context.Context) (*store.Election, error)
	Tally(ctx context.Context, b store.TallyBatch) (store.TallyResult, error)
	PublishTotals(ctx context.Context, req store.TotalsRequest, publish func(store.Totals) error) error
}

var _ VoteStore = (*store.Store)(nil)

// Publisher produces records synchronously.
type Publisher interface {
	Publish(ctx context.Context, recs ...*kgo.Record) error
}

// Topics are the topics the tally writes to.
type Topics struct {
	CandidateTotals string
	TurnoutTotals   string
	VotesDLQ        string
}

// Processor counts votes.
type Processor struct {
	Store          VoteStore
	Publisher      Publisher
	Topics         Topics
	MaxRecordBytes int
	Log            *slog.Logger
	Now            func() time.Time

	mu sync.Mutex
	// election is the election the records are judged against, read once
	// per process (a Lambda container) and again only when the database
	// turns out to hold another one.
	election *store.Election
	skips    election.SkipCounter
}

// ErrNoElection means no election is registered yet; the batch is retried.
var ErrNoElection = store.ErrNoElection

// currentElection returns the cached election, reading it when there is none.
func (p *Processor) currentElection(ctx context.Context) (*store.Election, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.election != nil {
		return p.election, nil
	}
	e, err := p.Store.Election(ctx)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, ErrNoElection
	}
	p.election = e
	return e, nil
}

// forget drops the cached election (the database holds another one).
func (p *Processor) forget(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.election != nil && p.election.ID == id {
		p.election = nil
		p.skips.Reset()
	}
}

// skip drops the records of recs (one partition, in offset order) that
// precede the election's start, and logs how many once, when the
// partition reaches the election's own records.
func (p *Processor) skip(ctx context.Context, e *store.Election, recs []*kgo.Record) ([]*kgo.Record, int) {
	topic, part := recs[0].Topic, recs[0].Partition
	start := e.Starts.Of(topic, part)
	n := 0
	for n < len(recs) && recs[n].Offset < start {
		n++
	}
	if n == 0 && start == 0 {
		return recs, 0
	}
	from, to := int64(-1), int64(-1)
	if n > 0 {
		from, to = recs[0].Offset, recs[n-1].Offset
	}
	if run, ok := p.skips.Note(topic, part, start, from, to, n, len(recs)-n); ok && p.Log != nil {
		p.Log.InfoContext(ctx, "skipped records of earlier elections", "topic", topic, "partition", part,
			"count", run.Count, "from_offset", run.From, "to_offset", run.To, "election_starts_at", start)
	}
	return recs[n:], n
}

// Process counts one partition's batch of votes.
func (p *Processor) Process(ctx context.Context, recs []*kgo.Record) (map[string]int, error) {
	if len(recs) == 0 {
		return nil, nil
	}
	e, err := p.currentElection(ctx)
	if err != nil {
		return nil, err
	}
	recs, skippedN := p.skip(ctx, e, recs)
	if len(recs) == 0 {
		return map[string]int{"skipped": skippedN}, nil
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	b := store.TallyBatch{Election: e.ID, Topic: recs[0].Topic, Partition: recs[0].Partition}
	byOffset := make(map[int64]*kgo.Record, len(recs))
	for _, r := range recs {
		byOffset[r.Offset] = r
		bal, err := election.DecodeBallot(r.Value, p.MaxRecordBytes)
		if err != nil {
			rej, _ := election.AsRejection(err)
			reason := election.ReasonMalformed
			if rej != nil {
				reason = rej.Reason
			}
			b.Rejects = append(b.Rejects, store.Reject{Offset: r.Offset, Reason: reason, Detail: err.Error(), Payload: r.Value})
			continue
		}
		b.Ballots = append(b.Ballots, store.BallotAt{Offset: r.Offset, Ballot: bal, Payload: r.Value})
	}

	res, err := p.Store.Tally(ctx, b)
	if errors.Is(err, store.ErrElectionChanged) {
		// Read the election (and its starts) again on the retry.
		p.forget(e.ID)
	}
	if err != nil {
		return nil, err
	}

	if len(res.Rejected) > 0 {
		at := now()
		dead := make([]*kgo.Record, 0, len(res.Rejected))
		for _, rj := range res.Rejected {
			dead = append(dead, deadletter.Record(p.Topics.VotesDLQ, byOffset[rj.Offset], Stage, string(rj.Reason), rj.Detail, at))
		}
		if err := p.Publisher.Publish(ctx, dead...); err != nil {
			return nil, fmt.Errorf("publish dead letters: %w", err)
		}
	}
	if req, ok := totalsFor(res); ok {
		if err := p.Store.PublishTotals(ctx, req, p.publishTotals(ctx)); err != nil {
			return nil, err
		}
	}
	if len(res.Rejected) > 0 && p.Log != nil {
		p.Log.InfoContext(ctx, "votes rejected", "partition", b.Partition, "count", len(res.Rejected),
			"first_reason", res.Rejected[0].Reason)
	}
	sum := map[string]int{"counted": res.Counted, "rejected": len(res.Rejected), "redelivered": res.Redelivered}
	if skippedN > 0 {
		sum["skipped"] = skippedN
	}
	return sum, nil
}

// totalsFor says which totals a batch publishes. An earlier delivery
// counted (some of) a redelivered batch, and its totals may never have been
// published if that attempt failed after the commit: every total is
// published again, so the last batch of an election always leaves the
// aggregated topics and the dashboard current. A batch that only rejected
// records publishes the candidates' totals too: they trigger the dashboard,
// whose page shows the rejections.
func totalsFor(res store.TallyResult) (store.TotalsRequest, bool) {
	switch {
	case res.Redelivered > 0:
		return store.TotalsRequest{AllCandidates: true, AllStates: true}, true
	case len(res.Candidates) > 0:
		return store.TotalsRequest{Candidates: res.Candidates, States: res.States}, true
	case len(res.Rejected) > 0:
		return store.TotalsRequest{AllCandidates: true}, true
	}
	return store.TotalsRequest{}, false
}

// publishTotals returns the function that produces a read of the totals;
// it returns once the broker has every record.
func (p *Processor) publishTotals(ctx context.Context) func(store.Totals) error {
	return func(t store.Totals) error {
		out := make([]*kgo.Record, 0, len(t.Candidates)+len(t.States))
		for _, c := range t.Candidates {
			val, err := json.Marshal(c)
			if err != nil {
				return err
			}
			out = append(out, &kgo.Record{Topic: p.Topics.CandidateTotals, Key: []byte(c.CandidateID), Value: val})
		}
		for _, s := range t.States {
			val, err := json.Marshal(s)
			if err != nil {
				return err
			}
			out = append(out, &kgo.Record{Topic: p.Topics.TurnoutTotals, Key: []byte(s.State), Value: val})
		}
		if err := p.Publisher.Publish(ctx, out...); err != nil {
			return fmt.Errorf("publish tally results: %w", err)
		}
		return nil
	}
}
