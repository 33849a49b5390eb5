package tally_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/votingpipe/voting/shared/broker"
	"github.com/votingpipe/voting/shared/deadletter"
	"github.com/votingpipe/voting/shared/election"
	"github.com/votingpipe/voting/shared/generator"
	"github.com/votingpipe/voting/shared/internal/testkit"
	"github.com/votingpipe/voting/shared/store"
	"github.com/votingpipe/voting/shared/stream"
	"github.com/votingpipe/voting/shared/tally"
)

// kafkaRig is a tally processor publishing to a kfake cluster (one
// partition per topic), on a fresh database holding an election of n
// voters and 3 candidates.
func kafkaRig(t *testing.T, n int) (*tally.Processor, *kfake.Cluster, *kgo.Client, *store.Store, []election.Voter, []election.Candidate) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topics.CandidateTotals, topics.TurnoutTotals, topics.VotesDLQ))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordRetries(2), kgo.RetryTimeout(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	st := openStore(t)
	cands := generator.Candidates(7, 3)
	voters := testkit.Register(t, st, "t", 7, cands, n)
	p := &tally.Processor{Store: st, Publisher: broker.Publisher{Client: cl}, Topics: topics, MaxRecordBytes: 4096}
	return p, c, cl, st, voters, cands
}

// failProduce makes the cluster refuse every produce to topic until the
// returned function is called.
func failProduce(c *kfake.Cluster, topic string) (restore func()) {
	h := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: topic, Err: kerr.TopicAuthorizationFailed, Count: -1})
	return h.Remove
}

// readAll returns every record of topic's partition 0, from the start.
func readAll(t *testing.T, c *kfake.Cluster, topic string) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := broker.TopicEnds(ctx, cl, topic)
	if err != nil {
		t.Fatal(err)
	}
	var out []*kgo.Record
	for int64(len(out)) < ends[0] {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d records of %s: %v", len(out), ends[0], topic, err)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

// The rejections of a batch are committed with its votes; its dead letters
// are produced after the commit. When the broker refuses them, the batch
// fails and is retried, and the retry produces them: a dead letter is
// produced at least once, and rejected_votes still holds each record once.
func TestDeadLettersAreProducedAtLeastOnce(t *testing.T) {
	p, c, _, st, voters, cands := kafkaRig(t, 5)
	ctx := context.Background()
	recs := []*stream.Record{
		{Value: vote(voters[0].VoterID, cands[0].CandidateID)},
		{Value: []byte(`{"voter_id":`)},
		{Value: vote("nobody", cands[0].CandidateID)},
		{Value: vote(voters[0].VoterID, cands[0].CandidateID)},
		{Value: vote(voters[0].VoterID, cands[1].CandidateID)},
		{Value: vote(voters[1].VoterID, "ghost")},
	}
	want := map[int64]election.Reason{1: election.ReasonMalformed, 2: election.ReasonUnknownVoter, 3: election.ReasonDuplicate,
		4: election.ReasonAlreadyVoted, 5: election.ReasonUnknownCandidate}
	for i, r := range recs {
		r.Topic, r.Partition, r.Offset, r.Key = votesTopic, 2, int64(i), []byte(fmt.Sprint("k", i))
	}

	restore := failProduce(c, topics.VotesDLQ)
	if _, err := p.Process(ctx, recs); err == nil {
		t.Fatal("the batch succeeded although the broker refused its dead letters")
	}
	if n := count(t, st, `SELECT count(*) FROM rejected_votes`); n != len(want) {
		t.Fatalf("%d rejections committed with the batch, want %d", n, len(want))
	}
	if got := readAll(t, c, topics.VotesDLQ); len(got) != 0 {
		t.Fatalf("%d dead letters on the topic while the broker refused them", len(got))
	}

	restore()
	sum, err := p.Process(ctx, recs)
	if err != nil {
		t.Fatal(err)
	}
	if sum["counted"] != 0 {
		t.Fatalf("the retry counted %d votes again", sum["counted"])
	}
	dlq := readAll(t, c, topics.VotesDLQ)
	got := map[int64]election.Reason{}
	for _, kd := range dlq {
		d := broker.FromKgo(kd)
		var off int64
		fmt.Sscan(d.Header(deadletter.HeaderSourceOffset), &off) //nolint:errcheck
		got[off] = election.Reason(d.Header(deadletter.HeaderReason))
		if d.Header(deadletter.HeaderSourceTopic) != votesTopic || d.Header(deadletter.HeaderSourcePartition) != "2" ||
			d.Header(deadletter.HeaderStage) != tally.Stage || d.Header(deadletter.HeaderDetail) == "" {
			t.Errorf("dead letter headers %v", d.Headers)
		}
		if !slices.Equal(d.Value, recs[off].Value) || !slices.Equal(d.Key, recs[off].Key) {
			t.Errorf("dead letter of offset %d is not the original record", off)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || len(dlq) != len(want) {
		t.Fatalf("the retry dead-lettered %v (%d records), want %v", got, len(dlq), want)
	}
	if n := count(t, st, `SELECT count(*) FROM rejected_votes`); n != len(want) {
		t.Fatalf("%d rows in rejected_votes after the retry, want %d", n, len(want))
	}
	if n := count(t, st, `SELECT count(*) FROM votes`); n != 1 {
		t.Fatalf("%d votes, want 1", n)
	}
}

// When the broker refuses the totals after a batch is committed, the retry
// counts nothing new but must still publish them, or the aggregated topics
// and the dashboard would never hear of the batch; what they end on is the
// recount.
func TestTotalsArePublishedAgainAfterAFailedPublish(t *testing.T) {
	p, c, _, _, voters, cands := kafkaRig(t, 5)
	ctx := context.Background()
	recs := []*stream.Record{{Topic: votesTopic, Offset: 0, Value: vote(voters[0].VoterID, cands[0].CandidateID)},
		{Topic: votesTopic, Offset: 1, Value: vote(voters[1].VoterID, cands[0].CandidateID)}}
	restore := failProduce(c, topics.TurnoutTotals)
	if _, err := p.Process(ctx, recs); err == nil {
		t.Fatal("the publish failure was not reported")
	}
	restore()
	sum, err := p.Process(ctx, recs)
	if err != nil {
		t.Fatal(err)
	}
	if sum["counted"] != 0 {
		t.Fatalf("the retry counted again: %v", sum)
	}
	last := func(topic string) map[string]map[string]any {
		out := map[string]map[string]any{}
		for _, r := range readAll(t, c, topic) {
			var v map[string]any
			if err := json.Unmarshal(r.Value, &v); err != nil {
				t.Fatal(err)
			}
			out[string(r.Key)] = v
		}
		return out
	}
	cs := last(topics.CandidateTotals)
	if len(cs) != 3 || cs[cands[0].CandidateID]["total_votes"] != 2.0 {
		t.Fatalf("candidate totals after the retry: %v", cs)
	}
	states := last(topics.TurnoutTotals)
	var total float64
	for _, s := range states {
		total += s["total_votes"].(float64)
		if s["version"] == nil || s["election"] == nil {
			t.Fatalf("a total without version or election: %v", s)
		}
	}
	if total != 2 {
		t.Fatalf("state totals after the retry sum to %v, want 2: %v", total, states)
	}
}
