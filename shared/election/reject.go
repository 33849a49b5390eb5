package election

import (
	"errors"
	"fmt"
)

// Reason says why a record was not counted. The values are stored in
// rejected_votes.reason and sent as the reason header of dead letters.
type Reason string

// The reasons a record can be rejected.
const (
	// ReasonMalformed: not JSON, or a required field is missing or invalid.
	ReasonMalformed Reason = "malformed"
	// ReasonOversized: the record is larger than the configured limit.
	ReasonOversized Reason = "oversized"
	// ReasonUnknownVoter: the voter is not on the roll.
	ReasonUnknownVoter Reason = "unknown_voter"
	// ReasonUnknownCandidate: the candidate is not standing.
	ReasonUnknownCandidate Reason = "unknown_candidate"
	// ReasonAlreadyVoted: a second ballot from a voter, for a different candidate.
	ReasonAlreadyVoted Reason = "already_voted"
	// ReasonDuplicate: the same choice sent again in another record.
	ReasonDuplicate Reason = "duplicate"
)

// Rejection is a permanent error: the record can never be processed, however
// often it is retried. Stages dead-letter it and move on.
type Rejection struct {
	Reason Reason
	Err    error
}

func (r *Rejection) Error() string {
	if r.Err == nil {
		return string(r.Reason)
	}
	return fmt.Sprintf("%s: %v", r.Reason, r.Err)
}

func (r *Rejection) Unwrap() error { return r.Err }

// Reject returns a Rejection for reason with a formatted detail.
func Reject(reason Reason, format string, args ...any) *Rejection {
	return &Rejection{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// AsRejection reports whether err is (or wraps) a Rejection, and returns it.
func AsRejection(err error) (*Rejection, bool) {
	var r *Rejection
	ok := errors.As(err, &r)
	return r, ok
}
