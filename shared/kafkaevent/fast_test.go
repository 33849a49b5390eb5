package kafkaevent_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/votingpipe/voting/shared/kafkaevent"
)

// decodeBoth decodes payload both ways and fails when the fast path claims a
// result that encoding/json does not give.
func decodeBoth(t *testing.T, payload []byte) (fastOK bool) {
	t.Helper()
	got, ok := kafkaevent.DecodeEvent(payload)
	if !ok {
		return false
	}
	var want events.KafkaEvent
	if err := json.Unmarshal(payload, &want); err != nil {
		t.Fatalf("fast path accepted what encoding/json rejects (%v): %q", err, payload)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("fast path decoded differently:\n got %#v\nwant %#v\nfrom %q", got, want, payload)
	}
	return true
}

func TestDecodeEventEqualsEncodingJSON(t *testing.T) {
	good, _ := json.Marshal(kafkaevent.Event(kafkaevent.Meta{Source: kafkaevent.SourceMSK, ARN: "arn", BootstrapServers: "b:1"}, records()))
	cases := map[string]string{
		"built by the harness": string(good),
		"null":                 `null`,
		"empty":                `{}`,
		"null records":         `{"records":null,"eventSource":"x"}`,
		"null fields":          `{"records":{"t-0":[{"topic":null,"partition":null,"offset":null,"timestamp":null,"key":null,"value":null,"headers":null}]}}`,
	}
	samples, _ := filepath.Glob("../../events/*.json")
	for _, f := range samples {
		if filepath.Base(f) == "cast.json" {
			continue // an API Gateway HTTP request, not a Kafka event
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		cases[filepath.Base(f)] = string(b)
	}
	for name, payload := range cases {
		if !decodeBoth(t, []byte(payload)) && name != "register.json" {
			t.Errorf("%s: the fast path fell back on a plain event", name)
		}
	}
	// What it must leave to encoding/json.
	for _, payload := range []string{
		`{"Records":{}}`, `{"records":{},"records":{}}`, `{"records":{"t-0":[{"partition":1.0}]}}`,
		`{"records":{"t-0":[{"headers":[{"h":[300]}]}]}}`, `{"records":{"t-0":[{"headers":[{"h":null}]}]}}`,
		`{"eventSource":"\ud800"}`, `{"records":{"t-0":[{"extra":1}]}}`, `[1]`, `{"records":"x"}`, `{`,
	} {
		if decodeBoth(t, []byte(payload)) {
			t.Errorf("fast path took %q", payload)
		}
	}
}

func TestFastHandlerAnswersAsLambdaNewHandler(t *testing.T) {
	fn := func(_ context.Context, ev events.KafkaEvent) (kafkaevent.Response, error) {
		if ev.EventSource == "fail" {
			return kafkaevent.Response{}, errors.New("failed <on purpose>")
		}
		n := 0
		for _, rs := range ev.Records {
			n += len(rs)
		}
		return kafkaevent.Response{Summary: map[string]int{"records <&>": n}}, nil
	}
	good, _ := json.Marshal(kafkaevent.Event(kafkaevent.Meta{}, records()))
	for _, payload := range [][]byte{good, []byte(`{"eventSource":"fail"}`), []byte(`{"records":"x"}`), []byte(`not json`)} {
		want, wantErr := lambda.NewHandler(fn).Invoke(context.Background(), payload)
		got, gotErr := kafkaevent.Fast(fn).Invoke(context.Background(), payload)
		if string(got) != string(want) || (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
			t.Errorf("%q: Fast gave %s, %v; lambda.NewHandler gave %s, %v", payload, got, gotErr, want, wantErr)
		}
	}
}

func FuzzDecodeEvent(f *testing.F) {
	good, _ := json.Marshal(kafkaevent.Event(kafkaevent.Meta{}, records()))
	f.Add(good)
	f.Add([]byte(`{"records":{"t-0":[{"partition":1,"offset":-0,"timestamp":9223372036854775807,"headers":[{"a":[-128,127]}]}]}}`))
	f.Add([]byte(`{"eventSource":"\u00e9\n","records":{"t\u002d0":[]}}`))
	f.Add([]byte(" {\"records\" : { \"t-0\" : [ { \"key\" : null , \"headers\" : [ { } , {\"h\":[ ]} ] } ] , \"u-1\":null } }\n"))
	f.Add([]byte(`{"records":{"t-0":[{"headers":[{"h":[1,null]}]}]},"eventSourceArn":"a","bootstrapServers":"b"}`))
	f.Add([]byte(`{"records":{"t-0":[{"offset":01}]}}`))
	f.Add([]byte(`{"records":{"t-0":[{"offset":1e3}]}} x`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		decodeBoth(t, payload)
	})
}

func BenchmarkDecodeEvent(b *testing.B) {
	payload, _ := json.Marshal(kafkaevent.Event(kafkaevent.Meta{}, benchRecords()))
	b.SetBytes(int64(len(payload)))
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			var ev events.KafkaEvent
			json.Unmarshal(payload, &ev) //nolint:errcheck
		}
	})
	b.Run("one pass", func(b *testing.B) {
		for b.Loop() {
			kafkaevent.DecodeEvent(payload)
		}
	})
}
