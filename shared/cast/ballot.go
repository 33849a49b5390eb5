package cast

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/votingpipe/voting/shared/election"
	"github.com/votingpipe/voting/shared/stream"
	"github.com/votingpipe/voting/shared/tokens"
)

// Ballot is the body of POST /ballots.
type Ballot struct {
	Token       string `json:"token"`
	CandidateID string `json:"candidate_id"`
}

// Receipt is the body of a 202: where the vote is on votes_topic, and a
// keyed digest of it that only this system can issue.
type Receipt struct {
	Receipt     string `json:"receipt"`
	Partition   int32  `json:"partition"`
	Offset      int64  `json:"offset"`
	CandidateID string `json:"candidate_id"`
}

// maxIDLen bounds a candidate ID in a ballot.
const maxIDLen = 128

// cast takes one ballot: checks its form, the client's standing, the
// token and the candidate, claims the voter's ballot, produces the vote and
// waits for the broker to store it.
func (p *Processor) cast(ctx context.Context, req events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	limit := p.Config.MaxBodyBytes
	if limit <= 0 {
		limit = 4096
	}
	if len(req.Body) > 2*limit { // base64 or not, too big: no need to decode
		return problem(http.StatusRequestEntityTooLarge, CodeTooLarge, "the body is over the limit")
	}
	raw, err := body(req)
	if err != nil {
		return problem(http.StatusBadRequest, CodeMalformed, "the body is not valid base64")
	}
	if len(raw) > limit {
		return problem(http.StatusRequestEntityTooLarge, CodeTooLarge, "the body is over the limit")
	}
	b, msg := parseBallot(raw)
	if msg != "" {
		code := CodeInvalidField
		if b == nil {
			code = CodeMalformed
		}
		return problem(http.StatusBadRequest, code, msg)
	}
	client := req.RequestContext.HTTP.SourceIP
	if !p.limiter.allowed(client, p.Config.BadTokensPerMinute, p.now()) {
		r := problem(http.StatusTooManyRequests, CodeThrottled, "too many unknown tokens from this address; wait a minute")
		r.Headers["Retry-After"] = "60"
		return r
	}
	hash := p.Key.Hash(b.Token)
	p.batchers()
	claim, err := p.claims.Do(ctx, election.BallotClaim{TokenHash: hash, CandidateID: b.CandidateID})
	if err != nil {
		return p.unavailable(ctx, "claim a ballot", err)
	}
	if claim.Election == "" {
		return problem(http.StatusServiceUnavailable, CodeUnavailable, "no election is registered yet")
	}
	sh, err := p.loadSheet(ctx, claim.Election)
	if err != nil {
		return p.unavailable(ctx, "read the election", err)
	}
	switch {
	case claim.Status == election.ClaimUnknownToken || !sameHash(claim.TokenHash, hash):
		p.limiter.failed(client, p.now())
		return problem(http.StatusUnauthorized, CodeUnknownToken, "no voter has this token")
	case claim.Status == election.ClaimUnknownCandidate:
		return problem(http.StatusUnprocessableEntity, CodeUnknownCandidate, "no such candidate is standing")
	case claim.Status == election.ClaimAlreadyVoted:
		r := problem(http.StatusConflict, CodeAlreadyVoted, "this voter has already voted")
		if claim.Stored {
			r = reply(http.StatusConflict, map[string]any{"error": CodeAlreadyVoted, "message": "this voter has already voted",
				"receipt":   p.Key.Receipt(claim.Voter.VoterID, claim.Partition, claim.Offset),
				"partition": claim.Partition, "offset": claim.Offset}, "no-store")
		}
		return r
	}
	rec, err := p.produce(ctx, sh, claim, b.CandidateID)
	if err != nil {
		if rerr := p.Store.ReleaseBallot(context.WithoutCancel(ctx), claim.Voter.VoterID); rerr != nil && p.Log != nil {
			p.Log.WarnContext(ctx, "cast: could not release a ballot's claim; the voter can cast again in a minute", "error", rerr)
		}
		return p.unavailable(ctx, "produce a vote", err)
	}
	return reply(http.StatusAccepted, Receipt{Receipt: p.Key.Receipt(claim.Voter.VoterID, rec.Partition, rec.Offset),
		Partition: rec.Partition, Offset: rec.Offset, CandidateID: b.CandidateID}, "no-store")
}

// parseBallot reads a ballot: nil and why when it is not a JSON object of
// the two fields; the ballot and why when a field is wrong.
func parseBallot(raw []byte) (*Ballot, string) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var b Ballot
	if err := dec.Decode(&b); err != nil {
		return nil, "the body is not a JSON ballot {\"token\": ..., \"candidate_id\": ...}"
	}
	if dec.More() {
		return nil, "the body holds more than one JSON value"
	}
	tok, ok := tokens.Parse(b.Token)
	if !ok {
		return &b, "token: want the 26 letters and digits of a ballot token"
	}
	b.Token = tok
	if b.CandidateID == "" || len(b.CandidateID) > maxIDLen || !printable(b.CandidateID) {
		return &b, "candidate_id: want a candidate's ID"
	}
	return &b, ""
}

func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// produce sends the voter's vote and waits until the broker stored it.
func (p *Processor) produce(ctx context.Context, s *sheet, claim election.Claim, candidateID string) (*stream.Record, error) {
	fields, ok := s.fields[candidateID]
	if !ok {
		return nil, errors.New("the candidate is not on the election's sheet")
	}
	voter, err := json.Marshal(claim.Voter)
	if err != nil {
		return nil, err
	}
	rec := &stream.Record{Topic: p.VotesTopic, Key: []byte(claim.Voter.VoterID),
		Value: election.AppendVote(make([]byte, 0, len(voter)+len(fields)+64), voter, fields, p.now())}
	done := make(chan error, 1)
	p.Producer.Produce(ctx, rec, func(_ *stream.Record, err error) { done <- err })
	select {
	case err := <-done:
		return rec, err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (p *Processor) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}
