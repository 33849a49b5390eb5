// Package ballot is the ballot stage, triggered by voters_topic: each voter
// record becomes that voter's vote on votes_topic (keyed by voter_id), with
// the candidate chosen deterministically from the election seed and the
// candidates' weights, and the voting time taken from the voter record's
// timestamp. A redelivered voter record therefore yields a byte-identical
// vote, which the tally recognises; it is never a second ballot. Voters who
// abstain (the election's turnout is below 1: see election.Votes) cast
// nothing.
package ballot

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/votingpipe/voting/shared/config"
	"github.com/votingpipe/voting/shared/deadletter"
	"github.com/votingpipe/voting/shared/election"
	"github.com/votingpipe/voting/shared/stream"
)

// Stage is this stage's name in dead-letter headers.
const Stage = "ballot"

// Roll is where the ballot sheet (seed and candidates) is read from; the
// Postgres store implements it.
type Roll interface {
	Election(ctx context.Context) (*election.Election, error)
	ElectionID(ctx context.Context) (string, error)
	Candidates(ctx context.Context) ([]election.WeightedCandidate, error)
}

// New returns the ballot stage of the configured topics, reading the sheet
// from roll and publishing with pub.
func New(roll Roll, pub stream.Publisher, t config.Topics, r config.Records, log *slog.Logger) *Processor {
	return &Processor{Roll: roll, Publisher: pub, VotesTopic: t.Votes, VotersDLQ: t.VotersDLQ, MaxRecordBytes: r.MaxBytes, Log: log}
}

// MetricNames name the ballot's summary counters as metrics (see
// kafkaevent.Measured).
var MetricNames = map[string]string{"votes": "VotesCast", "abstained": "VotersAbstained",
	"dead_lettered": "VotersDeadLettered", "skipped": "RecordsSkipped"}

// Processor turns voter records into votes.
type Processor struct {
	Roll      Roll
	Publisher stream.Publisher
	// VotesTopic receives the votes, VotersDLQ the voter records that cannot
	// become votes.
	VotesTopic     string
	VotersDLQ      string
	MaxRecordBytes int
	Log            *slog.Logger
	Now            func() time.Time

	mu    sync.Mutex
	sheet *Sheet
	skips election.SkipCounter
}

// Sheet is what a ballot is drawn from.
type Sheet struct {
	// Election is the ID of the election; Starts are where its records
	// begin (voter records before them are earlier elections').
	Election string
	Starts   election.Starts
	Seed     int64
	// Turnout is the share of the roll that votes (see election.Votes).
	Turnout    float64
	Candidates []election.Candidate
	Weights    []float64
	fields     [][]byte // each candidate's JSON fields, for election.AppendVote
}

// NewSheet returns the sheet of an election where everyone votes: its seed
// and its candidates with their relative weights.
func NewSheet(seed int64, candidates []election.Candidate, weights []float64) *Sheet {
	s := &Sheet{Seed: seed, Turnout: 1, Candidates: candidates, Weights: weights}
	for _, c := range candidates {
		s.fields = append(s.fields, election.CandidateFields(c))
	}
	return s
}

// ErrNoElection means no election is registered yet; the batch is retried.
var ErrNoElection = election.ErrNoElection

// LoadSheet returns the ballot sheet, read once per election: the candidates
// of an election never change once registered. Every call checks (one
// small query) that the database still holds the same election, and reads
// the sheet again when it holds another (it was reset and registered
// again), so a long-lived process never casts votes from a stale sheet.
func (p *Processor) LoadSheet(ctx context.Context) (*Sheet, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sheet != nil {
		id, err := p.Roll.ElectionID(ctx)
		if err != nil {
			return nil, err
		}
		if id == p.sheet.Election {
			return p.sheet, nil
		}
		p.sheet = nil
		p.skips.Reset()
		if id == "" {
			return nil, ErrNoElection
		}
	}
	e, err := p.Roll.Election(ctx)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, ErrNoElection
	}
	rows, err := p.Roll.Candidates(ctx)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, ErrNoElection
	}
	cands := make([]election.Candidate, len(rows))
	weights := make([]float64, len(rows))
	for i, r := range rows {
		cands[i], weights[i] = r.Candidate, r.Weight
	}
	s := NewSheet(e.Seed, cands, weights)
	s.Election, s.Starts, s.Turnout = e.ID, e.Starts, e.Turnout
	p.sheet = s
	return s, nil
}

// Cast appends to dst the vote (JSON) of the voter whose record is rec, as
// election.Vote encodes it: the chosen candidate and the record's timestamp as
// the voting time.
func (s *Sheet) Cast(dst []byte, voterID string, rec []byte, ts time.Time) []byte {
	i := election.Choose(s.Seed, voterID, s.Weights)
	return election.AppendVote(dst, rec, s.fields[i], ts)
}

// Process casts the votes of one partition's voter records. Records that are
// not valid voters are dead-lettered; votes and dead letters are produced
// together before it returns.
func (p *Processor) Process(ctx context.Context, recs []*stream.Record) (map[string]int, error) {
	sheet, err := p.LoadSheet(ctx)
	if err != nil {
		return nil, fmt.Errorf("load ballot sheet: %w", err)
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	// Voters of earlier elections are not this election's to cast.
	start := sheet.Starts.Of(recs[0].Topic, recs[0].Partition)
	skipped := 0
	for skipped < len(recs) && recs[skipped].Offset < start {
		skipped++
	}
	if skipped > 0 || start > 0 {
		from, to := int64(-1), int64(-1)
		if skipped > 0 {
			from, to = recs[0].Offset, recs[skipped-1].Offset
		}
		if run, ok := p.skips.Note(recs[0].Topic, recs[0].Partition, start, from, to, skipped, len(recs)-skipped); ok && p.Log != nil {
			p.Log.InfoContext(ctx, "skipped voter records of earlier elections", "topic", recs[0].Topic,
				"partition", recs[0].Partition, "count", run.Count, "from_offset", run.From, "to_offset", run.To)
		}
	}
	recs = recs[skipped:]
	out := make([]*stream.Record, 0, len(recs))
	var votes, abstained, dead int
	for _, r := range recs {
		v, err := election.DecodeVoter(r.Value, p.MaxRecordBytes)
		if err != nil {
			reason := election.ReasonMalformed
			if rej, ok := election.AsRejection(err); ok {
				reason = rej.Reason
			}
			out = append(out, deadletter.Record(p.VotersDLQ, r, Stage, string(reason), err.Error(), now()))
			dead++
			continue
		}
		if !election.Votes(sheet.Seed, sheet.Turnout, &v) {
			abstained++
			continue
		}
		val := sheet.Cast(make([]byte, 0, len(r.Value)+512), v.VoterID, r.Value, r.Timestamp)
		out = append(out, &stream.Record{Topic: p.VotesTopic, Key: []byte(v.VoterID), Value: val})
		votes++
	}
	if dead > 0 && p.Log != nil {
		p.Log.WarnContext(ctx, "voter records dead-lettered", "count", dead, "topic", p.VotersDLQ)
	}
	if err := p.Publisher.Publish(ctx, out...); err != nil {
		return nil, err
	}
	sum := map[string]int{"votes": votes, "dead_lettered": dead}
	if abstained > 0 {
		sum["abstained"] = abstained
	}
	if skipped > 0 {
		sum["skipped"] = skipped
	}
	return sum, nil
}
