package harness_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/votingpipe/voting/infra"
	"github.com/votingpipe/voting/local/harness"
	"github.com/votingpipe/voting/local/internal/testkit"
	"github.com/votingpipe/voting/shared/tokens"
)

// syncBuffer is a run's output, read while the run writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var ballotPageLine = regexp.MustCompile(`ballot page: (http://\S+)`)

// castElection runs register, cast, tally and dashboard (no ballot stage:
// real voters only) with --until-done, and returns the ballot page's URL
// once it is served and every voter's token once they are handed out; the
// run's summary comes on done.
func castElection(t *testing.T, env *harness.Env, voters int64) (string, []tokens.Issued, <-chan harness.Summary) {
	t.Helper()
	out := &syncBuffer{}
	done := make(chan harness.Summary, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	go func() {
		sum, err := harness.Run(ctx, env, harness.RunOptions{Voters: voters, Candidates: 3, Seed: 5, UntilDone: true,
			Functions: []string{infra.Register, infra.Cast, infra.Tally, infra.Dashboard}, Out: out})
		if err != nil {
			t.Error(err)
		}
		done <- sum
	}()
	var url string
	var issued []tokens.Issued
	eventually(t, time.Minute, "the ballot page served and every token handed out", func() (bool, error) {
		if m := ballotPageLine.FindStringSubmatch(out.String()); m != nil {
			url = m[1]
		}
		issued, _ = tokens.ReadFile(env.TokensFile())
		e, err := env.Deps.Store.Election(context.Background())
		return url != "" && e != nil && e.RollComplete && int64(len(issued)) == voters, err
	})
	return url, issued, done
}

func post(t *testing.T, url, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	json.Unmarshal(b, &m) //nolint:errcheck
	return resp.StatusCode, m
}

// An election of real voters only: nobody votes until a token is used; the
// voters cast over real HTTP, concurrently, some twice; the run ends once
// every vote is counted, and the tallies are exactly the ballots accepted.
func TestCastOverHTTPIsCountedExactly(t *testing.T) {
	env := drillEnv(t, 3, map[string]string{"CAST_ADDR": "127.0.0.1:0"}, harness.EnvOptions{})
	const voters = 300
	url, issued, done := castElection(t, env, voters)
	if n := count(t, env, `SELECT count(*) FROM votes`); n != 0 {
		t.Fatalf("%d votes before anyone cast a ballot", n)
	}
	var cands []string
	rows, _ := env.Deps.Store.Candidates(context.Background())
	for _, c := range rows {
		cands = append(cands, c.CandidateID)
	}
	var mu sync.Mutex
	want := map[string]int64{}
	var wg sync.WaitGroup
	jobs := make(chan int)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				cand := cands[i%len(cands)]
				status, body := post(t, url+"ballots", fmt.Sprintf(`{"token": %q, "candidate_id": %q}`, issued[i].Token, cand))
				if status != 202 {
					t.Errorf("voter %d: %d %v", i, status, body)
					continue
				}
				mu.Lock()
				want[cand]++
				mu.Unlock()
				if i%10 == 0 { // a second try, another choice
					if status, body := post(t, url+"ballots", fmt.Sprintf(`{"token": %q, "candidate_id": %q}`, issued[i].Token, cands[(i+1)%len(cands)])); status != 409 {
						t.Errorf("voter %d's second ballot: %d %v", i, status, body)
					}
				}
			}
		}()
	}
	for i := range voters {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if status, body := post(t, url+"ballots", `{"token": "`+tokens.New()+`", "candidate_id": "`+cands[0]+`"}`); status != 401 {
		t.Errorf("an unknown token: %d %v", status, body)
	}
	if resp, err := http.Get(url + "voters"); err != nil || resp.StatusCode != 404 {
		t.Errorf("GET /voters: %v %v, want the gateway's 404", resp, err)
	}
	var sum harness.Summary
	select {
	case sum = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the run did not end once every voter had voted")
	}
	if sum.Tallied != voters {
		t.Errorf("the run counted %d votes, want %d", sum.Tallied, voters)
	}
	for c, n := range want {
		if got := count(t, env, `SELECT count(*) FROM votes WHERE candidate_id = $1`, c); got != n {
			t.Errorf("candidate %s: %d votes counted, %d ballots accepted", c, got, n)
		}
	}
	auditOK(t, env, voters)
}

var selftestPre = regexp.MustCompile(`(?s)<pre id="selftest"[^>]*data-done="1"[^>]*>(.*?)</pre>`)

// A voter opens the ballot page with their token in the link (as a voting
// card's code would), chooses, casts and sees the receipt; once the others
// have voted too, the dashboard, opened from disk, shows the vote and links
// to the ballot page.
func TestCastThroughTheBallotPageShowsOnTheDashboard(t *testing.T) {
	env := drillEnv(t, 2, map[string]string{"CAST_ADDR": "127.0.0.1:0"}, harness.EnvOptions{})
	const voters = 12
	url, issued, done := castElection(t, env, voters)
	rows, _ := env.Deps.Store.Candidates(context.Background())
	chosen := rows[1]
	dom := testkit.Chromium(t, url+"?token="+strings.ToLower(issued[0].Token)+"#selftest="+chosen.CandidateID, "--dump-dom")
	m := selftestPre.FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("the ballot page did not finish casting:\n%s", dom[max(0, len(dom)-3000):])
	}
	var st struct {
		Status, Text, Receipt string
		Names                 []string
	}
	if err := json.Unmarshal([]byte(html.UnescapeString(m[1])), &st); err != nil {
		t.Fatal(err)
	}
	if st.Status != "good" || !strings.Contains(st.Receipt, "partition") || len(st.Names) != 3 || !slices.Contains(st.Names, chosen.CandidateName) {
		t.Fatalf("the page showed %+v", st)
	}
	for i := 1; i < voters; i++ {
		if status, body := post(t, url+"ballots", fmt.Sprintf(`{"token": %q, "candidate_id": %q}`, issued[i].Token, rows[0].CandidateID)); status != 202 {
			t.Fatalf("voter %d: %d %v", i, status, body)
		}
	}
	sum := <-done
	if sum.Tallied != voters || count(t, env, `SELECT count(*) FROM votes WHERE candidate_id = $1 AND voter_id = $2`, chosen.CandidateID, issued[0].VoterID) != 1 {
		t.Fatalf("the page's ballot is not counted (%d votes in all)", sum.Tallied)
	}
	page := testkit.Chromium(t, "file://"+sum.Dashboard, "--dump-dom")
	for _, want := range []string{`data-k="counted">12<`, `id="ballot-link"`, `href="` + url + `"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the dashboard lacks %s", want)
		}
	}
	if !regexp.MustCompile(`<td>` + regexp.QuoteMeta(html.EscapeString(chosen.CandidateName)) + `</td>.*?<td class="num">1</td>`).MatchString(page) {
		t.Errorf("the dashboard does not show %s's one vote", chosen.CandidateName)
	}
}
