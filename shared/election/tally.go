package election

import (
	"errors"
	"time"
)

// Election is the one election a database holds: its identity, what
// carries its records and where they start, and how far its registration
// has got.
type Election struct {
	// ID is new for every registration (a uuid).
	ID          string
	Name        string
	Seed        int64
	Voters      int64
	Candidates  int
	Fingerprint string
	// Turnout is the share of the roll that votes (1: everyone; see Votes).
	Turnout float64
	// Voting is how many of the Copied voters vote: the votes the election
	// will have once its roll is complete.
	Voting int64
	// Copied voters are in the voters table; Published ones are on voters_topic.
	Copied       int64
	RollComplete bool
	Published    int64
	RegisteredAt time.Time
	PublishedAt  *time.Time
	// Carrier is the transport and broker that carry the election's records.
	Carrier Carrier
	// Starts are where its records begin on each topic-partition it reads.
	Starts Starts
	// TokenKeyID identifies the key its voters' ballot tokens are hashed
	// under ("" when it has no tokens).
	TokenKeyID string
}

// RollChunk is voters[From:From+len(Voters)] of the roll, as register
// copies it into the database in one transaction.
type RollChunk struct {
	From   int64
	Voters []Voter
	// Voting is how many of Voters vote (see Votes).
	Voting int64
	// TokenHashes are the keyed hashes of the voters' ballot tokens, one per
	// voter in order (nil: no tokens issued).
	TokenHashes [][]byte
}

// ErrDifferentElection is returned when the database already holds an
// election with another seed or other candidates.
var ErrDifferentElection = errors.New("the database already holds a different election")

// ErrOtherTokenKey is returned when the election's tokens are hashed under
// another key than the one given.
var ErrOtherTokenKey = errors.New("the election's ballot tokens are hashed under another key")

// ErrOtherCarrier is returned when the database's election is carried by
// another transport or broker than the one asked for.
var ErrOtherCarrier = errors.New("the election is carried elsewhere")

// WeightedCandidate is a standing candidate with their relative share of
// simulated ballots.
type WeightedCandidate struct {
	Candidate
	Weight float64
}

// TallyBatch is one delivered batch of votes_topic records from one
// partition, decoded, for the tally to count.
type TallyBatch struct {
	// Election is the ID of the election the batch was read for (whose start
	// positions left these records in); "" skips the check.
	Election  string
	Topic     string
	Partition int32
	// Ballots are the records that decoded; the database decides whether
	// each is counted.
	Ballots []BallotAt
	// Rejects are the records already rejected while decoding (malformed,
	// oversized); they are recorded in rejected_votes in the same transaction.
	Rejects []RejectedRecord
}

// BallotAt is a decoded ballot and where it came from.
type BallotAt struct {
	Offset int64
	Ballot
	// Payload is the raw record, kept in rejected_votes if it is rejected.
	Payload []byte
}

// RejectedRecord is a record the tally did not count.
type RejectedRecord struct {
	Offset  int64
	Reason  Reason
	Detail  string
	VoterID string
	Payload []byte
}

// CandidateTotal is a candidate's running total, as published on
// aggregated_votes_per_candidate (keyed by candidate_id).
type CandidateTotal struct {
	CandidateID      string    `json:"candidate_id"`
	CandidateName    string    `json:"candidate_name"`
	PartyAffiliation string    `json:"party_affiliation"`
	PhotoURL         string    `json:"photo_url"`
	TotalVotes       int64     `json:"total_votes"`
	UpdatedAt        time.Time `json:"updated_at"`
	// Version and Election are those of the Totals read it comes from.
	Version  int64  `json:"version"`
	Election string `json:"election"`
}

// StateTotal is a state's running turnout, as published on
// aggregated_turnout_by_location (keyed by state).
type StateTotal struct {
	State      string `json:"state"`
	TotalVotes int64  `json:"total_votes"`
	Registered int64  `json:"registered"`
	// VotesByCandidate are the state's votes per candidate ID (the
	// candidates with none are absent), from results_by_state.
	VotesByCandidate map[string]int64 `json:"votes_by_candidate"`
	UpdatedAt        time.Time        `json:"updated_at"`
	Version          int64            `json:"version"`
	Election         string           `json:"election"`
}

// TallyResult is what a batch did.
type TallyResult struct {
	// Counted records are newly in the tallies.
	Counted int
	// Redelivered records were already decided by an earlier delivery of the
	// same offset; counted ones among them changed nothing.
	Redelivered int
	// Rejected are all records of the batch that are not counted, whether
	// decided now or by an earlier delivery, with their reasons.
	Rejected []RejectedRecord
	// Candidates and States are the keys whose totals the batch changed.
	Candidates []string
	States     []string
}

// ErrElectionChanged means the database holds another election than the
// one a batch was judged against (it was reset and registered again): the
// caller must read the election again and retry.
var ErrElectionChanged = errors.New("the database holds another election than the batch was read for")

// ErrNoElection means no election is registered yet: stages wait (their
// batches fail and are retried) rather than judge records against no roll.
var ErrNoElection = errors.New("no election is registered yet")

// Totals are running totals as of one read, versioned: see PublishTotals.
type Totals struct {
	// Election is the ID of the election the totals are of.
	Election string
	// Version increases with every read, across all keys.
	Version    int64
	Candidates []CandidateTotal
	States     []StateTotal
}

// TotalsRequest selects the totals PublishTotals reads: the named
// candidates and states, or every one of either kind with All*.
type TotalsRequest struct {
	Candidates    []string
	States        []string
	AllCandidates bool
	AllStates     bool
}
