package cast_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/votingpipe/voting/shared/avatar"
	"github.com/votingpipe/voting/shared/broker"
	"github.com/votingpipe/voting/shared/broker/embedded"
	"github.com/votingpipe/voting/shared/cast"
	"github.com/votingpipe/voting/shared/config"
	"github.com/votingpipe/voting/shared/election"
	"github.com/votingpipe/voting/shared/internal/testkit"
	"github.com/votingpipe/voting/shared/register"
	"github.com/votingpipe/voting/shared/store"
	"github.com/votingpipe/voting/shared/stream"
	"github.com/votingpipe/voting/shared/tokens"
)

var topics = config.Topics{Voters: "voters_topic", Votes: "votes_topic", CandidateTotals: "a", TurnoutTotals: "b", VotesDLQ: "c", VotersDLQ: "d"}

// rig is an election of 40 voters registered with tokens into a fresh
// database, the cast function over it producing to an embedded broker, and
// everything it logs.
type rig struct {
	st     *store.Store
	db     *pgxpool.Pool
	cl     *kgo.Client
	p      *cast.Processor
	issued []tokens.Issued
	cands  []election.Candidate
	logs   *bytes.Buffer
	key    tokens.Key
}

func newRig(t *testing.T) *rig {
	t.Helper()
	ctx := context.Background()
	emb, err := embedded.Start(embedded.Options{Topics: broker.Topics(topics, 3)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Close)
	opts, err := broker.ClientOptions(config.Kafka{Brokers: emb.Addrs(), ClientID: "test"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	st, db := testkit.OpenStore(t)
	key, _ := tokens.NewKey(bytes.Repeat([]byte{9}, 32))
	path := filepath.Join(t.TempDir(), "tokens.csv")
	logs := &bytes.Buffer{}
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	reg := register.New(st, broker.Producer{Client: cl}, nil, topics, log)
	reg.Tokens, reg.TokenKey = tokens.File{Path: path}, key
	resp, err := reg.Register(ctx, register.Request{Voters: 40, Candidates: 3})
	if err != nil {
		t.Fatal(err)
	}
	issued, err := tokens.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c := config.Cast{MaxBodyBytes: 4096, BadTokensPerMinute: 30, AllowedOrigin: "https://results.example.org"}
	return &rig{st: st, db: db, cl: cl, p: cast.New(st, broker.Producer{Client: cl}, key, topics, c, log),
		issued: issued, cands: resp.Candidates, logs: logs, key: key}
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// call sends one request through the Lambda runtime's handler path, as
// API Gateway's HTTP API (payload 2.0) would.
func (r *rig) call(t *testing.T, method, path, body string, headers map[string]string) (int, map[string]string, map[string]any) {
	t.Helper()
	req := events.APIGatewayV2HTTPRequest{Version: "2.0", RouteKey: method + " " + path, RawPath: path, Body: body, Headers: headers}
	req.RequestContext.HTTP.Method, req.RequestContext.HTTP.Path, req.RequestContext.HTTP.SourceIP = method, path, "203.0.113.7"
	if ip := headers["x-test-source-ip"]; ip != "" {
		req.RequestContext.HTTP.SourceIP = ip
	}
	if headers["x-test-base64"] != "" {
		req.Body, req.IsBase64Encoded = base64.StdEncoding.EncodeToString([]byte(body)), true
	}
	payload, _ := json.Marshal(req)
	out, err := lambda.NewHandler(r.p.Handle).Invoke(context.Background(), payload)
	if err != nil {
		t.Fatalf("%s %s: the handler failed: %v", method, path, err)
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatal(err)
	}
	var b map[string]any
	if strings.HasPrefix(resp.Headers["Content-Type"], "application/json") {
		if err := json.Unmarshal([]byte(resp.Body), &b); err != nil {
			t.Fatalf("%s %s: body %q is not JSON", method, path, resp.Body)
		}
	}
	return resp.StatusCode, resp.Headers, b
}

func (r *rig) ballot(t *testing.T, token, candidate string) (int, map[string]any) {
	t.Helper()
	status, _, body := r.call(t, "POST", "/ballots", fmt.Sprintf(`{"token": %q, "candidate_id": %q}`, token, candidate), nil)
	return status, body
}

// votes reads every record of votes_topic.
func (r *rig) votes(t *testing.T, want int) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := kgo.NewClient(kgo.SeedBrokers(r.cl.OptValue(kgo.SeedBrokers).([]string)...),
		kgo.ConsumeTopics(topics.Votes), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out []*kgo.Record
	for len(out) < want {
		fs := c.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d votes", len(out), want)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

func TestCastAcceptsABallotOnceAndProducesTheBallotStagesVote(t *testing.T) {
	r := newRig(t)
	tok, cand := r.issued[0], r.cands[1]
	status, body := r.ballot(t, strings.ToLower(tok.Token), cand.CandidateID) // as typed
	if status != 202 {
		t.Fatalf("status %d %v, want 202", status, body)
	}
	part, off := int32(body["partition"].(float64)), int64(body["offset"].(float64))
	if body["receipt"] != r.key.Receipt(tok.VoterID, part, off) || body["candidate_id"] != cand.CandidateID {
		t.Errorf("receipt %v", body)
	}
	recs := r.votes(t, 1)
	rec := recs[0]
	if string(rec.Key) != tok.VoterID || rec.Partition != part || rec.Offset != off {
		t.Fatalf("the vote is at %d/%d keyed %q, the receipt says %d/%d for %s", rec.Partition, rec.Offset, rec.Key, part, off, tok.VoterID)
	}
	b, err := election.DecodeBallot(rec.Value, 65536)
	if err != nil || b.VoterID != tok.VoterID || b.CandidateID != cand.CandidateID {
		t.Fatalf("the vote decodes to %+v, %v", b, err)
	}
	var shape map[string]any
	json.Unmarshal(rec.Value, &shape) //nolint:errcheck
	for _, f := range []string{"voter_id", "voter_name", "date_of_birth", "gender", "address", "picture", "registered_age",
		"candidate_id", "candidate_name", "party_affiliation", "photo_url", "voting_time", "vote"} {
		if _, ok := shape[f]; !ok {
			t.Errorf("the vote lacks the ballot stage's field %s", f)
		}
	}
	if shape["vote"] != float64(1) {
		t.Errorf("vote is %v", shape["vote"])
	}

	// Again, with the same or another candidate: 409; once the tally has
	// counted the vote, with the first ballot's receipt.
	for _, c := range []election.Candidate{cand, r.cands[2]} {
		status, body = r.ballot(t, tok.Token, c.CandidateID)
		if status != 409 || body["error"] != cast.CodeAlreadyVoted {
			t.Errorf("second ballot: %d %v, want 409 already_voted", status, body)
		}
	}
	if _, err := r.st.Tally(context.Background(), election.TallyBatch{Topic: topics.Votes, Partition: rec.Partition,
		Ballots: []election.BallotAt{{Offset: rec.Offset, Ballot: b}}}); err != nil {
		t.Fatal(err)
	}
	status, body = r.ballot(t, tok.Token, r.cands[2].CandidateID)
	if status != 409 || body["receipt"] != r.key.Receipt(tok.VoterID, part, off) {
		t.Errorf("a ballot after the vote is counted: %d %v, want 409 with the first receipt", status, body)
	}
	// A voter whose vote the tally counted (cast through the ballot stage).
	other := r.issued[1]
	if _, err := r.st.Tally(context.Background(), election.TallyBatch{Topic: topics.Votes, Partition: 2, Ballots: []election.BallotAt{{
		Offset: 100, Ballot: election.Ballot{VoterID: other.VoterID, CandidateID: cand.CandidateID, VotingTime: time.Now()}}}}); err != nil {
		t.Fatal(err)
	}
	if status, body = r.ballot(t, other.Token, cand.CandidateID); status != 409 || body["error"] != cast.CodeAlreadyVoted {
		t.Errorf("ballot of a voter already counted: %d %v", status, body)
	}
	if n := len(r.votes(t, 1)); n != 1 {
		t.Errorf("%d votes produced, want 1", n)
	}
}

func TestCastAnswersEveryErrorWithItsStatusAndCode(t *testing.T) {
	r := newRig(t)
	tok, cand := r.issued[3].Token, r.cands[0].CandidateID
	for _, tt := range []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"not JSON", "POST", "/ballots", `{"token": `, 400, cast.CodeMalformed},
		{"an array", "POST", "/ballots", `[1, 2]`, 400, cast.CodeMalformed},
		{"two values", "POST", "/ballots", `{"token": "x"} {}`, 400, cast.CodeMalformed},
		{"unknown field", "POST", "/ballots", `{"token": "` + tok + `", "candidate_id": "` + cand + `", "voter_id": "x"}`, 400, cast.CodeMalformed},
		{"token of the wrong form", "POST", "/ballots", `{"token": "12345", "candidate_id": "` + cand + `"}`, 400, cast.CodeInvalidField},
		{"no candidate", "POST", "/ballots", `{"token": "` + tok + `"}`, 400, cast.CodeInvalidField},
		{"control characters", "POST", "/ballots", `{"token": "` + tok + `", "candidate_id": "a\u0000b"}`, 400, cast.CodeInvalidField},
		{"deep nesting", "POST", "/ballots", strings.Repeat("[", 2000) + strings.Repeat("]", 2000), 400, cast.CodeMalformed},
		{"oversized", "POST", "/ballots", `{"token": "` + tok + `", "candidate_id": "` + strings.Repeat("x", 5000) + `"}`, 413, cast.CodeTooLarge},
		{"unknown token", "POST", "/ballots", `{"token": "` + tokens.New() + `", "candidate_id": "` + cand + `"}`, 401, cast.CodeUnknownToken},
		{"unknown candidate", "POST", "/ballots", `{"token": "` + tok + `", "candidate_id": "nobody"}`, 422, cast.CodeUnknownCandidate},
		{"wrong method", "GET", "/ballots", ``, 405, cast.CodeMethod},
		{"no such path", "GET", "/voters", ``, 404, cast.CodeNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, h, body := r.call(t, tt.method, tt.path, tt.body, nil)
			if status != tt.status || body["error"] != tt.code || body["message"] == "" {
				t.Fatalf("%d %v, want %d %s", status, body, tt.status, tt.code)
			}
			if h["Content-Type"] != "application/json" || h["Cache-Control"] != "no-store" {
				t.Errorf("headers %v", h)
			}
		})
	}
	// The unknown candidate took no claim: the voter can still vote.
	if status, body := r.ballot(t, tok, cand); status != 202 {
		t.Fatalf("after a 422 the voter's ballot is %d %v", status, body)
	}
	// A base64-encoded body (API Gateway encodes binary ones) is read.
	status, _, body := r.call(t, "POST", "/ballots", `{"token": "`+r.issued[4].Token+`", "candidate_id": "`+cand+`"}`, map[string]string{"x-test-base64": "1"})
	if status != 202 {
		t.Fatalf("base64 body: %d %v", status, body)
	}
}

// A client trying tokens is cut off after the limit; others are not, and
// a voter behind the same address is once the minute is over.
func TestCastThrottlesAClientTryingTokens(t *testing.T) {
	r := newRig(t)
	now := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	r.p.Now = func() time.Time { return now }
	cand := r.cands[0].CandidateID
	for i := range 30 {
		if status, body := r.ballot(t, tokens.New(), cand); status != 401 {
			t.Fatalf("guess %d: %d %v", i, status, body)
		}
	}
	if status, body := r.ballot(t, tokens.New(), cand); status != 429 || body["error"] != cast.CodeThrottled {
		t.Fatalf("the 31st guess: %d %v, want 429", status, body)
	}
	if status, _ := r.ballot(t, r.issued[0].Token, cand); status != 429 {
		t.Fatalf("a real token from the same address within the minute: %d, want 429", status)
	}
	status, _, _ := r.call(t, "POST", "/ballots", `{"token": "`+r.issued[0].Token+`", "candidate_id": "`+cand+`"}`, map[string]string{"x-test-source-ip": "198.51.100.1"})
	if status != 202 {
		t.Fatalf("another address: %d, want 202", status)
	}
	now = now.Add(time.Minute)
	if status, _ := r.ballot(t, r.issued[1].Token, cand); status != 202 {
		t.Fatalf("the next minute: %d, want 202", status)
	}
}

func TestCastServesThePageAndTheCandidatesWithCORSForTheDashboardOnly(t *testing.T) {
	r := newRig(t)
	status, h, _ := r.call(t, "GET", "/", "", nil)
	if status != 200 || !strings.HasPrefix(h["Content-Type"], "text/html") || h["X-Frame-Options"] != "DENY" {
		t.Fatalf("GET /: %d %v", status, h)
	}
	status, _, body := r.call(t, "GET", "/candidates", "", nil)
	list, _ := body["candidates"].([]any)
	if status != 200 || len(list) != 3 || body["election"] != "Election 42" {
		t.Fatalf("GET /candidates: %d %v", status, body)
	}
	first := list[0].(map[string]any)
	if first["candidate_id"] == "" || first["photo_url"] == "" || first["party_affiliation"] == "" || first["biography"] != nil {
		t.Errorf("a candidate: %v", first)
	}
	_, h, _ = r.call(t, "GET", "/candidates", "", map[string]string{"origin": "https://results.example.org"})
	if h["Access-Control-Allow-Origin"] != "https://results.example.org" {
		t.Errorf("the dashboard's origin is not allowed: %v", h)
	}
	_, h, _ = r.call(t, "GET", "/candidates", "", map[string]string{"origin": "https://evil.example"})
	if _, ok := h["Access-Control-Allow-Origin"]; ok {
		t.Errorf("another origin is allowed: %v", h)
	}
	status, h, _ = r.call(t, "OPTIONS", "/ballots", "", map[string]string{"Origin": "https://results.example.org", "access-control-request-method": "POST"})
	if status != 204 || h["Access-Control-Allow-Methods"] == "" || !strings.Contains(h["Access-Control-Allow-Headers"], "content-type") {
		t.Errorf("preflight: %d %v", status, h)
	}
}

// The candidates' photo_url are avatar references, which the API serves
// (the ballot page shows them from there) as immutable SVGs.
func TestCastServesTheCandidatesPictures(t *testing.T) {
	r := newRig(t)
	_, _, body := r.call(t, "GET", "/candidates", "", nil)
	list, _ := body["candidates"].([]any)
	if len(list) == 0 {
		t.Fatalf("no candidates: %v", body)
	}
	for _, c := range list {
		ref, _ := c.(map[string]any)["photo_url"].(string)
		want, ok := avatar.SVG(ref)
		if !ok {
			t.Fatalf("photo_url %q is not an avatar reference", ref)
		}
		req := events.APIGatewayV2HTTPRequest{Version: "2.0", RouteKey: "GET /avatars/{name}", RawPath: "/" + ref,
			PathParameters: map[string]string{"name": strings.TrimPrefix(ref, avatar.Prefix)}}
		req.RequestContext.HTTP.Method, req.RequestContext.HTTP.Path = "GET", "/"+ref
		resp, err := r.p.Handle(context.Background(), req)
		if err != nil || resp.StatusCode != 200 || resp.Body != string(want) || resp.Headers["Content-Type"] != "image/svg+xml" ||
			!strings.Contains(resp.Headers["Cache-Control"], "immutable") || resp.Headers["X-Content-Type-Options"] != "nosniff" {
			t.Errorf("GET /%s: %v %d %v %q", ref, err, resp.StatusCode, resp.Headers, resp.Body)
		}
	}
	// Percent-encoded initials, as API Gateway's rawPath has them.
	ref := avatar.Ref("Élodie Ng", "#1f77b4")
	want, _ := avatar.SVG(ref)
	req := events.APIGatewayV2HTTPRequest{RawPath: "/" + ref}
	req.RequestContext.HTTP.Method = "GET"
	if resp, _ := r.p.Handle(context.Background(), req); resp.StatusCode != 200 || resp.Body != string(want) {
		t.Errorf("GET /%s: %d %q", ref, resp.StatusCode, resp.Body)
	}
	for _, path := range []string{"/avatars/", "/avatars/al-1f77b4.svg", "/avatars/AL-1f77b4.png", "/avatars/../candidates",
		"/avatars/%2E%2E%2Fcandidates-1f77b4.svg", "/avatars/AL-1f77b4.svg/x"} {
		if status, h, body := r.call(t, "GET", path, "", nil); status != 404 || body["error"] != cast.CodeNotFound || h["Cache-Control"] != "no-store" {
			t.Errorf("GET %s: %d %v %v, want 404", path, status, h, body)
		}
	}
	if status, _, body := r.call(t, "POST", "/avatars/AL-1f77b4.svg", "", nil); status != 405 || body["error"] != cast.CodeMethod {
		t.Errorf("POST: %d %v, want 405", status, body)
	}
}

// failingProducer is a broker that refuses every record.
type failingProducer struct{}

func (failingProducer) Produce(_ context.Context, r *stream.Record, promise func(*stream.Record, error)) {
	promise(r, errors.New("broker unavailable"))
}
func (failingProducer) Flush(context.Context) error { return nil }

// A vote the broker did not take is 503, and the claim goes: the voter's
// next try is accepted.
func TestCastReleasesTheClaimWhenTheBrokerFails(t *testing.T) {
	r := newRig(t)
	real := r.p.Producer
	r.p.Producer = failingProducer{}
	status, _, body := r.call(t, "POST", "/ballots", `{"token": "`+r.issued[5].Token+`", "candidate_id": "`+r.cands[0].CandidateID+`"}`, nil)
	if status != 503 || body["error"] != cast.CodeUnavailable {
		t.Fatalf("%d %v, want 503", status, body)
	}
	r.p.Producer = real
	if status, body := r.ballot(t, r.issued[5].Token, r.cands[0].CandidateID); status != 202 {
		t.Fatalf("the retry: %d %v", status, body)
	}
}

// Nothing the function logs holds a token, even when it fails.
func TestCastNeverLogsATokenOrTheKey(t *testing.T) {
	r := newRig(t)
	tok := r.issued[6].Token
	r.ballot(t, tok, r.cands[0].CandidateID)
	r.ballot(t, tok, r.cands[0].CandidateID)
	r.ballot(t, tok, "nobody")
	r.p.Producer = failingProducer{}
	r.ballot(t, r.issued[7].Token, r.cands[0].CandidateID)
	logs := r.logs.String()
	if !strings.Contains(logs, "produce a vote") {
		t.Fatalf("the failure was not logged at all:\n%s", logs)
	}
	for _, is := range r.issued {
		if strings.Contains(strings.ToUpper(logs), is.Token) {
			t.Fatalf("a token is in the logs:\n%s", logs)
		}
	}
	if strings.Contains(logs, fmt.Sprintf("%x", []byte(r.key))) || strings.Contains(logs, string(r.key)) {
		t.Fatal("the key is in the logs")
	}
}
