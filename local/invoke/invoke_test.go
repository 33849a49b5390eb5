package invoke_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/votingpipe/voting/shared/stream"

	"github.com/votingpipe/voting/infra"
	"github.com/votingpipe/voting/local/invoke"
	"github.com/votingpipe/voting/shared/kafkaevent"
)

func TestAPIInvokerAnswers(t *testing.T) {
	var answer func(w http.ResponseWriter)
	var gotPath, gotType string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath, gotType = r.URL.Path, r.Header.Get("X-Amz-Invocation-Type")
		answer(w)
	}))
	defer srv.Close()
	u, err := invoke.InvocationURL(srv.URL, "voting-tally")
	if err != nil {
		t.Fatal(err)
	}
	inv := &invoke.APIInvoker{Function: "tally", URL: u}

	for _, c := range []struct {
		name    string
		answer  func(w http.ResponseWriter)
		wantErr string // "" for success
	}{
		{"a response is returned as is", func(w http.ResponseWriter) {
			io.WriteString(w, `{"batchItemFailures":[],"summary":{"counted":2}}`)
		}, ""},
		{"X-Amz-Function-Error is a failure", func(w http.ResponseWriter) {
			w.Header().Set("X-Amz-Function-Error", "Unhandled")
			io.WriteString(w, `{"errorMessage":"boom","errorType":"errorString"}`)
		}, "function error errorString: boom"},
		{"an errorType body is a failure even with HTTP 200 (the emulator's answer)", func(w http.ResponseWriter) {
			io.WriteString(w, `{"errorMessage":"database is down","errorType":"wrapError"}`)
		}, "function error wrapError: database is down"},
		{"a header without a body still fails", func(w http.ResponseWriter) {
			w.Header().Set("X-Amz-Function-Error", "Unhandled")
		}, "function error Unhandled"},
		{"a status other than 200 fails", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, `{"errorType":"Runtime.ExitError"}`)
		}, "HTTP 502"},
		{"throttling fails (the batch is retried)", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusTooManyRequests)
		}, "HTTP 429"},
	} {
		t.Run(c.name, func(t *testing.T) {
			answer = c.answer
			out, err := inv.Invoke(context.Background(), []byte(`{}`))
			if gotPath != "/2015-03-31/functions/voting-tally/invocations" || gotType != "RequestResponse" {
				t.Fatalf("posted to %s with invocation type %q", gotPath, gotType)
			}
			if c.wantErr == "" {
				if err != nil || !strings.Contains(string(out), `"counted":2`) {
					t.Fatalf("got %s, %v", out, err)
				}
				return
			}
			var fe *invoke.FunctionError
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("error %v; want one containing %q", err, c.wantErr)
			}
			if strings.HasPrefix(c.wantErr, "function error") && !errors.As(err, &fe) {
				t.Fatalf("error %T is not a *FunctionError", err)
			}
		})
	}
}

func TestInvocationURLAndEndpoints(t *testing.T) {
	for _, c := range []struct{ endpoint, name, want string }{
		{"http://127.0.0.1:3001", "tally", "http://127.0.0.1:3001/2015-03-31/functions/tally/invocations"},
		{"http://127.0.0.1:3001/", "TallyFunction", "http://127.0.0.1:3001/2015-03-31/functions/TallyFunction/invocations"},
		{"http://127.0.0.1:9001/2015-03-31/functions/function/invocations", "tally",
			"http://127.0.0.1:9001/2015-03-31/functions/function/invocations"},
	} {
		got, err := invoke.InvocationURL(c.endpoint, c.name)
		if err != nil || got != c.want {
			t.Errorf("InvocationURL(%q, %q) = %q, %v; want %q", c.endpoint, c.name, got, err, c.want)
		}
	}
	eps, err := invoke.ParseEndpoints("http://127.0.0.1:3001, tally=http://127.0.0.1:9001/2015-03-31/functions/function/invocations")
	if err != nil {
		t.Fatal(err)
	}
	if eps[""] != "http://127.0.0.1:3001" || !strings.HasPrefix(eps["tally"], "http://127.0.0.1:9001/") || len(eps) != 2 {
		t.Fatalf("endpoints %v", eps)
	}
	for _, bad := range []string{"count=http://x:1", "ftp://x", "tally=http://a:1,tally=http://b:1", "127.0.0.1:3001"} {
		if _, err := invoke.ParseEndpoints(bad); err == nil {
			t.Errorf("ParseEndpoints(%q) accepted", bad)
		}
	}
	targets := invoke.Targets{Endpoints: eps, FunctionName: "voting-{function}"}
	invs, err := targets.Invokers(context.Background(), infra.Functions)
	if err != nil {
		t.Fatal(err)
	}
	if len(invs) != len(infra.Functions) {
		t.Fatalf("%d invokers for %d functions", len(invs), len(infra.Functions))
	}
	partial := invoke.Targets{Endpoints: map[string]string{"ballot": "http://127.0.0.1:1"}}
	if invs, _ := partial.Invokers(context.Background(), infra.Functions); len(invs) != 1 || invs["ballot"] == nil {
		t.Fatalf("only ballot should run remotely: %v", invs)
	}
}

// fakeLambda answers Invoke like the AWS SDK's client.
type fakeLambda struct {
	name string
	out  *lambda.InvokeOutput
	err  error
}

func (f *fakeLambda) Invoke(_ context.Context, in *lambda.InvokeInput, _ ...func(*lambda.Options)) (*lambda.InvokeOutput, error) {
	f.name = *in.FunctionName
	return f.out, f.err
}

func TestAWSInvokerFunctionError(t *testing.T) {
	unhandled := "Unhandled"
	for _, c := range []struct {
		name    string
		fake    *fakeLambda
		wantErr string
	}{
		{"success", &fakeLambda{out: &lambda.InvokeOutput{StatusCode: 200, Payload: []byte(`{"summary":{"votes":1}}`)}}, ""},
		{"function error", &fakeLambda{out: &lambda.InvokeOutput{StatusCode: 200, FunctionError: &unhandled,
			Payload: []byte(`{"errorType":"Runtime.ExitError","errorMessage":"exit status 1"}`)}}, "Runtime.ExitError: exit status 1"},
		{"errorType body without the flag", &fakeLambda{out: &lambda.InvokeOutput{StatusCode: 200,
			Payload: []byte(`{"errorType":"wrapError","errorMessage":"x"}`)}}, "wrapError"},
		{"API error", &fakeLambda{err: errors.New("TooManyRequestsException")}, "TooManyRequestsException"},
	} {
		t.Run(c.name, func(t *testing.T) {
			inv := &invoke.AWSInvoker{Client: c.fake, Function: "ballot", FunctionName: "prod-ballot"}
			out, err := inv.Invoke(context.Background(), []byte(`{}`))
			if c.fake.name != "prod-ballot" {
				t.Fatalf("invoked %q", c.fake.name)
			}
			if c.wantErr == "" {
				if err != nil || string(out) != `{"summary":{"votes":1}}` {
					t.Fatalf("got %s, %v", out, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("error %v; want %q", err, c.wantErr)
			}
		})
	}
}

// sizedInvoker checks each payload's size and answers per its records.
type sizedInvoker struct {
	max    int
	mu     sync.Mutex
	calls  [][]int64 // offsets per call
	answer func(call int, recs []*stream.Record) ([]byte, error)
}

func (s *sizedInvoker) Invoke(_ context.Context, payload []byte) ([]byte, error) {
	if len(payload) > s.max {
		return nil, fmt.Errorf("payload of %d bytes is over %d", len(payload), s.max)
	}
	var ev events.KafkaEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, err
	}
	recs := kafkaevent.Records(ev)
	s.mu.Lock()
	var offs []int64
	for _, r := range recs {
		offs = append(offs, r.Offset)
	}
	s.calls = append(s.calls, offs)
	call := len(s.calls) - 1
	s.mu.Unlock()
	return s.answer(call, recs)
}

func bigEvent(n int) []byte {
	recs := make([]*stream.Record, n)
	for i := range recs {
		recs[i] = &stream.Record{Topic: "votes_topic", Partition: 2, Offset: int64(100 + i), Key: []byte(fmt.Sprint(i)),
			Value: []byte(strings.Repeat("v", 900)), Timestamp: time.UnixMilli(1700000000000)}
	}
	b, _ := json.Marshal(kafkaevent.Event(kafkaevent.Meta{}, recs))
	return b
}

func TestLimitPayloadSplitsLargeBatches(t *testing.T) {
	const max = 64 << 10
	payload := bigEvent(300) // ~360 KB
	ok := func(_ int, recs []*stream.Record) ([]byte, error) {
		return json.Marshal(kafkaevent.Response{Summary: map[string]int{"counted": len(recs)}})
	}

	t.Run("every part within the limit, in order, summaries added", func(t *testing.T) {
		inner := &sizedInvoker{max: max, answer: ok}
		out, err := invoke.LimitPayload(inner, max).Invoke(context.Background(), payload)
		if err != nil {
			t.Fatal(err)
		}
		var resp kafkaevent.Response
		if err := json.Unmarshal(out, &resp); err != nil {
			t.Fatal(err)
		}
		if resp.Summary["counted"] != 300 || len(resp.BatchItemFailures) != 0 || len(inner.calls) < 5 {
			t.Fatalf("%d calls, response %s", len(inner.calls), out)
		}
		next := int64(100)
		for _, offs := range inner.calls {
			for _, o := range offs {
				if o != next {
					t.Fatalf("offsets out of order: got %d, want %d", o, next)
				}
				next++
			}
		}
	})

	t.Run("a failed part is reported from its first record", func(t *testing.T) {
		inner := &sizedInvoker{max: max}
		inner.answer = func(call int, recs []*stream.Record) ([]byte, error) {
			if call == 2 {
				return nil, errors.New("function error")
			}
			return ok(call, recs)
		}
		out, err := invoke.LimitPayload(inner, max).Invoke(context.Background(), payload)
		if err != nil {
			t.Fatal(err)
		}
		var resp kafkaevent.Response
		json.Unmarshal(out, &resp)
		first := inner.calls[2][0]
		if len(inner.calls) != 3 || len(resp.BatchItemFailures) != 1 ||
			resp.BatchItemFailures[0].ItemIdentifier != (kafkaevent.ItemIdentifier{Partition: "votes_topic-2", Offset: first}) ||
			resp.Summary["counted"] != int(first-100) {
			t.Fatalf("%d calls, response %s; want a failure at offset %d", len(inner.calls), out, first)
		}
	})

	t.Run("a partial failure inside a part is kept", func(t *testing.T) {
		inner := &sizedInvoker{max: max}
		inner.answer = func(call int, recs []*stream.Record) ([]byte, error) {
			if call == 1 {
				return json.Marshal(kafkaevent.Response{BatchItemFailures: []kafkaevent.BatchItemFailure{{
					ItemIdentifier: kafkaevent.ItemIdentifier{Partition: "votes_topic-2", Offset: recs[3].Offset}}}})
			}
			return ok(call, recs)
		}
		out, _ := invoke.LimitPayload(inner, max).Invoke(context.Background(), payload)
		var resp kafkaevent.Response
		json.Unmarshal(out, &resp)
		if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier.Offset != inner.calls[1][3] {
			t.Fatalf("response %s", out)
		}
	})

	t.Run("a first part failing is the invocation failing", func(t *testing.T) {
		inner := &sizedInvoker{max: max, answer: func(int, []*stream.Record) ([]byte, error) { return nil, errors.New("down") }}
		if _, err := invoke.LimitPayload(inner, max).Invoke(context.Background(), payload); err == nil {
			t.Fatal("no error")
		}
	})

	t.Run("small payloads pass through", func(t *testing.T) {
		inner := &sizedInvoker{max: max, answer: ok}
		small := bigEvent(3)
		if _, err := invoke.LimitPayload(inner, max).Invoke(context.Background(), small); err != nil || len(inner.calls) != 1 {
			t.Fatalf("%d calls, %v", len(inner.calls), err)
		}
	})
}
