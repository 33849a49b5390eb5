package harness_test

// Bad input: every record a stage cannot use is dead-lettered with headers
// saying why, from where and when, recorded (tally) in rejected_votes, and
// the partition keeps moving.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/votingpipe/voting/shared/stream"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/votingpipe/voting/infra"
	"github.com/votingpipe/voting/local/harness"
	"github.com/votingpipe/voting/shared/broker"
	"github.com/votingpipe/voting/shared/deadletter"
	"github.com/votingpipe/voting/shared/election"
)

// voteJSON is a minimal valid vote.
func voteJSON(voterID, candidateID string, at time.Time) []byte {
	b, _ := json.Marshal(map[string]any{"voter_id": voterID, "candidate_id": candidateID,
		"voting_time": at.UTC().Format(time.RFC3339Nano), "vote": 1})
	return b
}

// cast is a valid vote already on the topic.
type cast struct {
	voterID, candidateID string
	value                []byte
}

// garbage makes bad votes_topic records of many kinds.
type garbage struct {
	rng      *rand.Rand
	cast     []cast   // valid votes produced so far, in order
	cands    []string // standing candidates
	maxBytes int
	at       time.Time
}

// badKind is one kind of bad record and the reason the tally must give.
type badKind struct {
	name   string
	reason election.Reason
	// needsCast kinds repeat a voter whose vote is already on the topic.
	needsCast bool
	make      func(g *garbage) (key string, value []byte)
}

func (g *garbage) someCast() cast { return g.cast[g.rng.IntN(len(g.cast))] }

func (g *garbage) valid() []byte {
	return voteJSON(fmt.Sprintf("voter-%d", g.rng.IntN(1e6)), g.cands[0], g.at)
}

var badKinds = []badKind{
	{"truncated JSON", election.ReasonMalformed, false, func(g *garbage) (string, []byte) {
		v := g.valid()
		return "", v[:1+g.rng.IntN(len(v)-2)]
	}},
	{"random bytes", election.ReasonMalformed, false, func(g *garbage) (string, []byte) {
		b := make([]byte, 1+g.rng.IntN(300))
		for i := range b {
			b[i] = byte(g.rng.UintN(256))
		}
		b[0] = '\xff' // never valid JSON
		return "", b
	}},
	{"empty", election.ReasonMalformed, false, func(*garbage) (string, []byte) { return "", nil }},
	{"whitespace", election.ReasonMalformed, false, func(*garbage) (string, []byte) { return "", []byte(" \n\t ") }},
	{"not an object", election.ReasonMalformed, false, func(g *garbage) (string, []byte) {
		return "", []byte([]string{`[]`, `[1,2]`, `"vote"`, `42`, `true`, `null`}[g.rng.IntN(6)])
	}},
	{"missing field", election.ReasonMalformed, false, func(g *garbage) (string, []byte) {
		m := map[string]any{"voter_id": "v", "candidate_id": g.cands[0], "voting_time": g.at.Format(time.RFC3339), "vote": 1}
		delete(m, []string{"voter_id", "candidate_id", "voting_time", "vote"}[g.rng.IntN(4)])
		b, _ := json.Marshal(m)
		return "", b
	}},
	{"blank voter_id", election.ReasonMalformed, false, func(g *garbage) (string, []byte) {
		return "", voteJSON("   ", g.cands[0], g.at)
	}},
	{"wrong type", election.ReasonMalformed, false, func(g *garbage) (string, []byte) {
		return "", []byte([]string{
			`{"voter_id":7,"candidate_id":"c","voting_time":"2026-11-03T10:00:00Z","vote":1}`,
			`{"voter_id":"v","candidate_id":"c","voting_time":"2026-11-03T10:00:00Z","vote":"1"}`,
			`{"voter_id":"v","candidate_id":["c"],"voting_time":"2026-11-03T10:00:00Z","vote":1}`,
			`{"voter_id":"v","candidate_id":"c","voting_time":1762164000,"vote":1}`,
		}[g.rng.IntN(4)])
	}},
	{"vote is not 1", election.ReasonMalformed, false, func(g *garbage) (string, []byte) {
		c := g.someCast()
		return c.voterID, bytes.Replace(voteJSON(c.voterID, c.candidateID, g.at), []byte(`"vote":1`), []byte(`"vote":`+[]string{"0", "2", "-1", "1000000"}[g.rng.IntN(4)]), 1)
	}},
	{"bad voting_time", election.ReasonMalformed, false, func(g *garbage) (string, []byte) {
		b, _ := json.Marshal(map[string]any{"voter_id": "v", "candidate_id": g.cands[0], "vote": 1,
			"voting_time": []string{"yesterday", "2026-13-45T99:00:00Z", "2026-11-03", ""}[g.rng.IntN(4)]})
		return "", b
	}},
	{"trailing data", election.ReasonMalformed, false, func(g *garbage) (string, []byte) {
		return "", append(g.valid(), " {}"...)
	}},
	{"NUL in voter_id", election.ReasonMalformed, false, func(g *garbage) (string, []byte) {
		return "", voteJSON("voter\x00"+strconv.Itoa(g.rng.IntN(1000)), g.cands[0], g.at)
	}},
	{"NUL in candidate_id", election.ReasonMalformed, false, func(g *garbage) (string, []byte) {
		c := g.someCast()
		return c.voterID, voteJSON(c.voterID, g.cands[0]+"\x00", g.at)
	}},
	{"deeply nested", election.ReasonMalformed, false, func(g *garbage) (string, []byte) {
		d := 100 + g.rng.IntN(400)
		return "", []byte(`{"voter_id":` + strings.Repeat("[", d) + strings.Repeat("]", d) + `}`)
	}},
	{"oversized", election.ReasonOversized, false, func(g *garbage) (string, []byte) {
		c := g.someCast()
		v := voteJSON(c.voterID, c.candidateID, g.at)
		pad := g.maxBytes + 1 + g.rng.IntN(2*g.maxBytes)
		return c.voterID, append(v[:len(v)-1], `,"pad":"`+strings.Repeat("x", pad)+`"}`...)
	}},
	{"unknown voter", election.ReasonUnknownVoter, false, func(g *garbage) (string, []byte) {
		id := []string{"ghost-" + strconv.Itoa(g.rng.IntN(1e9)), `x'); DROP TABLE votes; --`, "\xff\xfe invalid utf-8"}[g.rng.IntN(3)]
		return id, voteJSON(id, g.cands[0], g.at)
	}},
	{"unknown candidate", election.ReasonUnknownCandidate, true, func(g *garbage) (string, []byte) {
		c := g.someCast()
		return c.voterID, voteJSON(c.voterID, []string{"nobody", `'; DELETE FROM candidates; --`}[g.rng.IntN(2)], g.at)
	}},
	{"second, different ballot", election.ReasonAlreadyVoted, true, func(g *garbage) (string, []byte) {
		c := g.someCast()
		other := c.candidateID
		for other == c.candidateID {
			other = g.cands[g.rng.IntN(len(g.cands))]
		}
		return c.voterID, voteJSON(c.voterID, other, g.at.Add(time.Minute))
	}},
	{"same ballot again", election.ReasonDuplicate, true, func(g *garbage) (string, []byte) {
		c := g.someCast()
		return c.voterID, c.value
	}},
}

// TestDrillGarbageStream feeds the tally a stream of 10,000 bad records of
// every kind interleaved with valid votes: every bad record is rejected with
// the right reason, recorded in rejected_votes and dead-lettered on
// votes_dlq with its origin; every valid vote is counted.
func TestDrillGarbageStream(t *testing.T) {
	const maxBytes = 2048
	nBad := pick(10_000, 100_000)
	nValid := pick(2_000, 20_000)
	env := drillEnv(t, 4, map[string]string{"MAX_RECORD_BYTES": strconv.Itoa(maxBytes)}, harness.EnvOptions{InMemory: true})
	ctx, cancel := context.WithTimeout(context.Background(), pick(2*time.Minute, 10*time.Minute))
	defer cancel()
	if _, err := registerElection(ctx, env, int64(nValid), 0); err != nil {
		t.Fatal(err)
	}
	cands, err := env.Deps.Store.Candidates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	g := &garbage{rng: rand.New(rand.NewPCG(6, 6)), maxBytes: maxBytes, at: time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)}
	for _, c := range cands {
		g.cands = append(g.cands, c.CandidateID)
	}
	rows, err := db(t, env).Query(ctx, `SELECT voter_id FROM voters ORDER BY voter_id`)
	if err != nil {
		t.Fatal(err)
	}
	var voterIDs []string
	for rows.Next() {
		var id string
		rows.Scan(&id) //nolint:errcheck
		voterIDs = append(voterIDs, id)
	}
	rows.Close()

	// Valid votes at random places among the bad records; the bad records
	// that repeat a voter follow that voter's vote, on its partition (key).
	topic := env.Config.Topics.Votes
	var recs []*stream.Record
	want := map[*stream.Record]election.Reason{}
	byKind := map[string]int{}
	next := 0
	for len(recs) < nBad+nValid {
		if next < nValid && (g.rng.IntN(nBad+nValid) < nValid || len(recs)-next >= nBad) {
			id := voterIDs[next]
			c := cast{voterID: id, candidateID: g.cands[g.rng.IntN(len(g.cands))]}
			c.value = voteJSON(id, c.candidateID, g.at.Add(time.Duration(next)*time.Millisecond))
			g.cast = append(g.cast, c)
			r := &stream.Record{Topic: topic, Key: []byte(id), Value: c.value}
			recs = append(recs, r)
			want[r] = ""
			next++
			continue
		}
		k := badKinds[g.rng.IntN(len(badKinds))]
		if k.needsCast && len(g.cast) == 0 || len(g.cast) == 0 && strings.Contains(k.name, "candidate_id") ||
			len(g.cast) == 0 && (k.name == "oversized" || k.name == "vote is not 1") {
			continue
		}
		key, val := k.make(g)
		if key == "" {
			key = "g" + strconv.Itoa(len(recs))
		}
		r := &stream.Record{Topic: topic, Key: []byte(key), Value: val}
		recs = append(recs, r)
		want[r] = k.reason
		byKind[k.name]++
	}
	if err := (broker.Publisher{Client: env.Deps.Kafka}).Publish(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	type coord struct {
		p   int32
		off int64
	}
	wantAt := map[coord]election.Reason{}
	orig := map[coord]*stream.Record{}
	wantReasons := map[string]int64{}
	for _, r := range recs {
		wantAt[coord{r.Partition, r.Offset}] = want[r]
		orig[coord{r.Partition, r.Offset}] = r
		if want[r] != "" {
			wantReasons[string(want[r])]++
		}
	}

	began := time.Now()
	tally := startFunction(t, env, infra.Tally, 0)
	eventually(t, pick(60*time.Second, 5*time.Minute), "the tally consumes the garbage stream", func() (bool, error) {
		if n := count(t, env, `SELECT count(*) FROM rejected_votes`); n < int64(nBad) {
			return false, fmt.Errorf("%d of %d bad records rejected (is a partition stuck on a record it cannot store?)", n, nBad)
		}
		return caughtUp(ctx, env, mustGroup(t, infra.Tally))
	})
	took := time.Since(began)
	if err := tally.stop(); err != nil {
		t.Fatal(err)
	}
	if f := tally.Stats.Failures.Load(); f != 0 {
		t.Errorf("%d invocations failed: bad records must be dead-lettered, never fail a batch", f)
	}

	// rejected_votes: each bad record, with the reason its kind must get.
	rrows, err := db(t, env).Query(ctx, `SELECT partition, "offset", reason, detail FROM rejected_votes WHERE topic = $1`, topic)
	if err != nil {
		t.Fatal(err)
	}
	rejected := 0
	for rrows.Next() {
		var c coord
		var reason, detail string
		if err := rrows.Scan(&c.p, &c.off, &reason, &detail); err != nil {
			t.Fatal(err)
		}
		rejected++
		if w, ok := wantAt[c]; !ok || string(w) != reason {
			t.Errorf("record %d/%d rejected as %s (%s), want %q", c.p, c.off, reason, detail, w)
		}
		if detail == "" {
			t.Errorf("record %d/%d rejected as %s with no detail", c.p, c.off, reason)
		}
	}
	rrows.Close()
	if rejected != nBad {
		t.Errorf("%d records in rejected_votes, want %d", rejected, nBad)
	}

	// votes: exactly the valid ones.
	vrows, err := db(t, env).Query(ctx, `SELECT src_partition, src_offset FROM votes`)
	if err != nil {
		t.Fatal(err)
	}
	counted := 0
	for vrows.Next() {
		var c coord
		if err := vrows.Scan(&c.p, &c.off); err != nil {
			t.Fatal(err)
		}
		counted++
		if w := wantAt[c]; w != "" {
			t.Errorf("record %d/%d counted, want rejected as %s", c.p, c.off, w)
		}
	}
	vrows.Close()
	if counted != nValid {
		t.Errorf("%d votes counted, want %d", counted, nValid)
	}

	// votes_dlq: every bad record, unchanged, with where and why.
	dlq := readTopic(t, env, env.Config.Topics.VotesDLQ)
	seen := map[coord]bool{}
	for _, d := range dlq {
		c, src := checkDeadLetter(t, d, infra.Tally, topic)
		if src == "" {
			continue
		}
		o := orig[c]
		if o == nil {
			t.Errorf("dead letter of %d/%d, which is not a record of the stream", c.p, c.off)
			continue
		}
		if got := d.Header(deadletter.HeaderReason); got != string(wantAt[c]) {
			t.Errorf("dead letter of %d/%d has reason %q, want %q", c.p, c.off, got, wantAt[c])
		}
		if !bytes.Equal(d.Value, o.Value) || !bytes.Equal(d.Key, o.Key) {
			t.Errorf("dead letter of %d/%d is not the original record", c.p, c.off)
		}
		seen[c] = true
	}
	if len(seen) != nBad || len(dlq) != nBad {
		t.Errorf("votes_dlq holds %d records for %d distinct bad records, want %d", len(dlq), len(seen), nBad)
	}

	rep := auditOK(t, env, int64(nValid))
	for reason, n := range wantReasons {
		if rep.Rejected[reason] != n {
			t.Errorf("audit: %d rejected as %s, want %d", rep.Rejected[reason], reason, n)
		}
	}
	t.Logf("garbage drill: %d bad records of %d kinds dead-lettered (%d in rejected_votes, %d on votes_dlq) among %d valid votes, all %d counted, in %.1fs; by reason %v",
		nBad, len(byKind), rejected, len(dlq), nValid, counted, took.Seconds(), rep.Rejected)
}

// checkDeadLetter checks the headers of dead letter d and returns the
// source coordinates it names; src is "" (and the test marked failed) when a
// header is missing or wrong.
func checkDeadLetter(t testing.TB, d *stream.Record, stage, sourceTopic string) (c struct {
	p   int32
	off int64
}, src string) {
	t.Helper()
	for _, h := range []string{deadletter.HeaderReason, deadletter.HeaderDetail, deadletter.HeaderSourceTopic,
		deadletter.HeaderSourcePartition, deadletter.HeaderSourceOffset, deadletter.HeaderStage, deadletter.HeaderFailedAt} {
		if d.Header(h) == "" {
			t.Errorf("dead letter at %d/%d lacks header %s: %v", d.Partition, d.Offset, h, d.Headers)
			return c, ""
		}
	}
	if got := d.Header(deadletter.HeaderStage); got != stage {
		t.Errorf("dead letter stage %q, want %q", got, stage)
	}
	if got := d.Header(deadletter.HeaderSourceTopic); got != sourceTopic {
		t.Errorf("dead letter source_topic %q, want %q", got, sourceTopic)
	}
	at, err := time.Parse(time.RFC3339Nano, d.Header(deadletter.HeaderFailedAt))
	if err != nil || time.Since(at) > time.Hour || time.Since(at) < -time.Minute {
		t.Errorf("dead letter failed_at %q: %v", d.Header(deadletter.HeaderFailedAt), err)
	}
	p, err1 := strconv.ParseInt(d.Header(deadletter.HeaderSourcePartition), 10, 32)
	off, err2 := strconv.ParseInt(d.Header(deadletter.HeaderSourceOffset), 10, 64)
	if err1 != nil || err2 != nil {
		t.Errorf("dead letter source coordinates %v %v", err1, err2)
		return c, ""
	}
	c.p, c.off = int32(p), off
	return c, sourceTopic
}

// TestDeadLettersCarryTheirOrigin sends every kind of bad record through
// both stages on one partition: the ballot stage dead-letters bad voter
// records on voters_dlq, the tally dead-letters the votes it cannot count on
// votes_dlq and records each in rejected_votes; each dead letter is the
// original record with headers saying why, from where and when, and the
// records after the bad ones are still processed.
func TestDeadLettersCarryTheirOrigin(t *testing.T) {
	const maxBytes = 2048
	env := drillEnv(t, 1, map[string]string{"MAX_RECORD_BYTES": strconv.Itoa(maxBytes)}, harness.EnvOptions{InMemory: true})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const voters = 20
	if _, err := registerElection(ctx, env, voters, 0); err != nil {
		t.Fatal(err)
	}
	pub := broker.Publisher{Client: env.Deps.Kafka}
	voterRecs := readTopic(t, env, env.Config.Topics.Voters)
	if len(voterRecs) != voters {
		t.Fatalf("%d voter records", len(voterRecs))
	}
	mutate := func(f func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(voterRecs[0].Value, &m); err != nil {
			t.Fatal(err)
		}
		m["voter_id"] = "mutant"
		f(m)
		b, _ := json.Marshal(m)
		return b
	}

	// Bad voter records, then a well-formed voter who is not on the roll,
	// then a copy of a registered voter's record (the ballot stage casts it
	// again: the tally must see a duplicate).
	badVoters := []struct {
		name   string
		value  []byte
		reason election.Reason
	}{
		{"not JSON", []byte(`{"voter_id":`), election.ReasonMalformed},
		{"empty", nil, election.ReasonMalformed},
		{"missing fields", []byte(`{"voter_id":"x"}`), election.ReasonMalformed},
		{"bad date_of_birth", mutate(func(m map[string]any) { m["date_of_birth"] = "02/01/1980" }), election.ReasonMalformed},
		{"too young", mutate(func(m map[string]any) { m["registered_age"] = 12 }), election.ReasonMalformed},
		{"wrong type", mutate(func(m map[string]any) { m["registered_age"] = "forty" }), election.ReasonMalformed},
		{"NUL in voter_id", mutate(func(m map[string]any) { m["voter_id"] = "a\x00b" }), election.ReasonMalformed},
		{"oversized", mutate(func(m map[string]any) { m["picture"] = strings.Repeat("x", maxBytes) }), election.ReasonOversized},
	}
	var recs []*stream.Record
	for _, b := range badVoters {
		recs = append(recs, &stream.Record{Topic: env.Config.Topics.Voters, Key: []byte(b.name), Value: b.value})
	}
	ghost := mutate(func(m map[string]any) { m["voter_id"] = "ghost" })
	recs = append(recs,
		&stream.Record{Topic: env.Config.Topics.Voters, Key: []byte("ghost"), Value: ghost},
		&stream.Record{Topic: env.Config.Topics.Voters, Key: voterRecs[0].Key, Value: voterRecs[0].Value})
	if err := pub.Publish(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	wantVoterDLQ := map[int64]election.Reason{}
	origVoter := map[int64]*stream.Record{}
	for i, b := range badVoters {
		wantVoterDLQ[recs[i].Offset] = b.reason
		origVoter[recs[i].Offset] = recs[i]
	}

	ballot := startFunction(t, env, infra.Ballot, 0)
	tally := startFunction(t, env, infra.Tally, 0)
	settle := func(what string) {
		eventually(t, 30*time.Second, what, func() (bool, error) {
			return caughtUp(ctx, env, mustGroup(t, infra.Ballot), mustGroup(t, infra.Tally))
		})
	}
	settle("the voter records are cast and tallied")
	if n := topicEnd(t, env, env.Config.Topics.Votes); n != voters+2 {
		t.Fatalf("%d votes cast, want %d (every valid voter record after the bad ones, the ghost and the copy)", n, voters+2)
	}

	// Votes the tally cannot count, sent straight to votes_topic.
	votes := readTopic(t, env, env.Config.Topics.Votes)
	var ballotOf = func(i int) (voterID, candidateID string) {
		var v struct {
			VoterID     string `json:"voter_id"`
			CandidateID string `json:"candidate_id"`
		}
		json.Unmarshal(votes[i].Value, &v) //nolint:errcheck
		return v.VoterID, v.CandidateID
	}
	cands, _ := env.Deps.Store.Candidates(ctx)
	v1, c1 := ballotOf(1)
	v2, c2 := ballotOf(2)
	other := cands[0].CandidateID
	if other == c2 {
		other = cands[1].CandidateID
	}
	v3, _ := ballotOf(3)
	at := time.Now()
	direct := []struct {
		value  []byte
		reason election.Reason
	}{
		{votes[1].Value, election.ReasonDuplicate},
		{voteJSON(v2, other, at), election.ReasonAlreadyVoted},
		{voteJSON(v3, "nobody", at), election.ReasonUnknownCandidate},
		{[]byte(`{"voter_id":"v","vote":1`), election.ReasonMalformed},
		{[]byte(`{"voter_id":"v","candidate_id":"c","voting_time":"2026-11-03T10:00:00Z","vote":1}`), election.ReasonUnknownVoter},
		{append(voteJSON(v1, c1, at)[:10], strings.Repeat(" ", maxBytes)+`}`...), election.ReasonOversized},
	}
	recs = recs[:0]
	for _, d := range direct {
		recs = append(recs, &stream.Record{Topic: env.Config.Topics.Votes, Key: []byte("direct"), Value: d.value})
	}
	if err := pub.Publish(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	wantVoteDLQ := map[int64]election.Reason{}
	origVote := map[int64]*stream.Record{}
	for i, d := range direct {
		wantVoteDLQ[recs[i].Offset] = d.reason
		origVote[recs[i].Offset] = recs[i]
	}
	for _, v := range votes {
		switch string(v.Key) {
		case "ghost":
			wantVoteDLQ[v.Offset] = election.ReasonUnknownVoter
			origVote[v.Offset] = v
		case string(voterRecs[0].Key):
			if v.Offset >= voters { // the second cast of voter 0
				wantVoteDLQ[v.Offset] = election.ReasonDuplicate
				origVote[v.Offset] = v
			}
		}
	}
	settle("the direct votes are tallied")
	if err := ballot.stop(); err != nil {
		t.Fatal(err)
	}
	if err := tally.stop(); err != nil {
		t.Fatal(err)
	}

	check := func(dlqTopic, stage, source string, want map[int64]election.Reason, orig map[int64]*stream.Record) {
		t.Helper()
		got := map[int64]bool{}
		for _, d := range readTopic(t, env, dlqTopic) {
			c, src := checkDeadLetter(t, d, stage, source)
			if src == "" {
				continue
			}
			reason := d.Header(deadletter.HeaderReason)
			if w, ok := want[c.off]; !ok || string(w) != reason {
				t.Errorf("%s: %s/%d dead-lettered as %s (%s), want %q", dlqTopic, source, c.off, reason, d.Header(deadletter.HeaderDetail), w)
			}
			if o := orig[c.off]; o == nil || !bytes.Equal(o.Value, d.Value) || !bytes.Equal(o.Key, d.Key) {
				t.Errorf("%s: the dead letter of %s/%d is not the original record", dlqTopic, source, c.off)
			}
			got[c.off] = true
		}
		for off, w := range want {
			if !got[off] {
				t.Errorf("%s: %s/%d (%s) was not dead-lettered", dlqTopic, source, off, w)
			}
		}
	}
	check(env.Config.Topics.VotersDLQ, infra.Ballot, env.Config.Topics.Voters, wantVoterDLQ, origVoter)
	check(env.Config.Topics.VotesDLQ, infra.Tally, env.Config.Topics.Votes, wantVoteDLQ, origVote)

	// Each tally rejection is in rejected_votes with the same reason.
	got := keyed(t, env, `SELECT "offset"::text || ' ' || reason, 1 FROM rejected_votes WHERE detail <> ''`)
	for off, w := range wantVoteDLQ {
		if got[fmt.Sprintf("%d %s", off, w)] != 1 {
			t.Errorf("rejected_votes lacks %d as %s: %v", off, w, got)
		}
	}
	if len(got) != len(wantVoteDLQ) {
		t.Errorf("rejected_votes holds %d records, want %d", len(got), len(wantVoteDLQ))
	}
	auditOK(t, env, voters)
}
