package dashboard

import (
	"context"

	"github.com/votingpipe/voting/shared/election"
)

// Source gives the current state of the election as one consistent snapshot.
// (*store.Store).Snapshot implements it by reading the tally views in one
// read-only REPEATABLE READ transaction.
type Source interface {
	Snapshot(ctx context.Context) (Snapshot, error)
}

// The snapshot is the election's read side, domain vocabulary that the
// store reads and the page draws; these aliases are the same types.
type (
	// Snapshot is everything the page shows, as of one instant.
	Snapshot = election.Snapshot
	// Candidate is one candidate and their running total.
	Candidate = election.CandidateResult
	// Turnout is votes counted against voters registered for one value of
	// a dimension.
	Turnout = election.Turnout
	// StateResult is one state's votes per candidate.
	StateResult = election.StateResult
	// Timeline is cumulative votes per candidate over voting time.
	Timeline = election.Timeline
	// TimelineSeries is one candidate's cumulative votes over time.
	TimelineSeries = election.TimelineSeries
)

// ReasonDuplicate is the rejection reason of a ballot delivered again; the
// page reports it apart from real rejections.
const ReasonDuplicate = string(election.ReasonDuplicate)
