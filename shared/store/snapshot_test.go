package store_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/votingpipe/voting/shared/dashboard"
	"github.com/votingpipe/voting/shared/election"
	"github.com/votingpipe/voting/shared/generator"
	"github.com/votingpipe/voting/shared/internal/testkit"
	"github.com/votingpipe/voting/shared/store"
)

const votesTopic = "votes_topic"

var _ dashboard.Source = (*store.Store)(nil)

// snapshotElection registers an election of nVoters voters and candidates
// (the first with a hostile name) through the real store functions.
func snapshotElection(t *testing.T, nVoters int) (*store.Store, []election.Voter, []election.Candidate) {
	t.Helper()
	st := openStore(t)
	cands := generator.Candidates(11, 3)
	cands[0].CandidateName = `<script>alert(1)</script>`
	voters := testkit.Register(t, st, "Snapshot test election", 11, cands, nVoters)
	return st, voters, cands
}

func TestSnapshotOfAnEmptyDatabase(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, testkit.NewDatabase(t), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := st.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Election != "" || s.Registered != 0 || s.Counted != 0 || len(s.Candidates) != 0 ||
		!s.NewestVote.IsZero() || len(s.Timeline.Times) != 0 || s.TakenAt.IsZero() {
		t.Errorf("empty database: got %+v", s)
	}
	if _, err := dashboard.Render(s, dashboard.Options{}); err != nil {
		t.Errorf("render of an empty snapshot: %v", err)
	}
}

func TestSnapshotMatchesTheTalliedVotes(t *testing.T) {
	ctx := context.Background()
	st, voters, cands := snapshotElection(t, 300)
	t0 := time.Date(2026, time.November, 3, 9, 0, 0, 0, time.UTC)

	// 240 voters vote, one every 7 s (a span of ~28 min: more seconds than
	// the timeline's 500 points), candidate i%3, over two partitions.
	type want struct{ cand, state, gender, band string }
	var counted []want
	votedAt := map[string]time.Time{}
	batches := map[int32][]election.BallotAt{}
	for i := range 240 {
		v := voters[i]
		c := cands[i%3]
		at := t0.Add(time.Duration(i)*7*time.Second + 300*time.Millisecond)
		p := int32(i % 2)
		batches[p] = append(batches[p], election.BallotAt{Offset: int64(len(batches[p])),
			Ballot: election.Ballot{VoterID: v.VoterID, CandidateID: c.CandidateID, VotingTime: at}})
		counted = append(counted, want{c.CandidateID, v.Address.State, v.Gender, election.AgeBand(v.RegisteredAge)})
		votedAt[c.CandidateID+"/"+at.Format(time.RFC3339Nano)] = at
	}
	// Then: the same ballot again (duplicate), a different second ballot
	// (already_voted), a stranger (unknown_voter) and a malformed record.
	b0 := batches[0]
	dup := b0[0]
	dup.Offset = int64(len(b0))
	second := b0[1]
	second.Offset = int64(len(b0) + 1)
	second.CandidateID = cands[2].CandidateID
	if second.CandidateID == b0[1].CandidateID {
		second.CandidateID = cands[1].CandidateID
	}
	stranger := election.BallotAt{Offset: int64(len(b0) + 2), Ballot: election.Ballot{VoterID: "nobody", CandidateID: cands[0].CandidateID, VotingTime: t0}}
	batches[0] = append(b0, dup, second, stranger)
	rejects := []election.RejectedRecord{{Offset: int64(len(batches[0])), Reason: election.ReasonMalformed, Detail: "not JSON", Payload: []byte("{")}}

	for p, b := range batches {
		batch := election.TallyBatch{Topic: votesTopic, Partition: p, Ballots: b}
		if p == 0 {
			batch.Rejects = rejects
		}
		if _, err := st.Tally(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}

	before := time.Now()
	s, err := st.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}

	if s.Election != "Snapshot test election" || s.Registered != 300 || s.Counted != 240 {
		t.Errorf("election %q registered %d counted %d, want Snapshot test election 300 240", s.Election, s.Registered, s.Counted)
	}
	if d := s.TakenAt.Sub(before); d < -time.Minute || d > time.Minute {
		t.Errorf("taken at %v, %v from the call", s.TakenAt, d)
	}
	wantNewest := t0.Add(239 * 7 * time.Second)
	if !s.NewestVote.Equal(wantNewest) {
		t.Errorf("newest vote %v, want %v", s.NewestVote, wantNewest)
	}
	wantRejected := map[string]int64{"duplicate": 1, "already_voted": 1, "unknown_voter": 1, "malformed": 1}
	if fmt.Sprint(s.Rejected) != fmt.Sprint(wantRejected) {
		t.Errorf("rejected %v, want %v", s.Rejected, wantRejected)
	}

	byCand, byState, byGender, byBand := map[string]int64{}, map[string]int64{}, map[string]int64{}, map[string]int64{}
	for _, w := range counted {
		byCand[w.cand]++
		byState[w.state]++
		byGender[w.gender]++
		byBand[w.band]++
	}
	if len(s.Candidates) != 3 {
		t.Fatalf("%d candidates, want 3", len(s.Candidates))
	}
	if !slices.IsSortedFunc(s.Candidates, func(a, b dashboard.Candidate) int { return compare(a.ID, b.ID) }) {
		t.Errorf("candidates not in ID order: %+v", s.Candidates)
	}
	for _, c := range s.Candidates {
		if c.Votes != byCand[c.ID] {
			t.Errorf("candidate %s: %d votes, want %d", c.ID, c.Votes, byCand[c.ID])
		}
		if c.PhotoURL == "" || c.Party == "" {
			t.Errorf("candidate %s lacks photo or party", c.ID)
		}
	}
	if c := s.Candidates[slices.IndexFunc(s.Candidates, func(c dashboard.Candidate) bool { return c.ID == cands[0].CandidateID })]; c.Name != `<script>alert(1)</script>` {
		t.Errorf("name came back as %q", c.Name)
	}
	registered := map[string]int64{}
	for _, v := range voters {
		registered["state/"+v.Address.State]++
		registered["gender/"+v.Gender]++
		registered["band/"+election.AgeBand(v.RegisteredAge)]++
	}
	checkTurnout(t, "state", s.States, byState, registered)
	checkResults(t, s, counted2(counted, func(w want) string { return w.state + "/" + w.cand }))
	checkTurnout(t, "gender", s.Genders, byGender, registered)
	checkTurnout(t, "band", s.AgeBands, byBand, registered)

	// The timeline: at most 500 instants, ascending, ending at the newest
	// vote, and each point exact: the votes whose second is at or before it.
	tl := s.Timeline
	if n := len(tl.Times); n == 0 || n > dashboard.DefaultMaxTimelinePoints {
		t.Fatalf("timeline has %d instants, want 1-%d", n, dashboard.DefaultMaxTimelinePoints)
	}
	if !slices.IsSortedFunc(tl.Times, func(a, b time.Time) int { return a.Compare(b) }) || !tl.Times[len(tl.Times)-1].Equal(wantNewest) {
		t.Errorf("timeline instants not ascending to %v: first %v last %v", wantNewest, tl.Times[0], tl.Times[len(tl.Times)-1])
	}
	if len(tl.Series) != 3 {
		t.Fatalf("%d timeline series, want 3", len(tl.Series))
	}
	for _, ser := range tl.Series {
		if len(ser.Cumulative) != len(tl.Times) {
			t.Fatalf("series %s has %d points for %d instants", ser.CandidateID, len(ser.Cumulative), len(tl.Times))
		}
		for k, at := range tl.Times {
			var n int64
			for key, vt := range votedAt {
				if key[:len(ser.CandidateID)] == ser.CandidateID && !vt.Truncate(time.Second).After(at) {
					n++
				}
			}
			if ser.Cumulative[k] != n {
				t.Fatalf("series %s at %v: %d votes, want %d", ser.CandidateID, at, ser.Cumulative[k], n)
			}
		}
	}

	// The tallies the snapshot reads agree with a recount of the votes.
	a, err := st.Audit(ctx, votesTopic, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !a.OK() {
		t.Errorf("audit disagrees: %+v", a.Checks)
	}
}

func counted2[T any](ws []T, key func(T) string) map[string]int64 {
	m := map[string]int64{}
	for _, w := range ws {
		m[key(w)]++
	}
	return m
}

// checkResults compares the snapshot's votes per state and candidate with a
// recount keyed "state/candidate".
func checkResults(t *testing.T, s dashboard.Snapshot, want map[string]int64) {
	t.Helper()
	got := map[string]int64{}
	for i, r := range s.Results {
		if i > 0 && s.Results[i-1].State >= r.State {
			t.Errorf("results not in state order: %q after %q", r.State, s.Results[i-1].State)
		}
		if len(r.Votes) != len(s.Candidates) {
			t.Fatalf("state %s has %d candidates' votes, the snapshot %d candidates", r.State, len(r.Votes), len(s.Candidates))
		}
		for i, n := range r.Votes {
			if n != 0 {
				got[r.State+"/"+s.Candidates[i].ID] = n
			}
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("results by state %v, want %v", got, want)
	}
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func checkTurnout(t *testing.T, dim string, got []dashboard.Turnout, votes map[string]int64, registered map[string]int64) {
	t.Helper()
	seen := map[string]bool{}
	for _, r := range got {
		seen[r.Key] = true
		if r.Votes != votes[r.Key] || r.Registered != registered[dim+"/"+r.Key] {
			t.Errorf("%s %q: %d of %d, want %d of %d", dim, r.Key, r.Votes, r.Registered, votes[r.Key], registered[dim+"/"+r.Key])
		}
	}
	for k := range votes {
		if !seen[k] {
			t.Errorf("%s %q missing from the snapshot", dim, k)
		}
	}
}

// TestSnapshotIsConsistentWhileTallying takes snapshots while batches are
// being counted: every snapshot must add up (candidates, states, genders,
// age bands and the timeline's last point all give the same total), which
// only a single transaction's snapshot guarantees.
func TestSnapshotIsConsistentWhileTallying(t *testing.T) {
	ctx := context.Background()
	st, voters, cands := snapshotElection(t, 400)
	t0 := time.Date(2026, time.November, 3, 9, 0, 0, 0, time.UTC)

	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		for b := range 40 {
			batch := election.TallyBatch{Topic: votesTopic, Partition: int32(b % 3)}
			for i := b * 10; i < b*10+10; i++ {
				batch.Ballots = append(batch.Ballots, election.BallotAt{Offset: int64(i),
					Ballot: election.Ballot{VoterID: voters[i].VoterID, CandidateID: cands[i%3].CandidateID, VotingTime: t0.Add(time.Duration(i) * time.Second)}})
			}
			if _, err := st.Tally(ctx, batch); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	snaps := 0
	for stop := false; !stop; {
		select {
		case <-done:
			stop = true
		default:
		}
		s, err := st.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		snaps++
		sum := func(ts []dashboard.Turnout) (n int64) {
			for _, r := range ts {
				n += r.Votes
			}
			return n
		}
		var last int64
		for _, ser := range s.Timeline.Series {
			if len(ser.Cumulative) > 0 {
				last += ser.Cumulative[len(ser.Cumulative)-1]
			}
		}
		if sum(s.States) != s.Counted || sum(s.Genders) != s.Counted || sum(s.AgeBands) != s.Counted || last != s.Counted {
			t.Fatalf("snapshot %d does not add up: counted %d, states %d, genders %d, bands %d, timeline %d",
				snaps, s.Counted, sum(s.States), sum(s.Genders), sum(s.AgeBands), last)
		}
	}
	wg.Wait()
	s, err := st.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Counted != 400 {
		t.Errorf("counted %d after all batches, want 400", s.Counted)
	}
	t.Logf("%d consistent snapshots during 40 batches", snaps)
}
