package election

import (
	"bytes"
	"encoding/json"
	"time"
)

// Address is where a voter lives. State is the dimension turnout is reported by.
type Address struct {
	Street   string `json:"street"`
	City     string `json:"city"`
	State    string `json:"state"`
	Country  string `json:"country"`
	Postcode string `json:"postcode"`
}

// Voter is one registered voter: a row of the voters table and a record of
// voters_topic (keyed by VoterID).
type Voter struct {
	VoterID            string  `json:"voter_id"`
	VoterName          string  `json:"voter_name"`
	DateOfBirth        string  `json:"date_of_birth"` // YYYY-MM-DD
	Gender             string  `json:"gender"`
	Nationality        string  `json:"nationality"`
	RegistrationNumber string  `json:"registration_number"`
	Address            Address `json:"address"`
	Email              string  `json:"email"`
	PhoneNumber        string  `json:"phone_number"`
	CellNumber         string  `json:"cell_number"`
	Picture            string  `json:"picture"`
	RegisteredAge      int     `json:"registered_age"`
}

// Candidate is one candidate of the election: a row of the candidates table.
type Candidate struct {
	CandidateID      string `json:"candidate_id"`
	CandidateName    string `json:"candidate_name"`
	PartyAffiliation string `json:"party_affiliation"`
	Biography        string `json:"biography"`
	CampaignPlatform string `json:"campaign_platform"`
	PhotoURL         string `json:"photo_url"`
}

// Vote is a cast vote as published on votes_topic (keyed by voter_id): every
// field of the voter and of the chosen candidate, the time of voting and the
// constant 1, exactly as the original voting.py produced it.
type Vote struct {
	Voter
	Candidate
	VotingTime time.Time `json:"voting_time"`
	Vote       int       `json:"vote"`
}

// AppendVote appends the vote JSON of a voter record to dst: the record's own
// bytes (a JSON object that DecodeVoter accepted) with the candidate's fields
// (candidateFields, from CandidateFields), voting_time and vote added. The
// voter's fields are copied, not re-encoded, so the same record always gives
// byte-identical votes; Vote's JSON has the same fields.
func AppendVote(dst, voterRecord, candidateFields []byte, votingTime time.Time) []byte {
	rec := bytes.TrimSpace(voterRecord)
	dst = append(dst, rec[:len(rec)-1]...) // drop the closing brace
	dst = append(dst, ',')
	dst = append(dst, candidateFields...)
	dst = append(dst, `,"voting_time":"`...)
	dst = votingTime.UTC().Truncate(time.Millisecond).AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","vote":1}`...)
	return dst
}

// CandidateFields returns the candidate's JSON fields without the enclosing
// braces, ready for AppendVote.
func CandidateFields(c Candidate) []byte {
	b, _ := json.Marshal(c) // a struct of strings always encodes
	return b[1 : len(b)-1]
}

// Ballot is the part of a vote that the tally needs. A record carrying only
// these four fields is a valid vote.
type Ballot struct {
	VoterID     string
	CandidateID string
	VotingTime  time.Time
}

// DateLayout is the layout of Voter.DateOfBirth.
const DateLayout = "2006-01-02"

// AgeBands are the turnout bands by registered age, in display order. They
// match the age_band column computed by the database.
var AgeBands = []string{"18-24", "25-34", "35-44", "45-54", "55-64", "65+"}

// AgeBand returns the band of AgeBands an age falls in.
func AgeBand(age int) string {
	switch {
	case age < 25:
		return "18-24"
	case age < 35:
		return "25-34"
	case age < 45:
		return "35-44"
	case age < 55:
		return "45-54"
	case age < 65:
		return "55-64"
	default:
		return "65+"
	}
}
