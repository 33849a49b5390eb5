package dashboard_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/votingpipe/voting/shared/dashboard"
	"github.com/votingpipe/voting/shared/election"
	"github.com/votingpipe/voting/shared/generator"
	"github.com/votingpipe/voting/shared/internal/testkit"
)

// TestBrowserShowsTheDatabasesLeaders counts an election of 4 candidates at
// turnout 0.6 into Postgres, renders the page from the store's snapshot,
// opens it from disk in headless Chromium, and compares what the map drew
// (each state's leader) and a state's tooltip (its turnout) with what the
// database says, worked out in SQL from results_by_state and turnout_by_state.
// It keeps screenshots, on a desktop and a phone.
func TestBrowserShowsTheDatabasesLeaders(t *testing.T) {
	ctx := context.Background()
	st, pg := testkit.OpenStore(t)
	const seed, turnout = 11, 0.6
	cands := generator.Candidates(seed, 4)
	voters := testkit.Register(t, st, "Turnout test", seed, cands, 6000)
	weights := []float64{1, 1, 1, 1}
	batches := map[int32]*election.TallyBatch{}
	for _, v := range voters {
		if !election.Votes(seed, turnout, &v) {
			continue
		}
		p := int32(len(v.VoterID) % 3)
		if batches[p] == nil {
			batches[p] = &election.TallyBatch{Topic: "votes_topic", Partition: p}
		}
		b := batches[p]
		b.Ballots = append(b.Ballots, election.BallotAt{Offset: int64(len(b.Ballots)), Ballot: election.Ballot{VoterID: v.VoterID,
			CandidateID: cands[election.Choose(seed, v.VoterID, weights)].CandidateID, VotingTime: t0.Add(time.Duration(len(b.Ballots)) * time.Second)}})
	}
	for _, b := range batches {
		if _, err := st.Tally(ctx, *b); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := st.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p, _, _ := render(t, snap, dashboard.Options{})
	dir := t.TempDir()
	index := publishTo(t, dir, p)

	// Who leads each state, and each state's turnout, by the database.
	want := map[string]string{}
	rows, err := pg.Query(ctx, `SELECT state, CASE WHEN count(*) > 1 THEN 'tie' ELSE min(candidate_name) END
		FROM (SELECT state, candidate_name, rank() OVER (PARTITION BY state ORDER BY total_votes DESC) AS r
		      FROM results_by_state JOIN candidates USING (candidate_id) WHERE total_votes > 0) ranked
		WHERE r = 1 GROUP BY state`)
	if err != nil {
		t.Fatal(err)
	}
	var state, leader string
	if _, err := pgx.ForEachRow(rows, []any{&state, &leader}, func() error { want[state] = leader; return nil }); err != nil {
		t.Fatal(err)
	}
	turnouts := map[string]string{}
	var votes, registered int64
	rows, _ = pg.Query(ctx, `SELECT state, total_votes, registered FROM turnout_by_state`)
	lo, hi := 1.0, 0.0
	if _, err := pgx.ForEachRow(rows, []any{&state, &votes, &registered}, func() error {
		turnouts[state] = pct(votes, registered)
		lo, hi = min(lo, float64(votes)/float64(registered)), max(hi, float64(votes)/float64(registered))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(want) < 45 || hi-lo < 0.15 {
		t.Fatalf("the election has %d states with votes, turnout %.2f-%.2f: not the election this test needs", len(want), lo, hi)
	}

	page := runChromium(t, fileURL(index, "selftest"), "--dump-dom")
	sel := parseSelftest(t, page)
	if sel.Map == nil || sel.Map.Type != "map" || !sel.Map.Registered {
		t.Fatalf("the page drew no map: %+v", sel.Map)
	}
	drawn := map[string]string{}
	for _, it := range sel.Map.Items {
		drawn[it.Name] = it.Leader
	}
	for s, w := range want {
		if drawn[s] != w {
			t.Errorf("%s: the map shows %q leading, the database %q", s, drawn[s], w)
		}
	}
	if len(drawn) != len(want) {
		t.Errorf("the map has %d states, the database %d with votes", len(drawn), len(want))
	}
	tips := 0
	for _, tip := range sel.Tooltips {
		if tip.Chart != dashboard.ChartStateMap || turnouts[tip.State] == "" {
			continue
		}
		tips++
		says := "Leader: " + want[tip.State]
		if want[tip.State] == "tie" {
			says = "Tie between "
		}
		if !strings.Contains(tip.Text, "Turnout "+turnouts[tip.State]) || !strings.Contains(tip.Text, says) {
			t.Errorf("%s's tooltip %q, want turnout %s and leader %s", tip.State, tip.Text, turnouts[tip.State], want[tip.State])
		}
	}
	if tips == 0 {
		t.Error("the self-test hovered no state with votes")
	}

	// On a phone, a real election's page fits: no table scrolls sideways,
	// no header breaks, every chart fits the 390 px viewport.
	shot := filepath.Join(artifactDir(t), "election-turnout.png")
	os.Remove(shot) //nolint:errcheck
	runChromium(t, fileURL(index, ""), "--screenshot="+shot, "--window-size=1280,2400")
	t.Logf("screenshot: %s", shot)
	l := phoneLayout(t, dir, 4200, filepath.Join(artifactDir(t), "election-turnout-390.png")).Layout
	if l == nil || l.InnerWidth != 390 || l.ScrollWidth > 390 {
		t.Fatalf("phone layout %+v", l)
	}
	for _, tb := range l.Tables {
		if tb.Overflow > 0 {
			t.Errorf("table %s reaches %d px past its card at 390 px: it scrolls sideways", tb.ID, tb.Overflow)
		}
	}
	for _, h := range l.Headers {
		if h.Lines != 1 {
			t.Errorf("%s header %q is on %d lines", h.Table, h.Text, h.Lines)
		}
	}
	for _, c := range l.Charts {
		if c.Left < 0 || c.Right > 390 {
			t.Errorf("chart %s spans %d..%d px at 390", c.ID, c.Left, c.Right)
		}
	}
}
