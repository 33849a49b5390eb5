package election

// ClaimStatus is what the database said of a ballot cast over HTTP.
type ClaimStatus int

const (
	// ClaimTaken: the voter's ballot may be produced now.
	ClaimTaken ClaimStatus = iota
	// ClaimUnknownToken: no voter has this token.
	ClaimUnknownToken
	// ClaimUnknownCandidate: the token is a voter's, the candidate is none.
	ClaimUnknownCandidate
	// ClaimAlreadyVoted: the voter's vote is counted, or another cast of
	// theirs was accepted (or is being produced).
	ClaimAlreadyVoted
)

// Claim is the outcome of claiming a voter's ballot by their token.
type Claim struct {
	Status ClaimStatus
	// Election is the ID of the database's election.
	Election string
	// Voter is the token's voter and TokenHash its token's keyed hash as
	// stored (for every status but ClaimUnknownToken).
	Voter     Voter
	TokenHash []byte
	// Stored says where the voter's counted vote was on the votes topic
	// (Partition, Offset), when AlreadyVoted and counted.
	Stored    bool
	Partition int32
	Offset    int64
}

// BallotClaim is a ballot to claim: a token's keyed hash and the candidate.
type BallotClaim struct {
	TokenHash   []byte
	CandidateID string
}
