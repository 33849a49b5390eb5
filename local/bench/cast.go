package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/votingpipe/voting/infra"
	"github.com/votingpipe/voting/local/harness"
	"github.com/votingpipe/voting/local/trigger"
	"github.com/votingpipe/voting/shared/config"
	"github.com/votingpipe/voting/shared/tokens"
)

// CastOptions are the knobs of `bench --cast`.
type CastOptions struct {
	Voters     int64
	Partitions int
	Seed       int64
	// Clients is how many HTTP clients cast at once (default 64).
	Clients int
	Log     *slog.Logger
}

// CastResult is what `bench --cast` measured: every voter's ballot cast over
// HTTP while the pipeline tallies, and the tally's drain of the same votes
// afterwards, in one run.
type CastResult struct {
	Voters  int64 `json:"voters"`
	Clients int   `json:"clients"`
	// CastsPerS is ballots accepted per second over the casting span.
	CastsPerS float64       `json:"casts_per_s"`
	CastP50Ms float64       `json:"cast_p50_ms"`
	CastP99Ms float64       `json:"cast_p99_ms"`
	CastMaxMs float64       `json:"cast_max_ms"`
	Errors    int64         `json:"errors"`
	Statuses  map[int]int64 `json:"statuses"`
	// E2ESeconds is from the first ballot to the last vote counted.
	E2ESeconds float64 `json:"e2e_seconds"`
	// DrainVotesPerS is the tally alone over the same votes, and
	// CastOverDrain how the casting rate compares with it.
	DrainVotesPerS float64 `json:"tally_drain_votes_per_s"`
	CastOverDrain  float64 `json:"cast_over_drain"`
	AuditOK        bool    `json:"audit_ok"`
	// Casting is the cost of the casting span per accepted ballot (the cast
	// function, the tally counting meanwhile, and the load's HTTP clients in
	// this process); Drain is the tally's alone, so Casting - Drain is what
	// a ballot's claim costs.
	Casting PhaseCost `json:"casting_cost"`
	Drain   PhaseCost `json:"drain_cost"`
}

// RunCast runs an election of real voters only (register, cast, tally,
// dashboard) on a scratch database, casts every voter's ballot through the
// harness's HTTP server with concurrent clients, waits for the tally, audits,
// and drains the votes again with the tally alone.
func RunCast(ctx context.Context, cfg config.Config, o CastOptions) (CastResult, error) {
	if o.Clients <= 0 {
		o.Clients = 64
	}
	res := CastResult{Voters: o.Voters, Clients: o.Clients}
	return withScratch(ctx, cfg, "cast", func(dsn string) (CastResult, error) {
		c := cfg
		c.Cast.Addr, c.Cast.URL = "127.0.0.1:0", ""
		env, done, err := benchEnv(ctx, c, Options{Log: o.Log}, dsn, "cast", o.Partitions)
		if err != nil {
			return res, err
		}
		defer done()
		tally, err := env.Invoker(infra.Tally)
		if err != nil {
			return res, err
		}
		timed := &timedInvoker{inner: tally}
		out := &lineWriter{}
		runDone := make(chan error, 1)
		go func() {
			_, err := harness.Run(ctx, env, harness.RunOptions{Voters: o.Voters, Candidates: 3, Seed: o.Seed, UntilDone: true,
				Functions: []string{infra.Register, infra.Cast, infra.Tally, infra.Dashboard},
				Invokers:  map[string]trigger.Invoker{infra.Tally: timed}, Out: out})
			runDone <- err
		}()
		url, issued, err := awaitBallots(ctx, env, out, o.Voters, runDone)
		if err != nil {
			return res, err
		}
		cands, err := env.Deps.Store.Candidates(ctx)
		if err != nil {
			return res, err
		}
		start := time.Now()
		cost := startCost(dsn)
		lat, statuses, castSecs := castAll(ctx, url, issued, cands[0].CandidateID, cands[len(cands)-1].CandidateID, o.Clients)
		if err := <-runDone; err != nil {
			return res, err
		}
		res.E2ESeconds = timed.lastEnd().Sub(start).Seconds()
		res.fill(lat, statuses, castSecs)
		res.Casting = cost.end("casting", res.Statuses[http.StatusAccepted])
		res.Casting.activeWall(res.E2ESeconds)
		rep, err := harness.Audit(ctx, env, io.Discard)
		if err != nil {
			return res, err
		}
		res.AuditOK = rep.OK()
		rate, drainCost, err := drainAgain(ctx, env, tally, res.Statuses[http.StatusAccepted], PhaseDrain, true)
		if err != nil {
			return res, err
		}
		res.DrainVotesPerS, res.Drain = rate.toLast, drainCost
		if res.DrainVotesPerS > 0 {
			res.CastOverDrain = res.CastsPerS / res.DrainVotesPerS
		}
		return res, nil
	})
}

// lineWriter keeps what a run prints, for the ballot page's address.
type lineWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lineWriter) url() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, rest, ok := strings.Cut(w.b.String(), "ballot page: ")
	if !ok {
		return ""
	}
	u, _, _ := strings.Cut(rest, " ")
	return u
}

// awaitBallots waits for the ballot page to be served and every voter's
// token to be out, and returns them.
func awaitBallots(ctx context.Context, env *harness.Env, out *lineWriter, voters int64, runDone <-chan error) (string, []tokens.Issued, error) {
	for {
		select {
		case err := <-runDone:
			return "", nil, fmt.Errorf("the election ended before casting: %v", err)
		case <-ctx.Done():
			return "", nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		e, err := env.Deps.Store.Election(ctx)
		if err != nil || e == nil || !e.RollComplete || out.url() == "" {
			continue
		}
		issued, err := tokens.ReadFile(env.TokensFile())
		if err == nil && int64(len(issued)) == voters {
			return out.url(), issued, nil
		}
	}
}

// castAll posts every voter's ballot (alternating two candidates) from
// clients concurrent keep-alive clients, and returns each accepted ballot's
// latency, the count of each status, and the casting span.
func castAll(ctx context.Context, url string, issued []tokens.Issued, a, b string, clients int) ([]time.Duration, map[int]int64, float64) {
	tr := &http.Transport{MaxIdleConns: clients, MaxIdleConnsPerHost: clients, IdleConnTimeout: time.Minute}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	defer tr.CloseIdleConnections()
	var mu sync.Mutex
	lat := make([]time.Duration, 0, len(issued))
	statuses := map[int]int64{}
	jobs := make(chan int, clients)
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				cand := a
				if i%2 == 1 {
					cand = b
				}
				body, _ := json.Marshal(map[string]string{"token": issued[i].Token, "candidate_id": cand})
				t0 := time.Now()
				status := post(ctx, client, url+"ballots", body)
				d := time.Since(t0)
				mu.Lock()
				statuses[status]++
				if status == http.StatusAccepted {
					lat = append(lat, d)
				}
				mu.Unlock()
			}
		}()
	}
	for i := range issued {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return lat, statuses, time.Since(start).Seconds()
}

func post(ctx context.Context, client *http.Client, url string, body []byte) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(string(body)))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body) //nolint:errcheck
	resp.Body.Close()
	return resp.StatusCode
}

func (r *CastResult) fill(lat []time.Duration, statuses map[int]int64, secs float64) {
	r.Statuses = statuses
	for s, n := range statuses {
		if s != http.StatusAccepted {
			r.Errors += n
		}
	}
	if secs > 0 {
		r.CastsPerS = float64(statuses[http.StatusAccepted]) / secs
	}
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Millisecond) }
	r.CastP50Ms, r.CastP99Ms, r.CastMaxMs = pct(0.5), pct(0.99), pct(1)
}

// Print writes the figures (or their JSON).
func (r CastResult) Print(w io.Writer, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	fmt.Fprintf(w, "cast: %d voters' ballots over HTTP from %d clients while the pipeline tallies\n", r.Voters, r.Clients)
	fmt.Fprintf(w, "  casts accepted            %10.0f /s   (goal >= 5000)\n", r.CastsPerS)
	fmt.Fprintf(w, "  latency p50 / p99 / max   %7.1f / %.1f / %.1f ms   (goal p99 <= 50)\n", r.CastP50Ms, r.CastP99Ms, r.CastMaxMs)
	fmt.Fprintf(w, "  errors                    %10d   statuses %v\n", r.Errors, r.Statuses)
	fmt.Fprintf(w, "  first ballot to last vote counted %.2f s\n", r.E2ESeconds)
	fmt.Fprintf(w, "  tally drain, same votes   %10.0f votes/s; casting is %.2f of it\n", r.DrainVotesPerS, r.CastOverDrain)
	fmt.Fprintf(w, "  audit                     %v\n", map[bool]string{true: "OK", false: "MISMATCH"}[r.AuditOK])
	fmt.Fprintf(w, "per ballot (µs CPU; Postgres = the local server's processes; WAL bytes):\n")
	fmt.Fprintf(w, "  %-34s %8s %10s %10s %8s\n", "phase", "Go", "Postgres", "WAL", "cores")
	for _, c := range []PhaseCost{r.Casting, r.Drain} {
		fmt.Fprintf(w, "  %-34s %8.1f %10.1f %10.0f %8.2f\n", c.Phase, c.GoMicrosPerVote, c.PGMicrosPerVote, c.WALBytesPerVote, c.CoresBusy)
	}
	fmt.Fprintf(w, "  %-34s %8.1f %10.1f %10.0f\n", "casting less the drain: a claim", r.Casting.GoMicrosPerVote-r.Drain.GoMicrosPerVote,
		r.Casting.PGMicrosPerVote-r.Drain.PGMicrosPerVote, r.Casting.WALBytesPerVote-r.Drain.WALBytesPerVote)
	return nil
}
