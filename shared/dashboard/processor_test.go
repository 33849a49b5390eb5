package dashboard_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/votingpipe/voting/shared/dashboard"
	"github.com/votingpipe/voting/shared/election"
	"github.com/votingpipe/voting/shared/generator"
	"github.com/votingpipe/voting/shared/internal/testkit"
	"github.com/votingpipe/voting/shared/store"
)

var quiet = slog.New(slog.DiscardHandler)

// countingSource counts the snapshots read from the real store. When gate
// is set, the first read waits for it to close.
type countingSource struct {
	dashboard.Source
	calls   atomic.Int64
	gate    chan struct{}
	entered chan struct{}
}

func (c *countingSource) Snapshot(ctx context.Context) (dashboard.Snapshot, error) {
	if c.calls.Add(1) == 1 && c.gate != nil {
		c.entered <- struct{}{}
		<-c.gate
	}
	return c.Source.Snapshot(ctx)
}

// election registers candidates and voters in a fresh database and counts
// the first nVotes voters' ballots, all through the real store.
func electionDB(t *testing.T, nVoters, nVotes int) *store.Store {
	t.Helper()
	st, _ := testkit.OpenStore(t)
	cands := generator.Candidates(3, 3)
	cands[1].CandidateName = xssName
	voters := testkit.Register(t, st, "Processor test", 3, cands, nVoters)
	tallyVotes(t, st, voters[:nVotes], cands, 0)
	return st
}

func tallyVotes(t *testing.T, st *store.Store, voters []election.Voter, cands []election.Candidate, from int) {
	t.Helper()
	b := election.TallyBatch{Topic: "votes_topic", Partition: 0}
	for i, v := range voters {
		b.Ballots = append(b.Ballots, election.BallotAt{Offset: int64(from + i), Ballot: election.Ballot{
			VoterID: v.VoterID, CandidateID: cands[(from+i)%len(cands)].CandidateID, VotingTime: t0.Add(time.Duration(from+i) * time.Second)}})
	}
	if _, err := st.Tally(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

// aggregatedEvent is an MSK event carrying n records on each of parts
// partitions of the two aggregated topics.
func aggregatedEvent(parts, n int) []byte {
	recs := map[string][]map[string]any{}
	for _, topic := range []string{"aggregated_votes_per_candidate", "aggregated_turnout_by_location"} {
		for p := range parts {
			key := fmt.Sprintf("%s-%d", topic, p)
			for o := range n {
				recs[key] = append(recs[key], map[string]any{
					"topic": topic, "partition": p, "offset": o, "timestamp": 1_700_000_000_000, "timestampType": "CREATE_TIME",
					"key": base64.StdEncoding.EncodeToString([]byte("k")), "value": base64.StdEncoding.EncodeToString([]byte(`{"total_votes":1}`)),
					"headers": []any{},
				})
			}
		}
	}
	b, _ := json.Marshal(map[string]any{"eventSource": "aws:kafka", "records": recs})
	return b
}

func invoke(t *testing.T, p *dashboard.Processor, payload []byte) (map[string]any, error) {
	t.Helper()
	out, err := lambda.NewHandler(dashboard.Handler(p)).Invoke(context.Background(), payload)
	if err != nil {
		return nil, err
	}
	var resp map[string]any
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatal(err)
	}
	return resp, nil
}

func TestHandlerRendersOncePerInvocationFromPostgres(t *testing.T) {
	st := electionDB(t, 60, 40)
	dir := t.TempDir()
	src := &countingSource{Source: st}
	p := &dashboard.Processor{Source: src, Publisher: dashboard.Dir{Dir: dir}, Log: quiet}

	resp, err := invoke(t, p, aggregatedEvent(3, 5)) // 30 records on 6 partitions
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(resp["summary"]); got != "map[records:30 renders:1]" {
		t.Errorf("summary %s, want records 30 and one render", got)
	}
	if f, ok := resp["batchItemFailures"].([]any); !ok || len(f) != 0 {
		t.Errorf("batchItemFailures %v, want []", resp["batchItemFailures"])
	}
	if src.calls.Load() != 1 {
		t.Errorf("%d snapshots read for one invocation, want 1", src.calls.Load())
	}
	data, err := os.ReadFile(filepath.Join(dir, dashboard.DataFile))
	if err != nil {
		t.Fatal(err)
	}
	d := decodeData(t, string(data))
	if d.Text["counted"] != "40" || d.Text["registered"] != "60" || d.Text["election"] != "Processor test" {
		t.Errorf("page shows counted %q registered %q election %q", d.Text["counted"], d.Text["registered"], d.Text["election"])
	}

	// More votes; an empty event still renders, from Postgres.
	cands := generator.Candidates(3, 3)
	voters := make([]election.Voter, 60)
	for i := range voters {
		voters[i] = generator.Voter(3, i)
	}
	tallyVotes(t, st, voters[40:55], cands, 40)
	resp, err = invoke(t, p, []byte(`{"eventSource":"aws:kafka","records":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(resp["summary"]); got != "map[records:0 renders:1]" {
		t.Errorf("summary %s", got)
	}
	data, _ = os.ReadFile(filepath.Join(dir, dashboard.DataFile))
	if got := decodeData(t, string(data)).Text["counted"]; got != "55" {
		t.Errorf("after 15 more votes the page shows %q counted, want 55", got)
	}

	// The page rendered from Postgres works in a browser (when there is one).
	if _, err := os.Stat("/usr/bin/chromium"); err == nil || os.Getenv("VOTING_REQUIRE_CHROMIUM") == "1" {
		dom := runChromium(t, fileURL(filepath.Join(dir, dashboard.IndexFile), ""), "--dump-dom")
		if !strings.Contains(dom, `data-k="counted">55<`) || strings.Contains(dom, "data-xss") {
			t.Errorf("the published page does not show 55 votes counted in a browser")
		}
	}
}

func TestHandlerReturnsPostgresErrors(t *testing.T) {
	st := electionDB(t, 5, 2)
	st.Close() // the database is unreachable from here on
	dir := t.TempDir()
	p := &dashboard.Processor{Source: st, Publisher: dashboard.Dir{Dir: dir}, Log: quiet}
	if _, err := invoke(t, p, aggregatedEvent(1, 2)); err == nil {
		t.Fatal("the handler succeeded without a database; the batch would not be retried")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("something was published without a snapshot: %v", entries)
	}
}

func TestHandlerReturnsPublishErrors(t *testing.T) {
	st := electionDB(t, 5, 2)
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	p := &dashboard.Processor{Source: st, Publisher: dashboard.Dir{Dir: file}, Log: quiet}
	if _, err := invoke(t, p, aggregatedEvent(1, 1)); err == nil {
		t.Fatal("the handler succeeded although nothing could be published")
	}
}

// TestRenderCoalescesConcurrentCalls: while one render is reading, five
// more calls arrive; they are served by one further render, which starts
// after all of them arrived, so none of them sees older data than it was
// triggered by.
func TestRenderCoalescesConcurrentCalls(t *testing.T) {
	st := electionDB(t, 10, 4)
	src := &countingSource{Source: st, gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	// The clock tells when a call has arrived: Render reads it first.
	var arrivals atomic.Int64
	p := &dashboard.Processor{Source: src, Publisher: dashboard.Dir{Dir: t.TempDir()}, Log: quiet,
		Now: func() time.Time { arrivals.Add(1); return time.Now() }}
	ctx := context.Background()

	first := make(chan error, 1)
	go func() { _, err := p.Render(ctx); first <- err }()
	<-src.entered // the first render is reading its snapshot

	var wg sync.WaitGroup
	results := make([]dashboard.Result, 5)
	errs := make([]error, 5)
	for i := range results {
		wg.Add(1)
		go func() { defer wg.Done(); results[i], errs[i] = p.Render(ctx) }()
	}
	// The first render read the clock twice (arrival, start); each of the
	// five reads it on arrival. Wait until all five have arrived.
	for arrivals.Load() < 2+5 {
		runtime.Gosched()
	}
	close(src.gate)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	rendered, coalesced := 0, 0
	for i, r := range results {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if r.Coalesced {
			coalesced++
		} else {
			rendered++
		}
		if r.Counted != 4 || r.Files != 5 || r.Bytes == 0 {
			t.Errorf("result %+v", r)
		}
	}
	calls := src.calls.Load()
	switch {
	case calls != 1+int64(rendered):
		t.Errorf("%d snapshots for %d renders", calls, 1+rendered)
	case rendered == 1 && coalesced == 4:
		// As scheduled: all five waited, one render served them.
	case coalesced >= 1:
		// A goroutine was scheduled so late that it arrived after the second
		// render had started; it rightly rendered again.
		t.Logf("a late arrival: %d rendered, %d coalesced", rendered, coalesced)
	default:
		t.Errorf("%d snapshots, %d rendered, %d coalesced; want 2, 1, 4", calls, rendered, coalesced)
	}

	// A call after everything finished renders again.
	r, err := p.Render(ctx)
	if err != nil || r.Coalesced || src.calls.Load() != calls+1 {
		t.Errorf("a later call: coalesced %v, %d snapshots, %v", r.Coalesced, src.calls.Load(), err)
	}
}
