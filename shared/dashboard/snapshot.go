package dashboard

import (
	"context"

	"github.com/votingpipe/voting/shared/dashboard/snapshot"
)

// Source gives the current state of the election as one consistent snapshot.
// (*store.Store).Snapshot implements it by reading the tally views in one
// read-only REPEATABLE READ transaction.
type Source interface {
	Snapshot(ctx context.Context) (Snapshot, error)
}

// The snapshot types live in the dependency-free package snapshot, so that
// the store can build them without linking the renderer; these aliases are
// the same types.
type (
	// Snapshot is everything the page shows, as of one instant.
	Snapshot = snapshot.Snapshot
	// Candidate is one candidate and their running total.
	Candidate = snapshot.Candidate
	// Turnout is votes counted against voters registered for one value of
	// a dimension.
	Turnout = snapshot.Turnout
	// StateResult is one state's votes per candidate.
	StateResult = snapshot.StateResult
	// Timeline is cumulative votes per candidate over voting time.
	Timeline = snapshot.Timeline
	// TimelineSeries is one candidate's cumulative votes over time.
	TimelineSeries = snapshot.TimelineSeries
)

// ReasonDuplicate is the rejection reason of a ballot delivered again; the
// page reports it apart from real rejections.
const ReasonDuplicate = snapshot.ReasonDuplicate
