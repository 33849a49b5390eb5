package natsbridge_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/votingpipe/voting/local/natsbridge"
	"github.com/votingpipe/voting/shared/deadletter"
	"github.com/votingpipe/voting/shared/register"
	"github.com/votingpipe/voting/shared/stream"
)

var (
	_ stream.Publisher   = (*natsbridge.Bridge)(nil)
	_ stream.Producer    = (*natsbridge.Bridge)(nil)
	_ register.Positions = (*natsbridge.Bridge)(nil)
)

var seq atomic.Int64

// connect opens a bridge with streams of its own on the real nats-server
// (NATS_URL, default nats://127.0.0.1:4222), deleted when the test ends.
func connect(t *testing.T, partitions int, topics ...string) *natsbridge.Bridge {
	t.Helper()
	url := os.Getenv("NATS_URL")
	if url == "" {
		url = "nats://127.0.0.1:4222"
	}
	ctx := context.Background()
	b, err := natsbridge.Connect(ctx, natsbridge.Options{
		URL: url, Prefix: fmt.Sprintf("nb%d_%d_", os.Getpid()%100000, seq.Add(1)), Partitions: partitions, MaxAge: time.Hour,
	})
	if err != nil {
		t.Fatalf("these tests need nats-server with JetStream at %s: %v", url, err)
	}
	if err := b.EnsureStreams(ctx, topics...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.DeleteStreams(context.Background(), topics...); err != nil {
			t.Error(err)
		}
		b.Close()
	})
	return b
}

// fetch reads n messages of a partition with a fresh consumer.
func fetch(t *testing.T, b *natsbridge.Bridge, topic string, p int32, group string, n int) []*stream.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := b.OpenConsumer(ctx, topic, p, group, natsbridge.ConsumerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var out []*stream.Record
	for m := range batch.Messages() {
		r, err := natsbridge.Record(m, topic, p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if len(out) != n {
		t.Fatalf("fetched %d of %d records from %s/%d (%v)", len(out), n, topic, p, batch.Error())
	}
	return out
}

func TestRecordsRoundTrip(t *testing.T) {
	b := connect(t, 1, "roundtrip")
	recs := []*stream.Record{
		{Topic: "roundtrip", Key: []byte("voter-1"), Value: []byte(`{"vote":1}`), Headers: []stream.Header{
			{Key: "reason", Value: []byte("malformed")}, {Key: "detail", Value: []byte("line one\nline two")},
			{Key: "detail", Value: []byte("plain second value")}, {Key: "stage", Value: []byte(" padded ")},
			{Key: "Nats-Msg-Id", Value: []byte("a user header NATS reserves")}, {Key: "empty", Value: []byte{}},
		}},
		{Topic: "roundtrip", Key: []byte{0, 1, 2, 0xff}, Value: []byte{0xde, 0xad}},
		{Topic: "roundtrip", Key: nil, Value: nil},
		{Topic: "roundtrip", Key: []byte{}, Value: []byte("empty key")},
	}
	if err := b.Publish(context.Background(), recs...); err != nil {
		t.Fatal(err)
	}
	for i, r := range recs {
		if r.Partition != 0 || r.Offset != int64(i) {
			t.Fatalf("record %d stored at %d/%d; want 0/%d", i, r.Partition, r.Offset, i)
		}
	}
	got := fetch(t, b, "roundtrip", 0, "reader", len(recs))
	for i, want := range recs {
		g := got[i]
		if g.Offset != int64(i) || g.Topic != "roundtrip" || g.Timestamp.IsZero() {
			t.Fatalf("record %d: offset %d, topic %s, timestamp %v", i, g.Offset, g.Topic, g.Timestamp)
		}
		if !bytes.Equal(g.Key, want.Key) || (g.Key == nil) != (want.Key == nil) || !bytes.Equal(g.Value, want.Value) {
			t.Fatalf("record %d: key %q value %q; want %q %q", i, g.Key, g.Value, want.Key, want.Value)
		}
		// Headers come back grouped by name; each name's values in order.
		byName := func(hs []stream.Header) map[string][]string {
			m := map[string][]string{}
			for _, h := range hs {
				m[h.Key] = append(m[h.Key], string(h.Value))
			}
			return m
		}
		if w, gh := byName(want.Headers), byName(g.Headers); fmt.Sprint(w) != fmt.Sprint(gh) {
			t.Fatalf("record %d headers %v; want %v", i, gh, w)
		}
	}
}

func TestPublishDeduplicatesAndPartitionsLikeKafka(t *testing.T) {
	const parts = 6
	b := connect(t, parts, "votes", "dlq")
	ctx := context.Background()
	var recs []*stream.Record
	for i := range 200 {
		recs = append(recs, &stream.Record{Topic: "votes", Key: []byte(fmt.Sprintf("voter-%d", i)), Value: []byte(fmt.Sprintf(`{"n":%d}`, i))})
	}
	if err := b.Publish(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	hash := kgo.StickyKeyPartitioner(nil).ForTopic("votes") // Kafka's own partitioner
	for _, r := range recs {
		if want := int32(hash.Partition(&kgo.Record{Key: r.Key}, parts)); r.Partition != want {
			t.Fatalf("%s went to partition %d; Kafka's partitioner says %d", r.Key, r.Partition, want)
		}
	}
	// The same records again (a retried batch): nothing new is stored.
	again := make([]*stream.Record, len(recs))
	for i, r := range recs {
		again[i] = &stream.Record{Topic: r.Topic, Key: r.Key, Value: r.Value}
	}
	if err := b.Publish(ctx, again...); err != nil {
		t.Fatal(err)
	}
	ends, err := b.Ends(ctx, "votes")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, e := range ends {
		total += e
	}
	if total != 200 {
		t.Fatalf("streams hold %d records after publishing 200 twice", total)
	}
	for i := range again {
		if again[i].Partition != recs[i].Partition || again[i].Offset != recs[i].Offset {
			t.Fatalf("duplicate of %s reported at %d/%d, original at %d/%d", recs[i].Key,
				again[i].Partition, again[i].Offset, recs[i].Partition, recs[i].Offset)
		}
	}
	// A different value under the same key is another message.
	changed := &stream.Record{Topic: "votes", Key: recs[0].Key, Value: []byte(`{"n":"other"}`)}
	if err := b.Publish(ctx, changed); err != nil {
		t.Fatal(err)
	}
	if changed.Offset != ends[changed.Partition] {
		t.Fatalf("changed record stored at offset %d; want the next one, %d", changed.Offset, ends[changed.Partition])
	}
	// Dead letters are identified by where they come from, not by content
	// (their failed_at header differs on every attempt).
	src := &stream.Record{Topic: "votes", Partition: 4, Offset: 17, Value: []byte("garbage")}
	d1 := deadletter.Record("dlq", src, "tally", "malformed", "x", time.Now())
	d2 := deadletter.Record("dlq", src, "tally", "malformed", "x", time.Now().Add(time.Minute))
	other := deadletter.Record("dlq", &stream.Record{Topic: "votes", Partition: 4, Offset: 18, Value: []byte("garbage")}, "tally", "malformed", "x", time.Now())
	if err := b.Publish(ctx, d1, d2, other); err != nil {
		t.Fatal(err)
	}
	dends, _ := b.Ends(ctx, "dlq")
	var dead int64
	for _, e := range dends {
		dead += e
	}
	if dead != 2 || natsbridge.MsgID(d1) != "dead:tally:votes:4:17" {
		t.Fatalf("%d dead letters stored (want 2), id %q", dead, natsbridge.MsgID(d1))
	}
}

func TestProduceAndFlush(t *testing.T) {
	b := connect(t, 3, "voters")
	ctx := context.Background()
	var acked, failed atomic.Int64
	for i := range 5000 {
		b.Produce(ctx, &stream.Record{Topic: "voters", Key: []byte(fmt.Sprint(i)), Value: []byte("v")}, func(r *stream.Record, err error) {
			if err != nil {
				failed.Add(1)
				return
			}
			acked.Add(1)
		})
	}
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if acked.Load() != 5000 || failed.Load() != 0 {
		t.Fatalf("acked %d, failed %d after Flush", acked.Load(), failed.Load())
	}
	// A topic with no streams fails the promise rather than hanging.
	errc := make(chan error, 1)
	b.Produce(ctx, &stream.Record{Topic: "nowhere", Value: []byte("x")}, func(_ *stream.Record, err error) { errc <- err })
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := b.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err == nil {
		t.Fatal("producing to a topic without streams succeeded")
	}
}

func TestEnsureStreamsIsIdempotentAndAppliesLimits(t *testing.T) {
	b := connect(t, 2, "limits")
	ctx := context.Background()
	if err := b.EnsureStreams(ctx, "limits"); err != nil {
		t.Fatalf("second EnsureStreams: %v", err)
	}
	s, err := b.JetStream().Stream(ctx, b.Stream("limits", 1))
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	if cfg.MaxAge != time.Hour || cfg.Subjects[0] != b.Subject("limits", 1) || cfg.Duplicates != natsbridge.DefaultDuplicateWindow {
		t.Fatalf("stream config %+v", cfg)
	}
}

func TestOpenConsumerRewindsToAckFloor(t *testing.T) {
	b := connect(t, 1, "work")
	ctx := context.Background()
	var recs []*stream.Record
	for i := range 10 {
		recs = append(recs, &stream.Record{Topic: "work", Key: []byte("k"), Value: []byte(fmt.Sprint(i))})
	}
	if err := b.Publish(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	c, next, err := b.OpenConsumer(ctx, "work", 0, "g", natsbridge.ConsumerOptions{})
	if err != nil || next != 1 {
		t.Fatalf("new consumer starts at %d, %v", next, err)
	}
	batch, err := c.Fetch(6, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	if len(msgs) != 6 {
		t.Fatalf("fetched %d", len(msgs))
	}
	// Processed 0-3 (ack of offset 3 covers 0-3); 4 and 5 were delivered
	// and never acknowledged: their worker died.
	if err := msgs[3].DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	lag, ok, err := b.Lag(ctx, "work", 0, "g")
	if err != nil || !ok || lag != 6 {
		t.Fatalf("lag %d (%v, %v); want 6: 2 unacknowledged + 4 undelivered", lag, ok, err)
	}
	c, next, err = b.OpenConsumer(ctx, "work", 0, "g", natsbridge.ConsumerOptions{})
	if err != nil || next != 5 {
		t.Fatalf("reopened consumer starts at %d, %v; want 5 (offset 4)", next, err)
	}
	batch, err = c.Fetch(6, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var offsets []int64
	for m := range batch.Messages() {
		r, _ := natsbridge.Record(m, "work", 0)
		offsets = append(offsets, r.Offset)
	}
	if !slices.Equal(offsets, []int64{4, 5, 6, 7, 8, 9}) {
		t.Fatalf("after the rewind got offsets %v; want 4-9 in order", offsets)
	}
	if _, ok, _ := b.Lag(ctx, "work", 0, "absent"); ok {
		t.Fatal("a group without a consumer has a lag")
	}
}
