package register_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/votingpipe/voting/shared/broker"
	"github.com/votingpipe/voting/shared/broker/embedded"
	"github.com/votingpipe/voting/shared/config"
	"github.com/votingpipe/voting/shared/election"
	"github.com/votingpipe/voting/shared/internal/testkit"
	"github.com/votingpipe/voting/shared/register"
	"github.com/votingpipe/voting/shared/store"
)

type rig struct {
	st   *store.Store
	db   *pgxpool.Pool // the test's own checks
	cl   *kgo.Client
	proc *register.Processor
}

func newRig(t *testing.T) *rig { return newRigPartitions(t, 3) }

func newRigPartitions(t *testing.T, partitions int32) *rig {
	t.Helper()
	ctx := context.Background()
	topics := config.Topics{Voters: "voters_topic", Votes: "votes_topic", CandidateTotals: "a", TurnoutTotals: "b", VotesDLQ: "c", VotersDLQ: "d"}
	emb, err := embedded.Start(embedded.Options{Topics: broker.Topics(topics, int(partitions))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Close)
	opts, err := broker.ClientOptions(config.Kafka{Brokers: emb.Addrs(), ClientID: "test"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(opts...) // the pipeline's own producer settings
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	dsn := testkit.NewDatabase(t)
	st, err := store.Open(ctx, dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return &rig{st: st, db: testkit.Pool(t, dsn), cl: cl, proc: &register.Processor{Roll: st, Producer: broker.Producer{Client: cl}, VotersTopic: "voters_topic", ChunkSize: 500}}
}

// invoke calls register through the Lambda runtime's handler path.
func (r *rig) invoke(ctx context.Context, payload string) (register.Response, error) {
	out, err := lambda.NewHandler(r.proc.Register).Invoke(ctx, []byte(payload))
	var resp register.Response
	if err == nil {
		err = json.Unmarshal(out, &resp)
	}
	return resp, err
}

// topicRecords reads every record of voters_topic.
func (r *rig) topicRecords(t *testing.T) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(r.cl).ListEndOffsets(ctx, "voters_topic")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	c, err := kgo.NewClient(kgo.SeedBrokers(r.cl.OptValue(kgo.SeedBrokers).([]string)...),
		kgo.ConsumeTopics("voters_topic"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out []*kgo.Record
	for int64(len(out)) < total {
		fs := c.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d records: %v", len(out), total, err)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

func TestRegisterThroughTheLambdaHandler(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	resp, err := r.invoke(ctx, `{"voters": 1200, "candidates": 4, "seed": 7, "name": "Test election"}`)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Voters != 1200 || resp.Copied != 1200 || resp.Published != 1200 || len(resp.Candidates) != 4 || resp.AlreadyRegistered {
		t.Fatalf("response %+v", resp)
	}
	var voters, cands int
	r.db.QueryRow(ctx, `SELECT (SELECT count(*) FROM voters), (SELECT count(*) FROM candidates)`).Scan(&voters, &cands) //nolint:errcheck
	if voters != 1200 || cands != 4 {
		t.Fatalf("rows: %d voters, %d candidates", voters, cands)
	}
	recs := r.topicRecords(t)
	keys := map[string]bool{}
	for _, rec := range recs {
		v, err := election.DecodeVoter(rec.Value, 0)
		if err != nil {
			t.Fatalf("record is not a voter: %v", err)
		}
		if string(rec.Key) != v.VoterID {
			t.Fatalf("record key %q is not its voter_id %q", rec.Key, v.VoterID)
		}
		keys[v.VoterID] = true
	}
	if len(recs) != 1200 || len(keys) != 1200 {
		t.Fatalf("%d records for %d voters on voters_topic, want 1200", len(recs), len(keys))
	}
	var registered int64
	r.db.QueryRow(ctx, `SELECT sum(registered) FROM registered_by_state`).Scan(&registered) //nolint:errcheck
	if registered != 1200 {
		t.Fatalf("registered_by_state sums to %d", registered)
	}

	// Again, with the same request: nothing is written or published twice.
	again, err := r.invoke(ctx, `{"voters": 1200, "candidates": 4, "seed": 7, "name": "Test election"}`)
	if err != nil {
		t.Fatal(err)
	}
	if !again.AlreadyRegistered || again.Published != 0 || again.Copied != 0 {
		t.Fatalf("second run %+v", again)
	}
	if n := len(r.topicRecords(t)); n != 1200 {
		t.Fatalf("%d records after the second run", n)
	}

	// A different election in the same database is refused with a clear error.
	if _, err := r.invoke(ctx, `{"voters": 10, "seed": 8}`); err == nil || !strings.Contains(err.Error(), "different election") {
		t.Fatalf("different election: %v", err)
	}
}

func TestRegisterResumesAfterAnInterruption(t *testing.T) {
	r := newRig(t)
	ctx, cancel := context.WithCancel(context.Background())
	published := int64(0)
	r.proc.Progress = func(n int64) {
		published = n
		if n >= 1000 {
			cancel() // the function is killed part-way
		}
	}
	if _, err := r.invoke(ctx, `{"voters": 3000}`); err == nil {
		t.Fatal("the interrupted run reported success")
	}
	if published < 1000 || published >= 3000 {
		t.Fatalf("interrupted after %d", published)
	}
	r.proc.Progress = nil
	resp, err := r.invoke(context.Background(), `{"voters": 3000}`)
	if err != nil {
		t.Fatal(err)
	}
	if resp.AlreadyRegistered || resp.Published+published < 3000 {
		t.Fatalf("resume: %+v after %d", resp, published)
	}
	recs := r.topicRecords(t)
	keys := map[string]int{}
	for _, rec := range recs {
		keys[string(rec.Key)]++
	}
	if len(keys) != 3000 {
		t.Fatalf("%d distinct voters on the topic, want 3000", len(keys))
	}
	// At most the chunk in flight is published twice.
	if extra := len(recs) - 3000; extra > r.proc.ChunkSize {
		t.Fatalf("%d voters published twice", extra)
	}
	var voters int
	r.db.QueryRow(context.Background(), `SELECT count(*) FROM voters`).Scan(&voters) //nolint:errcheck
	if voters != 3000 {
		t.Fatalf("%d voters in the database", voters)
	}
}

func TestInvalidRequests(t *testing.T) {
	r := newRig(t)
	tests := []struct{ payload, want string }{
		{`{"voters": 0}`, "voters is 0"},
		{`{"voters": 10, "candidates": 99}`, "candidates is 99"},
		{`{"voters": 10, "candidate_list": [{"candidate_name": ""}]}`, "candidate_name is required"},
		{`{"voters": 10, "rate": -1, "candidates": 0, "candidate_list": [{"candidate_name": "A", "party_affiliation": "P"}, {"candidate_name": "A", "party_affiliation": "P"}]}`, "listed twice"},
		{`{"voters": "many"}`, "voters"},
		{`{"voterz": 10}`, `unknown field "voterz"`},
		{`{"voters": 10, "candidate_list": [{"candidate_name": "A", "party_affiliation": "P", "colour": "red"}]}`, `unknown field "colour"`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := r.invoke(context.Background(), tt.payload)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

func TestExplicitCandidates(t *testing.T) {
	r := newRig(t)
	resp, err := r.invoke(context.Background(), `{"voters": 50, "candidate_list": [
		{"candidate_name": "<script>alert(1)</script>", "party_affiliation": "Chaos", "weight": 2},
		{"candidate_name": "Grace Hopper", "party_affiliation": "Compilers", "photo_url": "https://example.org/g.png"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Candidates) != 2 || resp.Candidates[1].PhotoURL != "https://example.org/g.png" || resp.Candidates[0].CandidateID == "" {
		t.Fatalf("candidates %+v", resp.Candidates)
	}
	var w float64
	r.db.QueryRow(context.Background(), `SELECT ballot_weight FROM candidates WHERE candidate_name = 'Grace Hopper'`).Scan(&w) //nolint:errcheck
	if w != 1 {
		t.Fatalf("default weight %v", w)
	}
}

// Everything on one partition fills the producer's batches: they must stay
// under the broker's message size limit (1 MiB by default, as in Kafka).
func TestRegisterOnOnePartition(t *testing.T) {
	r := newRigPartitions(t, 1)
	r.proc.ChunkSize = 20000
	resp, err := r.invoke(context.Background(), `{"voters": 20000}`)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Published != 20000 {
		t.Fatalf("published %d", resp.Published)
	}
}
