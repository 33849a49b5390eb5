package election_test

import (
	"testing"

	"github.com/votingpipe/voting/shared/election"
)

// The decoders see whatever is on the topics: they must never panic, and
// every failure must be a Rejection (so it is dead-lettered, not retried).
func FuzzDecodeBallot(f *testing.F) {
	for _, s := range []string{
		`{"voter_id":"v1","candidate_id":"c1","voting_time":"2026-11-03T10:00:00Z","vote":1}`,
		`{"voter_id":"v1"}`, `null`, `[]`, `{"vote":1e400}`, "\xff\xfe", `{"voting_time":"2026-13-45T99:00:00Z"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		bal, err := election.DecodeBallot(b, 4096)
		if err != nil {
			if _, ok := election.AsRejection(err); !ok {
				t.Fatalf("error is not a rejection: %v", err)
			}
			return
		}
		if bal.VoterID == "" || bal.CandidateID == "" || bal.VotingTime.IsZero() {
			t.Fatalf("accepted an incomplete ballot %+v from %q", bal, b)
		}
	})
}

func FuzzDecodeVoter(f *testing.F) {
	for _, s := range []string{
		`{"voter_id":"v","voter_name":"A","date_of_birth":"1980-01-02","gender":"f","address":{"state":"Ohio"},"registered_age":40}`,
		`{}`, `{"address":null}`, `{"registered_age":"x"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := election.DecodeVoter(b, 4096)
		if err != nil {
			if _, ok := election.AsRejection(err); !ok {
				t.Fatalf("error is not a rejection: %v", err)
			}
			return
		}
		if v.VoterID == "" || v.Address.State == "" || v.RegisteredAge < 18 {
			t.Fatalf("accepted an invalid voter %+v", v)
		}
	})
}
