// Package register is the register stage: it generates (or takes) the
// candidates and the voter roll, writes them to Postgres with COPY, and
// publishes every voter to voters_topic. It is invoked directly, not by Kafka,
// and is idempotent and resumable: invoking it again with the same request
// finishes what an interrupted run left and publishes nothing twice.
package register

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/votingpipe/voting/shared/config"
	"github.com/votingpipe/voting/shared/election"
	"github.com/votingpipe/voting/shared/generator"
	"github.com/votingpipe/voting/shared/stream"
	"github.com/votingpipe/voting/shared/tokens"
)

// Request is the register payload, e.g. {"voters": 1000, "candidates": 3, "seed": 42}
// or {"voters": 1000, "candidate_list": [{"candidate_name": "...", "party_affiliation": "..."}]}.
type Request struct {
	// Name is the election's display name.
	Name string `json:"name,omitempty"`
	// Voters is the size of the roll.
	Voters int64 `json:"voters"`
	// Candidates is how many candidates to generate (default 3) when
	// CandidateList is empty.
	Candidates int `json:"candidates,omitempty"`
	// Seed makes the election reproducible (default 42).
	Seed *int64 `json:"seed,omitempty"`
	// CandidateList gives the candidates explicitly.
	CandidateList []generator.CandidateSpec `json:"candidate_list,omitempty"`
	// Rate paces publication in voters per second; 0 publishes as fast as
	// possible. Each voter who votes becomes one vote, so at turnout 1 this
	// is the vote rate.
	Rate float64 `json:"rate,omitempty"`
	// Turnout is the share of the roll the ballot stage casts votes for, in
	// [0, 1] (default 1: everyone, as in the original demo; 0: nobody, an
	// election of real ballots only); who votes varies by state, age and
	// voter (see election.Votes).
	Turnout *float64 `json:"turnout,omitempty"`
}

// UnmarshalJSON reads a request, refusing fields it does not know by name
// ({"voterz": 10} is an unknown field "voterz", not "voters is 0").
func (r *Request) UnmarshalJSON(b []byte) error {
	type plain Request // without this method
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var p plain
	if err := dec.Decode(&p); err != nil {
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return fmt.Errorf("register request: unknown field %s (known: name, voters, candidates, seed, candidate_list, rate, turnout)", name)
		}
		return fmt.Errorf("register request: %w", err)
	}
	if dec.More() {
		return errors.New("register request: more than one JSON value")
	}
	*r = Request(p)
	return nil
}

// Response summarises a registration.
type Response struct {
	Election string  `json:"election"`
	Seed     int64   `json:"seed"`
	Voters   int64   `json:"voters"`
	Turnout  float64 `json:"turnout"`
	// Voting is how many of the roll's voters vote (known once the whole
	// roll is registered; 0 until then).
	Voting     int64                `json:"voting"`
	Candidates []election.Candidate `json:"candidates"`
	// Copied and Published are what this invocation added.
	Copied    int64 `json:"copied"`
	Published int64 `json:"published"`
	// Tokens says where the voters' ballot tokens are (a file, an S3
	// prefix), when they were issued.
	Tokens string `json:"tokens,omitempty"`
	// AlreadyRegistered is true when there was nothing left to do.
	AlreadyRegistered bool    `json:"already_registered"`
	Seconds           float64 `json:"seconds"`
}

// HeaderElection is the header naming the election (its ID) on every voter
// record register publishes.
const HeaderElection = "election_id"

// Limits on a request.
const (
	MaxVoters     = 100_000_000
	MaxCandidates = 50
	DefaultSeed   = 42
)

// Normalize fills defaults and validates the request, reporting every problem.
func (r *Request) Normalize() error {
	var errs []error
	if r.Seed == nil {
		s := int64(DefaultSeed)
		r.Seed = &s
	}
	if r.Voters < 1 || r.Voters > MaxVoters {
		errs = append(errs, fmt.Errorf("voters is %d, want 1-%d", r.Voters, MaxVoters))
	}
	if len(r.CandidateList) > 0 && r.Candidates != 0 && r.Candidates != len(r.CandidateList) {
		errs = append(errs, fmt.Errorf("candidates is %d but candidate_list has %d entries; give one or the other", r.Candidates, len(r.CandidateList)))
	}
	if len(r.CandidateList) == 0 && r.Candidates == 0 {
		r.Candidates = 3
	}
	if len(r.CandidateList) > 0 {
		r.Candidates = len(r.CandidateList)
	}
	if r.Candidates < 1 || r.Candidates > MaxCandidates {
		errs = append(errs, fmt.Errorf("candidates is %d, want 1-%d", r.Candidates, MaxCandidates))
	}
	seen := map[string]bool{}
	for i, c := range r.CandidateList {
		if strings.TrimSpace(c.CandidateName) == "" {
			errs = append(errs, fmt.Errorf("candidate_list[%d]: candidate_name is required", i))
		}
		if strings.TrimSpace(c.PartyAffiliation) == "" {
			errs = append(errs, fmt.Errorf("candidate_list[%d]: party_affiliation is required", i))
		}
		if c.Weight < 0 {
			errs = append(errs, fmt.Errorf("candidate_list[%d]: weight is %g, want >= 0", i, c.Weight))
		}
		// Postgres text cannot hold NUL: say which field, not what COPY says.
		for _, f := range []struct{ name, val string }{
			{"candidate_id", c.CandidateID}, {"candidate_name", c.CandidateName}, {"party_affiliation", c.PartyAffiliation},
			{"biography", c.Biography}, {"campaign_platform", c.CampaignPlatform}, {"photo_url", c.PhotoURL},
		} {
			if strings.ContainsRune(f.val, 0) {
				errs = append(errs, fmt.Errorf("candidate_list[%d]: %s contains a NUL character", i, f.name))
			}
		}
		key := c.CandidateID
		if key == "" {
			key = c.CandidateName + "/" + c.PartyAffiliation
		}
		if seen[key] {
			errs = append(errs, fmt.Errorf("candidate_list[%d]: %q is listed twice", i, key))
		}
		seen[key] = true
	}
	if r.Turnout == nil {
		one := 1.0
		r.Turnout = &one
	}
	if !election.ValidTurnout(*r.Turnout) {
		errs = append(errs, fmt.Errorf("turnout is %g, want 0-1 (0: no simulated votes, real ballots only)", *r.Turnout))
	}
	if r.Rate < 0 {
		errs = append(errs, fmt.Errorf("rate is %g, want >= 0", r.Rate))
	}
	if strings.ContainsRune(r.Name, 0) {
		errs = append(errs, errors.New("name contains a NUL character"))
	}
	if r.Name == "" {
		r.Name = fmt.Sprintf("Election %d", *r.Seed)
	}
	return errors.Join(errs...)
}

// Roll is the storage register needs; the Postgres store implements it.
type Roll interface {
	Migrate(ctx context.Context) error
	LockRegistration(ctx context.Context) (func(), error)
	BeginElection(ctx context.Context, e election.Election, candidates []election.WeightedCandidate) (*election.Election, error)
	// CopyVoters copies a chunk of the roll, with how many of it vote and
	// its voters' token hashes.
	CopyVoters(ctx context.Context, c election.RollChunk) error
	CompleteRoll(ctx context.Context) error
	MarkPublished(ctx context.Context, n int64, done bool) error
	// IsTransient reports whether an error of the storage passes by itself
	// (the database unreachable or restarting), so the work can be resumed.
	IsTransient(err error) bool
}

// Positions tells what carries the topics and where they end now, so that
// a new election records where its own records start; the Kafka adapter
// (broker.Positions) and the NATS bridge implement it.
type Positions interface {
	Carrier(ctx context.Context) (election.Carrier, error)
	Ends(ctx context.Context, topic string) (map[int32]int64, error)
}

// New returns the register stage over roll, publishing voters with prod to
// the configured topics and recording the election's starts from pos.
func New(roll Roll, prod stream.Producer, pos Positions, t config.Topics, log *slog.Logger) *Processor {
	return &Processor{Roll: roll, Producer: prod, Positions: pos, VotersTopic: t.Voters, VotesTopic: t.Votes, Log: log}
}

// Processor registers elections.
type Processor struct {
	Roll     Roll
	Producer stream.Producer
	// Positions, when set, records the election's carrier and start
	// positions on VotersTopic and VotesTopic (nil: the election owns every
	// record of its topics).
	Positions   Positions
	VotersTopic string
	VotesTopic  string
	Log         *slog.Logger
	// Backoff bounds the waits between attempts when the database is
	// unavailable (default 100 ms doubling to 5 s).
	Backoff struct{ Min, Max time.Duration }
	// ChunkSize is how many voters are generated, copied and published per
	// step (default 20,000).
	ChunkSize int
	// Tokens, when set, receives every voter's ballot token, issued as the
	// roll is copied; the database keeps their hashes under TokenKey. Without
	// it no tokens are issued (nobody can cast a ballot over HTTP).
	Tokens   tokens.Sink
	TokenKey tokens.Key
	// Progress, when set, is called after each published chunk with the
	// number of voters on the topic.
	Progress func(published int64)
}

// Candidates returns the candidates a normalized request describes.
func Candidates(r Request) []generator.CandidateSpec {
	if len(r.CandidateList) > 0 {
		return generator.CompleteCandidates(*r.Seed, r.CandidateList)
	}
	gen := generator.Candidates(*r.Seed, r.Candidates)
	out := make([]generator.CandidateSpec, len(gen))
	for i, c := range gen {
		out[i] = generator.CandidateSpec{Candidate: c, Weight: 1}
	}
	return out
}

// fingerprint identifies an election by what decides its votes: the seed,
// the candidates and (when not everyone votes) the turnout.
func fingerprint(seed int64, cands []generator.CandidateSpec, turnout float64) string {
	h := sha256.New()
	fmt.Fprintf(h, "seed=%d\n", seed)
	if turnout != 1 {
		fmt.Fprintf(h, "turnout=%g\n", turnout)
	}
	json.NewEncoder(h).Encode(cands) //nolint:errcheck // hashing cannot fail
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Register performs (or resumes) the registration the request describes.
// It rides out a database outage: a transient failure (see
// Roll.IsTransient) is logged and the registration resumes, after a
// backoff, from what the database recorded, until it is done or ctx ends.
func (p *Processor) Register(ctx context.Context, req Request) (Response, error) {
	start := time.Now()
	log := p.Log
	if log == nil {
		log = slog.Default()
	}
	if err := req.Normalize(); err != nil {
		return Response{}, fmt.Errorf("invalid register request: %w", err)
	}
	cands := Candidates(req)
	resp := Response{Election: req.Name, Seed: *req.Seed, Voters: req.Voters, Turnout: *req.Turnout}
	for _, c := range cands {
		resp.Candidates = append(resp.Candidates, c.Candidate)
	}
	lo, hi := p.Backoff.Min, p.Backoff.Max
	if lo <= 0 {
		lo = 100 * time.Millisecond
	}
	if hi < lo {
		hi = max(5*time.Second, lo)
	}
	for attempt := 0; ; attempt++ {
		err := p.attempt(ctx, req, cands, &resp, log)
		resp.Seconds = time.Since(start).Seconds()
		if err == nil || !p.Roll.IsTransient(err) || ctx.Err() != nil {
			return resp, err
		}
		wait := min(lo<<min(attempt, 16), hi)
		log.WarnContext(ctx, "register: the database is unavailable; resuming after a pause", "attempt", attempt+1,
			"retry_in", wait, "copied", resp.Copied, "published", resp.Published, "error", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return resp, err
		}
	}
}

// attempt registers or resumes once, adding what it copied and published
// to resp.
func (p *Processor) attempt(ctx context.Context, req Request, cands []generator.CandidateSpec, resp *Response, log *slog.Logger) error {
	rows := make([]election.WeightedCandidate, len(cands))
	for i, c := range cands {
		rows[i] = election.WeightedCandidate{Candidate: c.Candidate, Weight: c.Weight}
	}
	if err := p.Roll.Migrate(ctx); err != nil {
		return err
	}
	unlock, err := p.Roll.LockRegistration(ctx)
	if err != nil {
		return err
	}
	defer unlock()

	e := election.Election{
		Name: req.Name, Seed: *req.Seed, Voters: req.Voters, Candidates: len(cands),
		Fingerprint: fingerprint(*req.Seed, cands, *req.Turnout), Turnout: *req.Turnout,
	}
	if p.Tokens != nil {
		e.TokenKeyID = p.TokenKey.ID()
	}
	if p.Positions != nil {
		// Where the topics end now is where a new election's records
		// start: read before BeginElection records them (a resumed
		// election keeps its first registration's starts).
		if e.Carrier, e.Starts, err = p.starts(ctx); err != nil {
			return err
		}
	}
	cur, err := p.Roll.BeginElection(ctx, e, rows)
	if err != nil {
		return err
	}
	resp.Election, resp.Voters, resp.Turnout = cur.Name, cur.Voters, cur.Turnout
	if p.Tokens != nil {
		resp.Tokens = p.Tokens.Location(cur.ID)
	}
	if cur.RollComplete && cur.Published >= cur.Voters && cur.PublishedAt != nil {
		resp.AlreadyRegistered = resp.Copied == 0 && resp.Published == 0
		resp.Voting = cur.Voting
		log.InfoContext(ctx, "election already registered and published", "election", cur.Name, "voters", cur.Voters)
		return nil
	}

	copied, published, voting, err := p.run(ctx, req, cur)
	resp.Copied += copied
	resp.Published += published
	if err != nil {
		return err
	}
	resp.Voting = cur.Voting + voting
	log.InfoContext(ctx, "registered", "election", cur.Name, "voters", cur.Voters, "copied", resp.Copied,
		"published", resp.Published, "carrier", cur.Carrier.String())
	return nil
}

// starts reads the carrier and the current ends of the topics the stages
// read.
func (p *Processor) starts(ctx context.Context) (election.Carrier, election.Starts, error) {
	c, err := p.Positions.Carrier(ctx)
	if err != nil {
		return c, nil, fmt.Errorf("identify the broker: %w", err)
	}
	starts := election.Starts{}
	for _, topic := range []string{p.VotersTopic, p.VotesTopic} {
		if topic == "" {
			continue
		}
		ends, err := p.Positions.Ends(ctx, topic)
		if err != nil {
			return c, nil, fmt.Errorf("read the end offsets of %s: %w", topic, err)
		}
		for part, end := range ends {
			starts.Set(topic, part, end)
		}
	}
	return c, starts, nil
}

type chunk struct {
	from   int64
	voters []election.Voter
}

// run generates the roll in chunks (in parallel, in order), copies what is
// not yet copied and publishes what is not yet published. A chunk is copied
// and committed before any of it is published, so no vote can reach the tally
// before its voter is on the roll; copying the next chunk overlaps with
// publishing this one, so the database and the broker work at once.
//
// It returns the voters it copied and published, and how many of those it
// copied vote.
func (p *Processor) run(ctx context.Context, req Request, cur *election.Election) (copied, published, voting int64, err error) {
	size := int64(p.ChunkSize)
	if size <= 0 {
		size = 20_000
	}
	start := min(cur.Copied, cur.Published)
	start -= start % size
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := &voterOut{p: p, pace: newPacer(req.Rate), paced: req.Rate > 0, lastMark: time.Now(), pub: cur.Published,
		// Every voter record names its election: the same voter of two
		// elections with the same seed is two records (and two messages to
		// a broker that deduplicates, as JetStream does).
		header: []stream.Header{{Key: HeaderElection, Value: []byte(cur.ID)}}}
	if p.Tokens != nil && cur.Copied < cur.Voters {
		// The tokens out are those of the voters the database holds.
		if err := p.Tokens.Resume(ctx, cur.ID, cur.Copied); err != nil {
			return 0, 0, 0, err
		}
	}
	// The copier hands each chunk on once the database holds it.
	onRoll := make(chan chunk, 1)
	var copyErr error
	go func() {
		defer close(onRoll)
		copied, voting, copyErr = p.copyRoll(ctx, cur, generate(ctx, *req.Seed, start, cur.Voters, size), onRoll)
	}()
	for c := range onRoll {
		if err := out.publish(ctx, c); err != nil {
			cancel()
			for range onRoll { // let the copier end before its results are read
			}
			return copied, out.published, voting, err
		}
	}
	// onRoll is closed: the copier is done and its results are set.
	if copyErr != nil {
		return copied, out.published, voting, copyErr
	}
	if err := ctx.Err(); err != nil {
		return copied, out.published, voting, err
	}
	if err := p.Roll.CompleteRoll(ctx); err != nil {
		return copied, out.published, voting, err
	}
	return copied, out.published, voting, out.mark(ctx, true)
}

// copyRoll copies the voters of chunks the database does not hold yet (with
// their tokens) and sends every chunk on to onRoll once it is held. It
// returns the voters it copied and how many of them vote.
func (p *Processor) copyRoll(ctx context.Context, cur *election.Election, chunks <-chan chunk, onRoll chan<- chunk) (copied, voting int64, err error) {
	cop := cur.Copied
	for c := range chunks {
		if end := c.from + int64(len(c.voters)); end > cop {
			skip := max(cop-c.from, 0)
			rc := election.RollChunk{From: cop, Voters: c.voters[skip:]}
			for i := range rc.Voters {
				if election.Votes(cur.Seed, cur.Turnout, &rc.Voters[i]) {
					rc.Voting++
				}
			}
			if err := p.issueTokens(ctx, cur.ID, &rc); err != nil {
				return copied, voting, err
			}
			if err := p.Roll.CopyVoters(ctx, rc); err != nil {
				return copied, voting, err
			}
			copied += end - cop
			voting += rc.Voting
			cop = end
		}
		select {
		case onRoll <- c:
		case <-ctx.Done():
			return copied, voting, ctx.Err()
		}
	}
	return copied, voting, ctx.Err()
}

// issueTokens gives every voter of rc a new token, hands the tokens out
// and sets rc's token hashes (nothing without a sink).
func (p *Processor) issueTokens(ctx context.Context, electionID string, rc *election.RollChunk) error {
	if p.Tokens == nil {
		return nil
	}
	if len(p.TokenKey) < tokens.MinKeyBytes {
		return tokens.ErrShortKey
	}
	rows := make([]tokens.Issued, len(rc.Voters))
	rc.TokenHashes = make([][]byte, len(rc.Voters))
	for i := range rc.Voters {
		tok := tokens.New()
		rows[i] = tokens.Issued{VoterID: rc.Voters[i].VoterID, Token: tok}
		rc.TokenHashes[i] = p.TokenKey.Hash(tok)
	}
	return p.Tokens.Write(ctx, electionID, rc.From, rows)
}

// voterOut publishes the roll's voters and records how far it got.
type voterOut struct {
	p         *Processor
	pace      *pacer
	paced     bool
	header    []stream.Header
	pub       int64 // voters[0:pub] are produced
	published int64 // produced by this run
	lastMark  time.Time

	mu  sync.Mutex
	err error // the first produce failure
}

// publish produces the voters of c not yet produced, then marks them
// published (every second too, when paced, so a restart resumes close to
// where it stopped).
func (o *voterOut) publish(ctx context.Context, c chunk) error {
	// One buffer holds the chunk's records: the producer keeps them until
	// they are acknowledged, and mark waits for that before the next chunk.
	var buf []byte
	for i := max(o.pub-c.from, 0); i < int64(len(c.voters)); i++ {
		v := &c.voters[i]
		if cap(buf)-len(buf) < 2048 {
			buf = make([]byte, 0, 256<<10)
		}
		at := len(buf)
		buf = election.AppendVoterJSON(buf, v)
		val := buf[at:len(buf):len(buf)]
		if err := o.pace.wait(ctx); err != nil {
			return err
		}
		o.p.Producer.Produce(ctx, &stream.Record{Topic: o.p.VotersTopic, Key: []byte(v.VoterID), Value: val, Headers: o.header}, o.acked)
		o.published++
		o.pub = c.from + i + 1
		if o.paced && time.Since(o.lastMark) > time.Second {
			if err := o.mark(ctx, false); err != nil {
				return err
			}
		}
	}
	return o.mark(ctx, false)
}

func (o *voterOut) acked(_ *stream.Record, err error) {
	if err != nil {
		o.mu.Lock()
		if o.err == nil {
			o.err = err
		}
		o.mu.Unlock()
	}
}

// mark waits until every voter produced is stored, then records voters[0:pub]
// as published (done: the whole roll).
func (o *voterOut) mark(ctx context.Context, done bool) error {
	if err := o.p.Producer.Flush(ctx); err != nil {
		return fmt.Errorf("flush voters: %w", err)
	}
	o.mu.Lock()
	perr := o.err
	o.mu.Unlock()
	if perr != nil {
		return fmt.Errorf("publish voters: %w", perr)
	}
	if err := o.p.Roll.MarkPublished(ctx, o.pub, done); err != nil {
		return err
	}
	if o.p.Progress != nil {
		o.p.Progress(o.pub)
	}
	o.lastMark = time.Now()
	return nil
}

// generate produces the chunks [start, total) in order, generating them on
// all cores.
func generate(ctx context.Context, seed, start, total, size int64) <-chan chunk {
	workers := max(runtime.GOMAXPROCS(0), 1)
	out := make(chan chunk, 1)
	go func() {
		defer close(out)
		type job struct {
			from, to int64
			res      chan chunk
		}
		jobs := make(chan job, workers)
		pending := make(chan job, workers)
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range jobs {
					vs := make([]election.Voter, 0, j.to-j.from)
					for i := j.from; i < j.to; i++ {
						vs = append(vs, generator.Voter(seed, int(i)))
					}
					j.res <- chunk{from: j.from, voters: vs}
				}
			}()
		}
		go func() {
			defer close(jobs)
			defer close(pending)
			for from := start; from < total; from += size {
				j := job{from: from, to: min(from+size, total), res: make(chan chunk, 1)}
				select {
				case pending <- j:
				case <-ctx.Done():
					return
				}
				select {
				case jobs <- j:
				case <-ctx.Done():
					return
				}
			}
		}()
		for j := range pending {
			select {
			case c := <-j.res:
				select {
				case out <- c:
				case <-ctx.Done():
				}
			case <-ctx.Done():
			}
		}
		wg.Wait()
	}()
	return out
}

// pacer spaces out publication to a rate.
type pacer struct {
	interval time.Duration
	next     time.Time
}

func newPacer(rate float64) *pacer {
	if rate <= 0 {
		return &pacer{}
	}
	return &pacer{interval: time.Duration(float64(time.Second) / rate), next: time.Now()}
}

func (p *pacer) wait(ctx context.Context) error {
	if p.interval == 0 {
		return nil
	}
	now := time.Now()
	if d := p.next.Sub(now); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	p.next = p.next.Add(p.interval)
	if behind := time.Since(p.next); behind > time.Second {
		p.next = time.Now() // do not burst after a stall
	}
	return nil
}
