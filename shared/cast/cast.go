// Package cast is the cast function: real ballots over HTTP. It takes API
// Gateway's HTTP API events (payload 2.0), as the deployed HTTP API and the
// local harness's server send them, and answers:
//
//	GET  /            the ballot page
//	GET  /candidates  the candidates, for the page
//	GET  /avatars/…   the pictures the candidates' photo_url refer to
//	POST /ballots     {"token": "...", "candidate_id": "..."}: the ballot
//
// A ballot is accepted (202, with a receipt) once the broker has stored its
// vote on votes_topic, in the ballot stage's shape and keyed by voter_id, so
// the tally counts it like any other and stays the authority. Before
// producing, the voter's ballot is claimed in the database by the token's
// keyed hash: an unknown token is 401, an unknown candidate 422, a voter who
// voted 409. Malformed bodies are 400, oversized ones 413, and a client
// sending unknown tokens faster than the limit is answered 429. Every error
// body is JSON with a stable "error" code. Tokens are never logged.
package cast

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/votingpipe/voting/shared/avatar"
	"github.com/votingpipe/voting/shared/ballotpage"
	"github.com/votingpipe/voting/shared/config"
	"github.com/votingpipe/voting/shared/election"
	"github.com/votingpipe/voting/shared/internal/batch"
	"github.com/votingpipe/voting/shared/stream"
	"github.com/votingpipe/voting/shared/tokens"
)

// Store is the database the cast function needs; the Postgres store
// implements it.
type Store interface {
	Election(ctx context.Context) (*election.Election, error)
	ElectionID(ctx context.Context) (string, error)
	Candidates(ctx context.Context) ([]election.WeightedCandidate, error)
	ClaimBallots(ctx context.Context, ballots []election.BallotClaim) ([]election.Claim, error)
	ReleaseBallot(ctx context.Context, voterID string) error
}

// Error codes of the API's error bodies.
const (
	CodeMalformed        = "malformed_request"
	CodeInvalidField     = "invalid_field"
	CodeUnknownToken     = "unknown_token"
	CodeAlreadyVoted     = "already_voted"
	CodeTooLarge         = "body_too_large"
	CodeUnknownCandidate = "unknown_candidate"
	CodeThrottled        = "throttled"
	CodeUnavailable      = "unavailable"
	CodeNotFound         = "not_found"
	CodeMethod           = "method_not_allowed"
)

// Processor serves the cast API.
type Processor struct {
	Store    Store
	Producer stream.Producer
	Key      tokens.Key
	// VotesTopic receives the votes.
	VotesTopic string
	Config     config.Cast
	Log        *slog.Logger
	// Now is the clock of voting times (default time.Now).
	Now func() time.Time

	limiter limiter
	mu      sync.Mutex
	sheet   *sheet
	once    sync.Once
	claims  *batch.Batcher[election.BallotClaim, election.Claim]
}

// batchers makes the claim batcher: the ballots that arrive together are
// claimed in one statement.
func (p *Processor) batchers() {
	p.once.Do(func() {
		p.claims = &batch.Batcher[election.BallotClaim, election.Claim]{Run: p.Store.ClaimBallots, Max: 256, Workers: 2,
			Key: func(b election.BallotClaim) string { return string(b.TokenHash) }}
	})
}

// New returns the cast function over st, producing votes with prod.
func New(st Store, prod stream.Producer, key tokens.Key, t config.Topics, c config.Cast, log *slog.Logger) *Processor {
	return &Processor{Store: st, Producer: prod, Key: key, VotesTopic: t.Votes, Config: c, Log: log}
}

// sheet is what the cast function keeps of an election: its candidates and
// their vote fields.
type sheet struct {
	election, name string
	candidates     []candidateJSON
	fields         map[string][]byte
}

type candidateJSON struct {
	ID       string `json:"candidate_id"`
	Name     string `json:"candidate_name"`
	Party    string `json:"party_affiliation"`
	PhotoURL string `json:"photo_url"`
}

// Handle answers one HTTP API request. It never returns an error: every
// failure is an HTTP answer (API Gateway would turn an error into a bare 500).
func (p *Processor) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	method, path := req.RequestContext.HTTP.Method, req.RawPath
	if path == "" {
		path = req.RequestContext.HTTP.Path
	}
	var resp events.APIGatewayV2HTTPResponse
	switch {
	case method == http.MethodOptions:
		resp = events.APIGatewayV2HTTPResponse{StatusCode: http.StatusNoContent, Headers: map[string]string{}}
	case path == "/" && method == http.MethodGet:
		resp = p.page()
	case path == "/candidates" && method == http.MethodGet:
		resp = p.listCandidates(ctx)
	case strings.HasPrefix(path, "/"+avatar.Prefix) && method == http.MethodGet:
		resp = picture(strings.TrimPrefix(path, "/"))
	case path == "/ballots" && method == http.MethodPost:
		resp = p.cast(ctx, req)
	case path == "/" || path == "/candidates" || path == "/ballots" || strings.HasPrefix(path, "/"+avatar.Prefix):
		resp = problem(http.StatusMethodNotAllowed, CodeMethod, "method "+method+" is not allowed here")
	default:
		resp = problem(http.StatusNotFound, CodeNotFound, "no such resource")
	}
	p.cors(req, &resp)
	return resp, nil
}

// cors lets the dashboard's origin (Config.AllowedOrigin) call the API from
// a browser; any other origin gets no CORS headers, so browsers refuse it.
func (p *Processor) cors(req events.APIGatewayV2HTTPRequest, resp *events.APIGatewayV2HTTPResponse) {
	origin := header(req, "origin")
	if resp.Headers == nil {
		resp.Headers = map[string]string{}
	}
	resp.Headers["Vary"] = "Origin"
	if origin == "" || p.Config.AllowedOrigin == "" || origin != strings.TrimSuffix(p.Config.AllowedOrigin, "/") {
		return
	}
	resp.Headers["Access-Control-Allow-Origin"] = origin
	if req.RequestContext.HTTP.Method == http.MethodOptions {
		resp.Headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
		resp.Headers["Access-Control-Allow-Headers"] = "content-type"
		resp.Headers["Access-Control-Max-Age"] = "600"
	}
}

func (p *Processor) page() events.APIGatewayV2HTTPResponse {
	body, err := ballotpage.Render("")
	if err != nil {
		return problem(http.StatusInternalServerError, CodeUnavailable, "the ballot page could not be rendered")
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusOK, Body: string(body), Headers: map[string]string{
		"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff",
		"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}}
}

// picture answers GET /avatars/{name}: the SVG of the avatar reference
// (package avatar), which never changes, or 404 for a name that is not one.
// The path may come percent-encoded (API Gateway's rawPath) or not (the
// local harness); avatar.Parse takes both.
func picture(ref string) events.APIGatewayV2HTTPResponse {
	b, ok := avatar.SVG(ref)
	if !ok {
		return problem(http.StatusNotFound, CodeNotFound, "no such picture")
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusOK, Body: string(b), Headers: avatar.Headers()}
}

func (p *Processor) listCandidates(ctx context.Context) events.APIGatewayV2HTTPResponse {
	id, err := p.Store.ElectionID(ctx)
	if err != nil {
		return p.unavailable(ctx, "read the election", err)
	}
	if id == "" {
		return problem(http.StatusServiceUnavailable, CodeUnavailable, "no election is registered yet")
	}
	s, err := p.loadSheet(ctx, id)
	if err != nil {
		return p.unavailable(ctx, "read the candidates", err)
	}
	return reply(http.StatusOK, map[string]any{"election": s.name, "candidates": s.candidates}, "max-age=5")
}

// loadSheet returns the sheet of the election id, reading it when the
// database holds another election than the one kept.
func (p *Processor) loadSheet(ctx context.Context, id string) (*sheet, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sheet != nil && p.sheet.election == id {
		return p.sheet, nil
	}
	e, err := p.Store.Election(ctx)
	if err != nil {
		return nil, err
	}
	if e == nil || e.ID != id {
		return nil, errors.New("the election changed while reading it")
	}
	if e.TokenKeyID != "" && e.TokenKeyID != p.Key.ID() {
		return nil, fmt.Errorf("%w: key %s, the cast function has %s (TOKEN_KEY / TOKEN_KEY_SECRET_ARN, or <state-dir>/token.key)",
			election.ErrOtherTokenKey, e.TokenKeyID, p.Key.ID())
	}
	rows, err := p.Store.Candidates(ctx)
	if err != nil {
		return nil, err
	}
	s := &sheet{election: e.ID, name: e.Name, fields: map[string][]byte{}}
	for _, r := range rows {
		s.candidates = append(s.candidates, candidateJSON{r.CandidateID, r.CandidateName, r.PartyAffiliation, r.PhotoURL})
		s.fields[r.CandidateID] = election.CandidateFields(r.Candidate)
	}
	p.sheet = s
	return s, nil
}

func (p *Processor) unavailable(ctx context.Context, what string, err error) events.APIGatewayV2HTTPResponse {
	if p.Log != nil {
		p.Log.ErrorContext(ctx, "cast: could not "+what, "error", err)
	}
	r := problem(http.StatusServiceUnavailable, CodeUnavailable, "voting is unavailable for a moment; try again")
	r.Headers["Retry-After"] = "1"
	return r
}

func header(req events.APIGatewayV2HTTPRequest, name string) string {
	if v, ok := req.Headers[name]; ok {
		return v
	}
	for k, v := range req.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// body returns the request's body bytes, decoding base64 when API Gateway
// encoded it.
func body(req events.APIGatewayV2HTTPRequest) ([]byte, error) {
	if req.IsBase64Encoded {
		return base64.StdEncoding.DecodeString(req.Body)
	}
	return []byte(req.Body), nil
}

// reply is a JSON answer.
func reply(status int, v any, cache string) events.APIGatewayV2HTTPResponse {
	b, _ := json.Marshal(v)
	return events.APIGatewayV2HTTPResponse{StatusCode: status, Body: string(b), Headers: map[string]string{
		"Content-Type": "application/json", "Cache-Control": cache, "X-Content-Type-Options": "nosniff"}}
}

// problem is a JSON error answer with its stable code.
func problem(status int, code, msg string) events.APIGatewayV2HTTPResponse {
	return reply(status, map[string]string{"error": code, "message": msg}, "no-store")
}

// sameHash compares two keyed hashes in constant time.
func sameHash(a, b []byte) bool { return len(a) == len(b) && subtle.ConstantTimeCompare(a, b) == 1 }
