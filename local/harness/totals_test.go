package harness_test

// Published totals are exact: after the pipeline drains, the last record of
// every key on the aggregated topics (what compaction keeps, what a
// consumer reading from the start ends on) equals the recount, with two
// tally consumers on separate clients, faults between the commit and the
// publish, and a replay.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/votingpipe/voting/infra"
	"github.com/votingpipe/voting/local/harness"
	"github.com/votingpipe/voting/local/internal/testkit"
	"github.com/votingpipe/voting/local/natsbridge"
	"github.com/votingpipe/voting/shared/broker/embedded"
	"github.com/votingpipe/voting/shared/stream"
)

// totalRecord is what the contract says a reader keeps of a record.
type totalRecord struct {
	Total    int64  `json:"total_votes"`
	Version  int64  `json:"version"`
	Election string `json:"election"`
	// ByCandidate is a state's votes per candidate (turnout records only).
	ByCandidate map[string]int64 `json:"votes_by_candidate"`
}

// lastTotals folds records (in each partition's offset order) as a reader
// following the record contract does, and checks on the way that a key's
// versions and totals never go backwards.
type lastTotals struct {
	t    *testing.T
	last map[string]totalRecord
}

func (l *lastTotals) add(topic string, key, value []byte) {
	var r totalRecord
	if err := json.Unmarshal(value, &r); err != nil {
		l.t.Fatalf("%s/%s: %v", topic, key, err)
	}
	k := topic + "/" + string(key)
	prev, seen := l.last[k]
	switch {
	case r.Version == 0 || r.Election == "":
		l.t.Fatalf("%s: a record without version or election: %s", k, value)
	case seen && r.Version <= prev.Version:
		l.t.Fatalf("%s: version %d follows version %d", k, r.Version, prev.Version)
	case seen && r.Total < prev.Total:
		l.t.Fatalf("%s: total went back from %d to %d", k, prev.Total, r.Total)
	}
	l.last[k] = r
}

func (l *lastTotals) totals() map[string]int64 {
	out := map[string]int64{}
	for k, r := range l.last {
		out[k] = r.Total
		for c, n := range r.ByCandidate {
			out[k+"#"+c] = n
		}
	}
	return out
}

// recount counts the votes table by candidate, by state and by state and
// candidate, keyed as the aggregated topics are (a state's votes per
// candidate as "topic/state#candidate").
func recount(t *testing.T, env *harness.Env) map[string]int64 {
	t.Helper()
	topics := env.Config.Topics
	out := map[string]int64{}
	for k, n := range keyed(t, env, `SELECT candidate_id, count(*) FROM votes GROUP BY 1`) {
		out[topics.CandidateTotals+"/"+k] = n
	}
	for k, n := range keyed(t, env, `SELECT v.address_state, count(*) FROM votes JOIN voters v USING (voter_id) GROUP BY 1`) {
		out[topics.TurnoutTotals+"/"+k] = n
	}
	for k, n := range keyed(t, env, `SELECT v.address_state || '#' || candidate_id, count(*) FROM votes JOIN voters v USING (voter_id) GROUP BY 1`) {
		out[topics.TurnoutTotals+"/"+k] = n
	}
	return out
}

func checkLastIsRecount(t *testing.T, env *harness.Env, last map[string]int64, when string) {
	t.Helper()
	want := recount(t, env)
	if !maps.Equal(last, want) {
		var diffs []string
		for k, n := range want {
			if last[k] != n {
				diffs = append(diffs, fmt.Sprintf("%s: last record %d, recount %d", k, last[k], n))
			}
		}
		slices.Sort(diffs)
		t.Fatalf("%s: the last records differ from the recount (%d keys recounted, %d on the topics): %v", when, len(want), len(last), diffs)
	}
}

// runTallies runs n tally-only harnesses (each its own environment and
// clients, one consumer group) and the front (register and ballot) until
// the election is counted.
func runTallies(t *testing.T, front *harness.Env, tallies []*harness.Env, voters int64, rate float64, ttl time.Duration) []harness.Summary {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	sums := make([]harness.Summary, len(tallies))
	errs := make(chan error, len(tallies))
	for i, env := range tallies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			sums[i], err = harness.Run(ctx, env, harness.RunOptions{UntilDone: true, Functions: []string{infra.Tally},
				BatchSize: map[string]int{infra.Tally: 200}, Out: io.Discard, LeaseTTL: ttl})
			errs <- err
		}()
	}
	if voters > 0 {
		if _, err := harness.Run(ctx, front, harness.RunOptions{Voters: voters, Candidates: 3, Seed: 42, Rate: rate, UntilDone: true,
			Functions: []string{infra.Register, infra.Ballot}, Out: io.Discard}); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return sums
}

func TestPublishedTotalsEndAtTheRecount(t *testing.T) {
	ext, err := embedded.Start(embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ext.Close)
	vars := map[string]string{"KAFKA_BROKERS": ext.Addrs()[0], "DATABASE_URL": testkit.NewDatabase(t)}
	front := drillEnv(t, 4, vars, harness.EnvOptions{})
	tallies := []*harness.Env{drillEnv(t, 4, vars, harness.EnvOptions{}), drillEnv(t, 4, vars, harness.EnvOptions{})}
	topics := front.Config.Topics

	// Between the commit and the publish: the broker refuses one partition
	// in twenty of the totals' produce requests (a publish touches eight),
	// so batches fail after counting and are redelivered.
	var faulted atomic.Int64
	for _, topic := range []string{topics.CandidateTotals, topics.TurnoutTotals} {
		h := ext.Cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: topic, Err: kerr.TopicAuthorizationFailed, Count: -1,
			When: func(kmsg.Request) bool {
				if rand.IntN(20) == 0 {
					faulted.Add(1)
					return true
				}
				return false
			}})
		t.Cleanup(h.Remove)
	}
	const voters = 6000
	sums := runTallies(t, front, tallies, voters, 4000, 0)
	auditOK(t, front, voters)
	for i, s := range sums {
		if s.Stats[infra.Tally].Records.Load() == 0 {
			t.Errorf("tally %d counted nothing: the two consumers did not share the work", i)
		}
	}
	if faulted.Load() == 0 {
		t.Fatal("no publish was refused: the test checks nothing")
	}
	read := func() map[string]int64 {
		l := &lastTotals{t: t, last: map[string]totalRecord{}}
		for _, topic := range []string{topics.CandidateTotals, topics.TurnoutTotals} {
			eachRecord(t, front, topic, func(r *stream.Record) { l.add(topic, r.Key, r.Value) })
		}
		return l.totals()
	}
	checkLastIsRecount(t, front, read(), "after the election")

	// A replay: the tally group starts over from the beginning of the topic.
	if _, err := kadm.NewClient(front.Deps.Kafka).DeleteGroup(context.Background(), mustGroup(t, infra.Tally)); err != nil {
		t.Fatal(err)
	}
	runTallies(t, front, tallies[:1], 0, 0, 0)
	checkLastIsRecount(t, front, read(), "after a replay")
	t.Logf("%d totals publishes refused; the tallies processed %d and %d records", faulted.Load(),
		sums[0].Stats[infra.Tally].Records.Load(), sums[1].Stats[infra.Tally].Records.Load())
}

// flakyPublisher refuses a fifth of the publishes to the aggregated topics.
type flakyPublisher struct {
	inner   stream.Publisher
	topics  map[string]bool
	refused *atomic.Int64
}

func (f flakyPublisher) Publish(ctx context.Context, recs ...*stream.Record) error {
	if len(recs) > 0 && f.topics[recs[0].Topic] && rand.IntN(5) == 0 {
		f.refused.Add(1)
		return errors.New("injected publish failure after the commit")
	}
	return f.inner.Publish(ctx, recs...)
}

func TestPublishedTotalsEndAtTheRecountOnNATS(t *testing.T) {
	prefix, dsn := natsPrefix(), testkit.NewDatabase(t)
	front, b := natsEnvWith(t, 4, prefix, dsn)
	topics := front.Config.Topics
	var refused atomic.Int64
	var tallies []*harness.Env
	for range 2 {
		env, _ := natsEnvWith(t, 4, prefix, dsn)
		env.Deps.Publisher = flakyPublisher{inner: env.Deps.Publisher, refused: &refused,
			topics: map[string]bool{topics.CandidateTotals: true, topics.TurnoutTotals: true}}
		tallies = append(tallies, env)
	}
	const voters = 5000
	sums := runTallies(t, front, tallies, voters, 3000, 900*time.Millisecond)
	natsAuditOK(t, front)
	for i, s := range sums {
		if s.Stats[infra.Tally].Records.Load() == 0 {
			t.Errorf("tally %d counted nothing: the two consumers did not share the work", i)
		}
	}
	if refused.Load() == 0 {
		t.Fatal("no publish was refused: the test checks nothing")
	}
	ctx := context.Background()
	l := &lastTotals{t: t, last: map[string]totalRecord{}}
	for _, topic := range []string{topics.CandidateTotals, topics.TurnoutTotals} {
		for p := range int32(b.Partitions()) {
			s, err := b.JetStream().Stream(ctx, b.Stream(topic, p))
			if err != nil {
				t.Fatal(err)
			}
			for seq := uint64(1); seq <= s.CachedInfo().State.LastSeq; seq++ {
				m, err := s.GetMsg(ctx, seq)
				if errors.Is(err, jetstream.ErrMsgNotFound) {
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				l.add(topic, []byte(m.Header.Get(natsbridge.HeaderKey)), m.Data)
			}
		}
	}
	checkLastIsRecount(t, front, l.totals(), "after the election")
	t.Logf("%d totals publishes refused; the tallies processed %d and %d records", refused.Load(),
		sums[0].Stats[infra.Tally].Records.Load(), sums[1].Stats[infra.Tally].Records.Load())
}
