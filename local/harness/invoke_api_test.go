package harness_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/votingpipe/voting/infra"
	"github.com/votingpipe/voting/local/harness"
	"github.com/votingpipe/voting/local/invoke"
	"github.com/votingpipe/voting/local/trigger"
)

// invokeAPIServer serves the Lambda Invoke API for in-process handlers,
// answering a handler error the way the runtime does (errorType body,
// X-Amz-Function-Error).
func invokeAPIServer(t *testing.T, handlers map[string]trigger.Invoker, failFirst map[string]*atomic.Int64) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/2015-03-31/functions/"), "/invocations")
		name = strings.TrimPrefix(name, "test-")
		h := handlers[name]
		if h == nil {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"Type":"User","Message":"Function not found"}`)
			return
		}
		if n := failFirst[name]; n != nil && n.Add(-1) >= 0 {
			w.Header().Set("X-Amz-Function-Error", "Unhandled")
			io.WriteString(w, `{"errorType":"injected","errorMessage":"first invocations fail"}`)
			return
		}
		payload, _ := io.ReadAll(r.Body)
		out, err := h.Invoke(r.Context(), payload)
		if err != nil {
			io.WriteString(w, fmt.Sprintf(`{"errorType":"handlerError","errorMessage":%q}`, err.Error()))
			return
		}
		w.Write(out)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// The harness drives functions over the Invoke API on the NATS transport
// with the same semantics: function errors are retried, the election comes
// out exact.
func TestNATSInvokeAPITarget(t *testing.T) {
	env, _ := natsEnv(t, 2)
	handlers := map[string]trigger.Invoker{}
	for _, fn := range natsElectionFunctions {
		h, err := env.Invoker(fn)
		if err != nil {
			t.Fatal(err)
		}
		handlers[fn] = h
	}
	fail := map[string]*atomic.Int64{infra.Ballot: {}, infra.Tally: {}}
	fail[infra.Ballot].Store(1)
	fail[infra.Tally].Store(2)
	srv := invokeAPIServer(t, handlers, fail)

	targets := invoke.Targets{Endpoints: map[string]string{"": srv.URL}, FunctionName: "test-{function}"}
	invs, err := targets.Invokers(context.Background(), natsElectionFunctions)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sum, err := harness.Run(ctx, env, harness.RunOptions{
		Voters: 1500, Candidates: 3, Seed: 9, UntilDone: true, Functions: natsElectionFunctions, Out: io.Discard,
		Invokers: invs,
	})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Tallied != 1500 {
		t.Fatalf("tallied %d of 1500", sum.Tallied)
	}
	if f := sum.Stats[infra.Tally].Failures.Load(); f < 2 {
		t.Fatalf("tally recorded %d failed invocations; want the 2 injected", f)
	}
	if f := sum.Stats[infra.Ballot].Failures.Load(); f < 1 {
		t.Fatalf("ballot recorded %d failed invocations; want the injected one", f)
	}
	natsAuditOK(t, env)
}
