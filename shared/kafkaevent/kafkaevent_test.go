package kafkaevent_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/votingpipe/voting/shared/stream"

	"github.com/votingpipe/voting/shared/kafkaevent"
)

func records() []*stream.Record {
	ts := time.UnixMilli(1764000000123)
	return []*stream.Record{
		{Topic: "votes_topic", Partition: 1, Offset: 7, Timestamp: ts, Key: []byte("v1"), Value: []byte(`{"a":1}`),
			Headers: []stream.Header{{Key: "h", Value: []byte{0, 200, 255}}}},
		{Topic: "votes_topic", Partition: 0, Offset: 3, Timestamp: ts, Value: []byte(`{"b":2}`)},
		{Topic: "votes_topic", Partition: 1, Offset: 8, Timestamp: ts, Key: []byte("v2"), Value: []byte(`{"c":3}`)},
	}
}

func TestEventMatchesLambdaShape(t *testing.T) {
	ev := kafkaevent.Event(kafkaevent.Meta{Source: kafkaevent.SourceMSK, ARN: "arn:aws:kafka:x", BootstrapServers: "b:9092"}, records())
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	json.Unmarshal(b, &raw) //nolint:errcheck
	if raw["eventSource"] != "aws:kafka" || raw["eventSourceArn"] != "arn:aws:kafka:x" {
		t.Errorf("source fields: %s", b)
	}
	recs := raw["records"].(map[string]any)
	p1 := recs["votes_topic-1"].([]any)
	if len(p1) != 2 || len(recs["votes_topic-0"].([]any)) != 1 {
		t.Fatalf("records not grouped by topic-partition: %s", b)
	}
	r := p1[0].(map[string]any)
	if r["value"] != "eyJhIjoxfQ==" || r["key"] != "djE=" || r["timestamp"] != float64(1764000000123) || r["timestampType"] != "CREATE_TIME" {
		t.Errorf("record fields: %v", r)
	}
	// Headers are lists of signed bytes, as Lambda sends them.
	if !strings.Contains(string(b), `"headers":[{"h":[0,-56,-1]}]`) {
		t.Errorf("headers not as Lambda sends them: %s", b)
	}
}

func TestRecordsRoundTrip(t *testing.T) {
	b, _ := json.Marshal(kafkaevent.Event(kafkaevent.Meta{}, records()))
	var ev events.KafkaEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	got := kafkaevent.Records(ev)
	if len(got) != 3 || got[0].Partition != 0 || got[1].Offset != 7 || got[2].Offset != 8 {
		t.Fatalf("not sorted by partition and offset: %+v", got)
	}
	if string(got[1].Value) != `{"a":1}` || string(got[1].Key) != "v1" || got[1].Headers[0].Value[1] != 200 ||
		got[1].Timestamp.UnixMilli() != 1764000000123 {
		t.Fatalf("record changed in the round trip: %+v", got[1])
	}
	if parts := kafkaevent.Partitions(got); len(parts) != 2 || len(parts[1]) != 2 {
		t.Fatalf("partitions: %v", parts)
	}
}

func TestRawValuesAreKept(t *testing.T) {
	ev := events.KafkaEvent{Records: map[string][]events.KafkaRecord{
		"t-0": {{Partition: 0, Offset: 1, Value: `{"plain":"json"}`}},
	}}
	got := kafkaevent.Records(ev)
	if got[0].Topic != "t" || string(got[0].Value) != `{"plain":"json"}` {
		t.Fatalf("got %+v", got[0])
	}
}

func TestHandlerReportsFailedPartitions(t *testing.T) {
	proc := kafkaevent.ProcessorFunc(func(_ context.Context, recs []*stream.Record) (map[string]int, error) {
		if recs[0].Partition == 1 {
			return nil, errors.New("database unavailable")
		}
		return map[string]int{"counted": len(recs)}, nil
	})
	h := lambda.NewHandler(kafkaevent.Handler(proc, nil))
	payload, _ := json.Marshal(kafkaevent.Event(kafkaevent.Meta{}, records()))
	out, err := h.Invoke(context.Background(), payload)
	if err != nil {
		t.Fatal(err)
	}
	var resp kafkaevent.Response
	json.Unmarshal(out, &resp) //nolint:errcheck
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != (kafkaevent.ItemIdentifier{Partition: "votes_topic-1", Offset: 7}) {
		t.Fatalf("failures: %s", out)
	}
	if resp.Summary["counted"] != 1 || resp.Summary["records"] != 1 {
		t.Fatalf("summary: %s", out)
	}

	// When every partition fails, the invocation fails.
	failAll := kafkaevent.ProcessorFunc(func(context.Context, []*stream.Record) (map[string]int, error) {
		return nil, errors.New("down")
	})
	if _, err := lambda.NewHandler(kafkaevent.Handler(failAll, nil)).Invoke(context.Background(), payload); err == nil {
		t.Fatal("want an error when every partition fails")
	}
}

func TestParseItemPartition(t *testing.T) {
	topic, p, err := kafkaevent.ParseItemPartition("aggregated_votes_per-candidate-12")
	if err != nil || topic != "aggregated_votes_per-candidate" || p != 12 {
		t.Fatalf("got %q %d %v", topic, p, err)
	}
	for _, bad := range []string{"", "nodash", "t-x"} {
		if _, _, err := kafkaevent.ParseItemPartition(bad); err == nil {
			t.Errorf("%q: want error", bad)
		}
	}
}

func FuzzHandler(f *testing.F) {
	good, _ := json.Marshal(kafkaevent.Event(kafkaevent.Meta{}, records()))
	f.Add(good)
	f.Add([]byte(`{"records":{"t-0":[{"partition":0,"offset":1,"value":"!!!","headers":[{"k":[1,2]}]}]}}`))
	f.Add([]byte(`{"records":null}`))
	f.Add([]byte(`[]`))
	h := lambda.NewHandler(kafkaevent.Handler(kafkaevent.ProcessorFunc(func(_ context.Context, recs []*stream.Record) (map[string]int, error) {
		return map[string]int{"n": len(recs)}, nil
	}), nil))
	f.Fuzz(func(t *testing.T, payload []byte) {
		out, err := h.Invoke(context.Background(), payload)
		if err == nil && !json.Valid(out) {
			t.Fatalf("invalid response %q", out)
		}
	})
}

func TestAppendJSONIsJSONMarshal(t *testing.T) {
	recs := records()
	recs = append(recs,
		&stream.Record{Topic: "t\"x<y>", Partition: 10, Offset: 1, Timestamp: time.UnixMilli(5), Key: []byte{}, Value: nil,
			Headers: []stream.Header{{Key: "reason</script>", Value: []byte("malformed")}, {Key: "é", Value: nil}}},
		&stream.Record{Topic: "votes_topic", Partition: 2, Offset: 9, Timestamp: time.UnixMilli(6), Value: []byte{0xff, 0}},
	)
	for _, meta := range []kafkaevent.Meta{{}, {Source: kafkaevent.SourceMSK, ARN: "arn:aws:kafka:x", BootstrapServers: "a:1,b:2"}} {
		want, err := json.Marshal(kafkaevent.Event(meta, recs))
		if err != nil {
			t.Fatal(err)
		}
		if got := kafkaevent.AppendJSON(nil, meta, recs); string(got) != string(want) {
			t.Fatalf("AppendJSON differs from json.Marshal:\n got %s\nwant %s", got, want)
		}
	}
}

func benchRecords() []*stream.Record {
	var recs []*stream.Record
	for i := range 2000 {
		recs = append(recs, &stream.Record{Topic: "votes_topic", Partition: 3, Offset: int64(i), Timestamp: time.Now(),
			Key: []byte("ec86b6fd-125c-498f-b476-94c1a66b763d"), Value: []byte(strings.Repeat(`{"a":"b"}`, 140))})
	}
	return recs
}

func BenchmarkEventJSON(b *testing.B) {
	recs := benchRecords()
	b.Run("json.Marshal", func(b *testing.B) {
		for b.Loop() {
			json.Marshal(kafkaevent.Event(kafkaevent.Meta{}, recs)) //nolint:errcheck
		}
	})
	b.Run("AppendJSON", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			buf = kafkaevent.AppendJSON(buf[:0], kafkaevent.Meta{}, recs)
		}
	})
}
