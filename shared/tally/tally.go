// Package tally is the tally stage, triggered by votes_topic: each delivered
// batch is counted exactly once in one Postgres transaction (see
// store.Tally), every record it does not count is recorded with its reason
// and dead-lettered, and the new totals are published to the aggregated
// topics that trigger the dashboard.
package tally

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/votingpipe/voting/shared/deadletter"
	"github.com/votingpipe/voting/shared/election"
	"github.com/votingpipe/voting/shared/store"
)

// Stage is this stage's name in dead-letter headers.
const Stage = "tally"

// VoteStore counts batches; *store.Store implements it.
type VoteStore interface {
	Tally(ctx context.Context, b store.TallyBatch) (store.TallyResult, error)
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
}

// Process counts one partition's batch of votes.
func (p *Processor) Process(ctx context.Context, recs []*kgo.Record) (map[string]int, error) {
	if len(recs) == 0 {
		return nil, nil
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	b := store.TallyBatch{Topic: recs[0].Topic, Partition: recs[0].Partition}
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
	if err != nil {
		return nil, err
	}

	out := make([]*kgo.Record, 0, len(res.Rejected)+len(res.Candidates)+len(res.States))
	at := now()
	for _, rj := range res.Rejected {
		out = append(out, deadletter.Record(p.Topics.VotesDLQ, byOffset[rj.Offset], Stage, string(rj.Reason), rj.Detail, at))
	}
	for _, c := range res.Candidates {
		val, err := json.Marshal(c)
		if err != nil {
			return nil, err
		}
		out = append(out, &kgo.Record{Topic: p.Topics.CandidateTotals, Key: []byte(c.CandidateID), Value: val})
	}
	for _, s := range res.States {
		val, err := json.Marshal(s)
		if err != nil {
			return nil, err
		}
		out = append(out, &kgo.Record{Topic: p.Topics.TurnoutTotals, Key: []byte(s.State), Value: val})
	}
	if err := p.Publisher.Publish(ctx, out...); err != nil {
		return nil, fmt.Errorf("publish tally results: %w", err)
	}
	if len(res.Rejected) > 0 && p.Log != nil {
		p.Log.InfoContext(ctx, "votes rejected", "partition", b.Partition, "count", len(res.Rejected),
			"first_reason", res.Rejected[0].Reason)
	}
	return map[string]int{"counted": res.Counted, "rejected": len(res.Rejected), "redelivered": res.Redelivered}, nil
}
