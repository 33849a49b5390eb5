package events_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/votingpipe/voting/infra"
	"github.com/votingpipe/voting/local/harness"
	"github.com/votingpipe/voting/shared/broker"
	"github.com/votingpipe/voting/shared/config"
	"github.com/votingpipe/voting/shared/deadletter"
	"github.com/votingpipe/voting/shared/kafkaevent"
	"github.com/votingpipe/voting/shared/store/storetest"
	"github.com/votingpipe/voting/shared/stream"
	"github.com/votingpipe/voting/shared/tokens"
)

// world is a fresh database and an embedded broker with the pipeline's
// topics, and the functions' handlers as the harness builds them (as their
// mains do).
type world struct {
	cfg   config.Config
	env   *harness.Env
	kafka *kgo.Client
	addrs []string
	db    *pgx.Conn
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	dsn := storetest.NewDatabase(t)
	cfg, err := config.LoadFrom[config.Config](map[string]string{
		"DATABASE_URL":  dsn,
		"DASHBOARD_DIR": t.TempDir(),
		"LOG_LEVEL":     "warn",
	}, config.Local)
	if err != nil {
		t.Fatal(err)
	}
	env, err := harness.Open(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), harness.EnvOptions{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Close)
	db, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(context.Background()) })
	addrs := env.Config.Kafka.Brokers
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &world{cfg: env.Config, env: env, kafka: cl, addrs: addrs, db: db}
}

// invoke runs function with the sample event through the path the Lambda
// runtime uses, and returns the JSON response.
func (w *world) invoke(t *testing.T, function, event string) []byte {
	t.Helper()
	h, err := w.env.Handler(function)
	if err != nil {
		t.Fatalf("%s: %v", function, err)
	}
	payload, err := os.ReadFile(event)
	if err != nil {
		t.Fatal(err)
	}
	out, err := h.Invoke(context.Background(), payload)
	if err != nil {
		t.Fatalf("%s -e %s: %v", function, event, err)
	}
	return out
}

// count returns the single integer a query yields.
func (w *world) count(t *testing.T, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := w.db.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// topic returns every record on topic, in partition and offset order.
func (w *world) topic(t *testing.T, topic string) []*kgo.Record {
	t.Helper()
	return readTopic(t, w.kafka, w.addrs, topic)
}

func readTopic(t *testing.T, cl *kgo.Client, seeds []string, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{}
	total := int64(0)
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
			total += o.Offset
		}
	})
	if total == 0 {
		return nil
	}
	offsets := map[string]map[int32]kgo.Offset{topic: {}}
	for p := range want {
		offsets[topic][p] = kgo.NewOffset().AtStart()
	}
	c, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumePartitions(offsets))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var recs []*kgo.Record
	for int64(len(recs)) < total {
		fs := c.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %s: got %d of %d records", topic, len(recs), total)
		}
		recs = append(recs, fs.Records()...)
	}
	sortRecords(recs)
	return recs
}

func sortRecords(recs []*kgo.Record) {
	slices.SortFunc(recs, func(a, b *kgo.Record) int {
		if a.Partition != b.Partition {
			return int(a.Partition - b.Partition)
		}
		return int(a.Offset - b.Offset)
	})
}

// golden compares got with testdata/name (rewritten with -update).
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	var v any
	if err := json.Unmarshal(got, &v); err != nil {
		t.Fatalf("%s: response is not JSON: %s", name, got)
	}
	pretty := mustJSON(v)
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, pretty, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (create it with -update)", err)
	}
	if !bytes.Equal(pretty, want) {
		t.Errorf("%s differs from %s:\n%s", name, path, pretty)
	}
}

// normalizeRegister zeroes what changes between runs of register.
func normalizeRegister(t *testing.T, out []byte) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	if s, ok := m["seconds"].(float64); !ok || s < 0 {
		t.Errorf("register response has seconds %v", m["seconds"])
	}
	m["seconds"] = 0
	if tok, _ := m["tokens"].(string); !strings.HasSuffix(tok, "tokens.csv") {
		t.Errorf("register response says the tokens are at %q", m["tokens"])
	}
	m["tokens"] = "<state-dir>/tokens.csv"
	b, _ := json.Marshal(m)
	return b
}

// eventRecords decodes a sample event's records.
func eventRecords(t *testing.T, path string) []*stream.Record {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ev events.KafkaEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	return kafkaevent.Records(ev)
}

// withoutUpdatedAt drops what differs from one read of the totals to the
// next: the time they were read at, their version and the election's ID
// (a registration makes a new one), after checking they are there.
func withoutUpdatedAt(t *testing.T, b []byte) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	for _, k := range []string{"updated_at", "version", "election"} {
		if m[k] == nil || m[k] == "" || m[k] == 0.0 {
			t.Errorf("a total without %s: %s", k, b)
		}
		delete(m, k)
	}
	out, _ := json.Marshal(m)
	return string(out)
}

// TestHandlersWithSampleEvents invokes every function with its sample event,
// in pipeline order, against real Postgres and an embedded broker, and
// checks the responses (golden files in testdata/), the rows and the records
// each one leaves.
func TestHandlersWithSampleEvents(t *testing.T) {
	if *update {
		writeSamples(t) // the golden responses are those of the current events
	}
	w := newWorld(t)
	topics := w.cfg.Topics

	t.Run("register", func(t *testing.T) {
		golden(t, "register.response.json", normalizeRegister(t, w.invoke(t, infra.Register, "register.json")))
		if n := w.count(t, "SELECT count(*) FROM voters"); n != sampleVoters {
			t.Errorf("%d voters registered, want %d", n, sampleVoters)
		}
		if n := w.count(t, "SELECT count(*) FROM candidates"); n != 3 {
			t.Errorf("%d candidates, want 3", n)
		}
		if recs := w.topic(t, topics.Voters); len(recs) != sampleVoters {
			t.Errorf("%d records on %s, want %d", len(recs), topics.Voters, sampleVoters)
		}
		// Registering again changes nothing.
		again := normalizeRegister(t, w.invoke(t, infra.Register, "register.json"))
		if !strings.Contains(string(again), `"already_registered":true`) {
			t.Errorf("second register: %s", again)
		}
	})

	t.Run("ballot", func(t *testing.T) {
		golden(t, "ballot.response.json", w.invoke(t, infra.Ballot, "ballot.json"))
		votes := w.topic(t, topics.Votes)
		// The votes cast are, byte for byte, the first records of tally.json.
		var want [][]byte
		for _, r := range eventRecords(t, "tally.json") {
			if r.Partition == 0 {
				want = append(want, r.Value)
			}
		}
		if len(votes) != len(want) {
			t.Fatalf("%d votes on %s, want %d", len(votes), topics.Votes, len(want))
		}
		got := map[string]bool{}
		for _, v := range votes {
			got[string(v.Value)] = true
		}
		for i, v := range want {
			if !got[string(v)] {
				t.Errorf("tally.json's vote %d is not what ballot casts for ballot.json; regenerate with -update", i)
			}
		}
	})

	t.Run("tally", func(t *testing.T) {
		golden(t, "tally.response.json", w.invoke(t, infra.Tally, "tally.json"))
		if n := w.count(t, "SELECT count(*) FROM votes"); n != int64(len(countedVoters)) {
			t.Errorf("%d votes counted, want %d", n, len(countedVoters))
		}
		if n := w.count(t, "SELECT coalesce(sum(total_votes), 0) FROM candidate_results"); n != int64(len(countedVoters)) {
			t.Errorf("candidate_results sum to %d, want %d", n, len(countedVoters))
		}
		var reason string
		var part int32
		var off int64
		if err := w.db.QueryRow(context.Background(),
			`SELECT reason, partition, "offset" FROM rejected_votes WHERE topic = $1`, topics.Votes).Scan(&reason, &part, &off); err != nil {
			t.Fatalf("rejected_votes: %v", err)
		}
		if reason != "malformed" || part != 1 || off != 1 {
			t.Errorf("rejected %s/%d@%d, want malformed/1@1", reason, part, off)
		}
		dlq := w.topic(t, topics.VotesDLQ)
		if len(dlq) != 1 {
			t.Fatalf("%d dead letters on %s, want 1", len(dlq), topics.VotesDLQ)
		}
		d := dlq[0]
		for h, want := range map[string]string{
			deadletter.HeaderReason: "malformed", deadletter.HeaderSourceTopic: topics.Votes,
			deadletter.HeaderSourcePartition: "1", deadletter.HeaderSourceOffset: "1", deadletter.HeaderStage: "tally",
		} {
			if got := broker.FromKgo(d).Header(h); got != want {
				t.Errorf("dead letter header %s = %q, want %q", h, got, want)
			}
		}
		if broker.FromKgo(d).Header(deadletter.HeaderDetail) == "" || broker.FromKgo(d).Header(deadletter.HeaderFailedAt) == "" {
			t.Error("dead letter has no detail or failed_at header")
		}
		// The totals published are the records of dashboard.json.
		want := map[string]string{}
		for _, r := range eventRecords(t, "dashboard.json") {
			want[r.Topic+"/"+string(r.Key)] = withoutUpdatedAt(t, r.Value)
		}
		got := map[string]string{}
		for _, topic := range []string{topics.CandidateTotals, topics.TurnoutTotals} {
			for _, r := range w.topic(t, topic) {
				got[r.Topic+"/"+string(r.Key)] = withoutUpdatedAt(t, r.Value)
			}
		}
		if len(got) != len(want) {
			t.Errorf("tally published %d totals, dashboard.json has %d", len(got), len(want))
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("total %s: published %s, dashboard.json has %s", k, got[k], v)
			}
		}

		// A redelivery of the same batch changes nothing.
		golden(t, "tally.redelivered.response.json", w.invoke(t, infra.Tally, "tally.json"))
		if n := w.count(t, "SELECT coalesce(sum(total_votes), 0) FROM candidate_results"); n != int64(len(countedVoters)) {
			t.Errorf("after redelivery candidate_results sum to %d, want %d", n, len(countedVoters))
		}
		if n := w.count(t, "SELECT count(*) FROM rejected_votes"); n != 1 {
			t.Errorf("after redelivery %d rejected votes, want 1", n)
		}
	})

	t.Run("dashboard", func(t *testing.T) {
		golden(t, "dashboard.response.json", w.invoke(t, infra.Dashboard, "dashboard.json"))
		page, err := os.ReadFile(filepath.Join(w.cfg.Dashboard.Dir, "index.html"))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range sheet().Candidates {
			if !bytes.Contains(page, []byte(c.CandidateName)) {
				t.Errorf("index.html does not name candidate %s", c.CandidateName)
			}
		}
	})

	// Last: a cast ballot is one more vote on votes_topic.
	t.Run("cast", func(t *testing.T) {
		// The sample's token is a placeholder: no voter has it.
		golden(t, "cast.response.json", w.invoke(t, infra.Cast, "cast.json"))
		issued, err := tokens.ReadFile(w.env.TokensFile())
		if err != nil || len(issued) != sampleVoters {
			t.Fatalf("%d tokens in %s (%v), want %d", len(issued), w.env.TokensFile(), err, sampleVoters)
		}
		ev, _ := os.ReadFile("cast.json")
		real := strings.Replace(string(ev), "REPLACEWITHATOKENFROMTHECS", issued[9].Token, 1)
		h, _ := w.env.Handler(infra.Cast)
		for i, want := range []int{202, 409} {
			out, err := h.Invoke(context.Background(), []byte(real))
			var resp events.APIGatewayV2HTTPResponse
			if err != nil || json.Unmarshal(out, &resp) != nil || resp.StatusCode != want {
				t.Fatalf("cast %d with voter 9's token: %v %s, want %d", i+1, err, out, want)
			}
		}
	})
}
