// Package tally is the tally stage, triggered by votes_topic: each delivered
// batch is counted exactly once in one Postgres transaction (see
// the store's Tally), every record it does not count is recorded with its reason
// and dead-lettered, and the new totals are published to the aggregated
// topics that trigger the dashboard (see VoteStore.PublishTotals for why
// the last record per key is always the newest).
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

	"github.com/votingpipe/voting/shared/config"
	"github.com/votingpipe/voting/shared/deadletter"
	"github.com/votingpipe/voting/shared/election"
	"github.com/votingpipe/voting/shared/internal/batch"
	"github.com/votingpipe/voting/shared/stream"
)

// Stage is this stage's name in dead-letter headers.
const Stage = "tally"

// VoteStore counts batches and publishes totals; the Postgres store
// implements it.
type VoteStore interface {
	// Election returns the registered election (nil when there is none).
	Election(ctx context.Context) (*election.Election, error)
	// Tally counts a batch exactly once, failing with
	// election.ErrElectionChanged when the database holds another election
	// than b.Election.
	Tally(ctx context.Context, b election.TallyBatch) (election.TallyResult, error)
	// PublishTotals reads the requested totals and calls publish with them
	// while holding a lock that orders every read and publish of the
	// totals: a later read is published later (publish returns only once
	// the broker has the records), so the last record per key is the
	// newest, and after the last batch it equals the recount.
	PublishTotals(ctx context.Context, req election.TotalsRequest, publish func(election.Totals) error) error
}

// Topics are the topics the tally writes to.
type Topics struct {
	CandidateTotals string
	TurnoutTotals   string
	VotesDLQ        string
}

// New returns the tally of the configured topics over st, publishing with
// pub.
func New(st VoteStore, pub stream.Publisher, t config.Topics, r config.Records, log *slog.Logger) *Processor {
	return &Processor{Store: st, Publisher: pub, MaxRecordBytes: r.MaxBytes, Log: log,
		Topics: Topics{CandidateTotals: t.CandidateTotals, TurnoutTotals: t.TurnoutTotals, VotesDLQ: t.VotesDLQ}}
}

// MetricNames name the tally's summary counters as metrics (see
// kafkaevent.Measured); VotesRejected is also emitted by reason.
var MetricNames = map[string]string{"counted": "VotesCounted", "rejected": "VotesRejected",
	"redelivered": "VotesRedelivered", "skipped": "RecordsSkipped"}

// Processor counts votes.
type Processor struct {
	Store          VoteStore
	Publisher      stream.Publisher
	Topics         Topics
	MaxRecordBytes int
	Log            *slog.Logger
	Now            func() time.Time

	mu sync.Mutex
	// election is the election the records are judged against, read once
	// per process (a Lambda container) and again only when the database
	// turns out to hold another one.
	election *election.Election
	skips    election.SkipCounter

	// publishes groups the totals' publishes of the batches that finish
	// together: one read and publish, started after each of them
	// committed, serves them all, instead of one each queued on the lock
	// that orders publishes. In the harness every partition's batches share
	// a Processor; in Lambda an instance has one batch at a time, so each
	// publishes alone.
	publishes     *batch.Batcher[election.TotalsRequest, struct{}]
	publishesOnce sync.Once
}

// ErrNoElection means no election is registered yet; the batch is retried.
var ErrNoElection = election.ErrNoElection

// currentElection returns the cached election, reading it when there is none.
func (p *Processor) currentElection(ctx context.Context) (*election.Election, error) {
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
func (p *Processor) skip(ctx context.Context, e *election.Election, recs []*stream.Record) ([]*stream.Record, int) {
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
func (p *Processor) Process(ctx context.Context, recs []*stream.Record) (map[string]int, error) {
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
	b := election.TallyBatch{Election: e.ID, Topic: recs[0].Topic, Partition: recs[0].Partition}
	byOffset := make(map[int64]*stream.Record, len(recs))
	for _, r := range recs {
		byOffset[r.Offset] = r
		bal, err := election.DecodeBallot(r.Value, p.MaxRecordBytes)
		if err != nil {
			rej, _ := election.AsRejection(err)
			reason := election.ReasonMalformed
			if rej != nil {
				reason = rej.Reason
			}
			b.Rejects = append(b.Rejects, election.RejectedRecord{Offset: r.Offset, Reason: reason, Detail: err.Error(), Payload: r.Value})
			continue
		}
		b.Ballots = append(b.Ballots, election.BallotAt{Offset: r.Offset, Ballot: bal, Payload: r.Value})
	}

	res, err := p.Store.Tally(ctx, b)
	if errors.Is(err, election.ErrElectionChanged) {
		// Read the election (and its starts) again on the retry.
		p.forget(e.ID)
	}
	if err != nil {
		return nil, err
	}

	if len(res.Rejected) > 0 {
		at := now()
		dead := make([]*stream.Record, 0, len(res.Rejected))
		for _, rj := range res.Rejected {
			dead = append(dead, deadletter.Record(p.Topics.VotesDLQ, byOffset[rj.Offset], Stage, string(rj.Reason), rj.Detail, at))
		}
		if err := p.Publisher.Publish(ctx, dead...); err != nil {
			return nil, fmt.Errorf("publish dead letters: %w", err)
		}
	}
	if req, ok := totalsFor(res); ok {
		if _, err := p.publisher().Do(ctx, req); err != nil {
			return nil, err
		}
	}
	if len(res.Rejected) > 0 && p.Log != nil {
		p.Log.InfoContext(ctx, "votes rejected", "partition", b.Partition, "count", len(res.Rejected),
			"first_reason", res.Rejected[0].Reason)
	}
	sum := map[string]int{"counted": res.Counted, "rejected": len(res.Rejected), "redelivered": res.Redelivered}
	for _, rj := range res.Rejected {
		sum["rejected."+string(rj.Reason)]++ // by reason, for the metrics
	}
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
func totalsFor(res election.TallyResult) (election.TotalsRequest, bool) {
	switch {
	case res.Redelivered > 0:
		return election.TotalsRequest{AllCandidates: true, AllStates: true}, true
	case len(res.Candidates) > 0:
		return election.TotalsRequest{Candidates: res.Candidates, States: res.States}, true
	case len(res.Rejected) > 0:
		return election.TotalsRequest{AllCandidates: true}, true
	}
	return election.TotalsRequest{}, false
}

// publisher returns the batcher of the totals' publishes.
func (p *Processor) publisher() *batch.Batcher[election.TotalsRequest, struct{}] {
	p.publishesOnce.Do(func() {
		p.publishes = &batch.Batcher[election.TotalsRequest, struct{}]{Workers: 1, Timeout: time.Minute,
			Run: func(ctx context.Context, reqs []election.TotalsRequest) ([]struct{}, error) {
				if err := p.Store.PublishTotals(ctx, mergeTotals(reqs), p.publishTotals(ctx)); err != nil {
					return nil, err
				}
				return make([]struct{}, len(reqs)), nil
			}}
	})
	return p.publishes
}

// mergeTotals is one request for every total that any of reqs asks for.
func mergeTotals(reqs []election.TotalsRequest) election.TotalsRequest {
	if len(reqs) == 1 {
		return reqs[0]
	}
	var m election.TotalsRequest
	cands, states := map[string]bool{}, map[string]bool{}
	for _, r := range reqs {
		m.AllCandidates = m.AllCandidates || r.AllCandidates
		m.AllStates = m.AllStates || r.AllStates
		m.Candidates = appendNew(m.Candidates, cands, r.Candidates)
		m.States = appendNew(m.States, states, r.States)
	}
	if m.AllCandidates {
		m.Candidates = nil
	}
	if m.AllStates {
		m.States = nil
	}
	return m
}

// appendNew appends to dst the keys of src not in seen, in order, and
// marks them seen.
func appendNew(dst []string, seen map[string]bool, src []string) []string {
	for _, k := range src {
		if !seen[k] {
			seen[k] = true
			dst = append(dst, k)
		}
	}
	return dst
}

// publishTotals returns the function that produces a read of the totals;
// it returns once the broker has every record.
func (p *Processor) publishTotals(ctx context.Context) func(election.Totals) error {
	return func(t election.Totals) error {
		out := make([]*stream.Record, 0, len(t.Candidates)+len(t.States))
		for _, c := range t.Candidates {
			val, err := json.Marshal(c)
			if err != nil {
				return err
			}
			out = append(out, &stream.Record{Topic: p.Topics.CandidateTotals, Key: []byte(c.CandidateID), Value: val})
		}
		for _, s := range t.States {
			val, err := json.Marshal(s)
			if err != nil {
				return err
			}
			out = append(out, &stream.Record{Topic: p.Topics.TurnoutTotals, Key: []byte(s.State), Value: val})
		}
		if err := p.Publisher.Publish(ctx, out...); err != nil {
			return fmt.Errorf("publish tally results: %w", err)
		}
		return nil
	}
}
