package election

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// DefaultMaxRecordBytes is the largest voter or vote record accepted when the
// caller sets no limit. A generated vote is about 1.5 KB.
const DefaultMaxRecordBytes = 64 << 10

// DecodeVoter parses and validates a voter record. Every error it returns is a
// *Rejection: a record that fails here fails forever.
func DecodeVoter(b []byte, maxBytes int) (Voter, error) {
	var j voterJSON
	if err := checkSize(b, maxBytes); err != nil {
		return j.Voter, err
	}
	if err := strictDecode(b, &j); err != nil {
		return j.Voter, err
	}
	v := j.Voter
	if j.CandidateID != nil || j.VotingTime != nil || j.Vote != nil {
		// The ballot stage appends these to the voter record to make the
		// vote; a voter record must not bring its own.
		return v, Reject(ReasonMalformed, "a voter record must not carry candidate_id, voting_time or vote")
	}
	var missing []string
	for _, f := range []struct{ name, val string }{
		{"voter_id", v.VoterID},
		{"voter_name", v.VoterName},
		{"gender", v.Gender},
		{"address.state", v.Address.State},
		{"date_of_birth", v.DateOfBirth},
	} {
		if strings.TrimSpace(f.val) == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return v, Reject(ReasonMalformed, "missing %s", strings.Join(missing, ", "))
	}
	if _, err := time.Parse(DateLayout, v.DateOfBirth); err != nil {
		return v, Reject(ReasonMalformed, "date_of_birth %q is not YYYY-MM-DD", v.DateOfBirth)
	}
	if v.RegisteredAge < 18 || v.RegisteredAge > 130 {
		return v, Reject(ReasonMalformed, "registered_age %d is outside 18-130", v.RegisteredAge)
	}
	return v, nil
}

// voterJSON is a voter plus the vote fields a voter record must not have.
type voterJSON struct {
	Voter
	CandidateID *json.RawMessage `json:"candidate_id"`
	VotingTime  *json.RawMessage `json:"voting_time"`
	Vote        *json.RawMessage `json:"vote"`
}

// ballotJSON is the subset of a vote that DecodeBallot reads; the decoder
// skips every other field without allocating for it.
type ballotJSON struct {
	VoterID     string `json:"voter_id"`
	CandidateID string `json:"candidate_id"`
	VotingTime  string `json:"voting_time"`
	Vote        *int   `json:"vote"`
}

// DecodeBallot parses the fields of a vote that the tally needs. Every error
// it returns is a *Rejection.
func DecodeBallot(b []byte, maxBytes int) (Ballot, error) {
	if err := checkSize(b, maxBytes); err != nil {
		return Ballot{}, err
	}
	var j ballotJSON
	if err := strictDecode(b, &j); err != nil {
		return Ballot{}, err
	}
	var missing []string
	if strings.TrimSpace(j.VoterID) == "" {
		missing = append(missing, "voter_id")
	}
	if strings.TrimSpace(j.CandidateID) == "" {
		missing = append(missing, "candidate_id")
	}
	if j.VotingTime == "" {
		missing = append(missing, "voting_time")
	}
	if j.Vote == nil {
		missing = append(missing, "vote")
	}
	if len(missing) > 0 {
		return Ballot{}, Reject(ReasonMalformed, "missing %s", strings.Join(missing, ", "))
	}
	if *j.Vote != 1 {
		return Ballot{}, Reject(ReasonMalformed, "vote is %d, want 1", *j.Vote)
	}
	t, err := time.Parse(time.RFC3339Nano, j.VotingTime)
	if err != nil {
		return Ballot{}, Reject(ReasonMalformed, "voting_time %q is not RFC 3339", j.VotingTime)
	}
	return Ballot{VoterID: j.VoterID, CandidateID: j.CandidateID, VotingTime: t}, nil
}

func checkSize(b []byte, maxBytes int) error {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxRecordBytes
	}
	if len(b) > maxBytes {
		return Reject(ReasonOversized, "record is %d bytes, limit %d", len(b), maxBytes)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return Reject(ReasonMalformed, "empty record")
	}
	return nil
}

// strictDecode decodes one JSON object. json.Unmarshal validates the whole
// input first, so `{"a":1}garbage` is malformed rather than half-read.
func strictDecode(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return Reject(ReasonMalformed, "field %s: want %s, got %s", ute.Field, ute.Type, ute.Value)
		}
		return Reject(ReasonMalformed, "invalid JSON: %v", err)
	}
	if t := bytes.TrimSpace(b); t[0] != '{' {
		return Reject(ReasonMalformed, "not a JSON object")
	}
	return nil
}
