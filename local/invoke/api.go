package invoke

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/votingpipe/voting/local/trigger"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/votingpipe/voting/infra"
)

// FunctionError is a function's failure as the Lambda Invoke API reports
// it: an X-Amz-Function-Error header (or the SDK's FunctionError) and an
// {"errorType": ..., "errorMessage": ...} body. The harness treats it like
// any failed invocation: the batch is retried.
type FunctionError struct {
	Function string
	Type     string // e.g. "Unhandled", or the body's errorType
	Message  string
}

func (e *FunctionError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("%s: function error %s", e.Function, e.Type)
	}
	return fmt.Sprintf("%s: function error %s: %s", e.Function, e.Type, e.Message)
}

// functionError reads an error answer: a body whose top level has
// errorType (what the Lambda runtime writes for a handler error; the
// emulator answers it with HTTP 200). A handler's own response never has one.
func functionError(function, header string, body []byte) error {
	var e struct {
		ErrorType    *string `json:"errorType"`
		ErrorMessage string  `json:"errorMessage"`
	}
	isErr := false
	if b := bytes.TrimSpace(body); len(b) > 0 && b[0] == '{' && json.Unmarshal(b, &e) == nil && e.ErrorType != nil {
		isErr = true
	}
	if header == "" && !isErr {
		return nil
	}
	fe := &FunctionError{Function: function, Type: header, Message: e.ErrorMessage}
	if e.ErrorType != nil {
		fe.Type = *e.ErrorType
	}
	if fe.Type == "" {
		fe.Type = "Unhandled"
	}
	if fe.Message == "" && !isErr {
		fe.Message = snippet(body)
	}
	return fe
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// APIInvoker invokes a function over the Lambda Invoke API (POST
// .../2015-03-31/functions/NAME/invocations, RequestResponse): what `sam
// local start-lambda` serves, and what aws-lambda-rie serves for the one
// function it runs (NAME "function"). It sends no AWS signature; for AWS
// itself use AWSInvoker.
type APIInvoker struct {
	// Function names the function in errors.
	Function string
	// URL is the full invocation URL.
	URL    string
	Client *http.Client
	// Slots, when set, bounds concurrent invocations: one is taken from it
	// for each. A single execution environment such as aws-lambda-rie
	// answers a second concurrent invocation with HTTP 400.
	Slots chan struct{}
}

// Invoke posts payload and returns the function's response; a non-200
// status or a function error is an error.
func (a *APIInvoker) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	if a.Slots != nil {
		select {
		case a.Slots <- struct{}{}:
			defer func() { <-a.Slots }()
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.URL, bytes.NewReader(payload))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Amz-Invocation-Type", "RequestResponse")
	cl := a.Client
	if cl == nil {
		cl = http.DefaultClient
	}
	resp, err := cl.Do(req)
	if err != nil {
		return nil, fmt.Errorf("invoke %s: %w", a.Function, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("invoke %s: read response: %w", a.Function, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("invoke %s: HTTP %d: %s", a.Function, resp.StatusCode, snippet(body))
	}
	if err := functionError(a.Function, resp.Header.Get("X-Amz-Function-Error"), body); err != nil {
		return nil, err
	}
	return body, nil
}

// InvocationURL returns the URL that invokes function name at endpoint: the
// endpoint itself when it already has a path (e.g. the emulator's
// http://127.0.0.1:9001/2015-03-31/functions/function/invocations), else
// the Invoke API path for name under it.
func InvocationURL(endpoint, name string) (string, error) {
	u, _, err := invocationURL(endpoint, name)
	return u, err
}

// invocationURL also reports whether endpoint was a full invocation URL:
// one execution environment, invoked one batch at a time.
func invocationURL(endpoint, name string) (string, bool, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", false, fmt.Errorf("%q is not an http(s)://host:port endpoint", endpoint)
	}
	if strings.Trim(u.Path, "/") != "" {
		return u.String(), true, nil
	}
	u.Path = "/2015-03-31/functions/" + name + "/invocations"
	u.RawPath = "/2015-03-31/functions/" + url.PathEscape(name) + "/invocations"
	return u.String(), false, nil
}

// Targets says where functions run when not in the harness's process
// (the flags --invoke-endpoint, --invoke-aws and --lambda-function-name).
type Targets struct {
	// Endpoints maps a function to the Invoke API endpoint that runs it;
	// the key "" applies to every function not named.
	Endpoints map[string]string
	// AWS invokes the functions not given an endpoint in AWS Lambda
	// (credentials and region from the usual AWS chain).
	AWS bool
	// FunctionName is the name a function is invoked by, with {function}
	// standing for the harness's name of it (default "{function}"), e.g.
	// "voting-prod-{function}".
	FunctionName string
	// MaxPayload is the largest request sent (default PayloadLimit); larger
	// batches are split (see LimitPayload).
	MaxPayload int
	// Timeout bounds one invocation (default 15 minutes, Lambda's limit).
	Timeout time.Duration
}

// ParseEndpoints parses --invoke-endpoint: a comma-separated list of
// URL (every function) and FUNCTION=URL entries. A URL without a path is an
// Invoke API service (sam local start-lambda: functions by name, invoked
// concurrently); a full invocation URL is one execution environment (the
// emulator), invoked one batch at a time.
func ParseEndpoints(spec string) (map[string]string, error) {
	out := map[string]string{}
	for _, e := range strings.Split(spec, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		fn, u := "", e
		if name, rest, ok := strings.Cut(e, "="); ok && !strings.Contains(name, "/") {
			fn, u = name, rest
			if !slices.Contains(infra.Functions, fn) {
				return nil, fmt.Errorf("--invoke-endpoint: unknown function %q (want some of %s)", fn, strings.Join(infra.Functions, ","))
			}
		}
		if _, err := InvocationURL(u, "f"); err != nil {
			return nil, fmt.Errorf("--invoke-endpoint: %w", err)
		}
		if _, dup := out[fn]; dup {
			return nil, fmt.Errorf("--invoke-endpoint: %q is given twice", cmpOr(fn, "the default endpoint"))
		}
		out[fn] = u
	}
	return out, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Remote reports whether any function runs outside the harness.
func (t Targets) Remote() bool { return len(t.Endpoints) > 0 || t.AWS }

// Name returns the name function is invoked by.
func (t Targets) Name(function string) string {
	tmpl := t.FunctionName
	if tmpl == "" {
		tmpl = "{function}"
	}
	return strings.ReplaceAll(tmpl, "{function}", function)
}

// Invokers returns the invokers of functions that run outside the harness
// (functions absent from the map run in-process), each limited to
// MaxPayload per request.
func (t Targets) Invokers(ctx context.Context, functions []string) (map[string]trigger.Invoker, error) {
	out := map[string]trigger.Invoker{}
	timeout := t.Timeout
	if timeout <= 0 {
		timeout = 15 * time.Minute
	}
	client := &http.Client{Timeout: timeout}
	var aws *awsLambda
	slots := map[string]chan struct{}{} // per single-environment URL
	for _, fn := range functions {
		var inv trigger.Invoker
		endpoint, ok := t.Endpoints[fn]
		if !ok {
			endpoint, ok = t.Endpoints[""]
		}
		switch {
		case ok:
			u, single, err := invocationURL(endpoint, t.Name(fn))
			if err != nil {
				return nil, err
			}
			a := &APIInvoker{Function: fn, URL: u, Client: client}
			if single {
				if slots[u] == nil {
					slots[u] = make(chan struct{}, 1)
				}
				a.Slots = slots[u]
			}
			inv = a
		case t.AWS:
			if aws == nil {
				var err error
				if aws, err = newAWSLambda(ctx); err != nil {
					return nil, err
				}
			}
			inv = &AWSInvoker{Client: aws.client, Function: fn, FunctionName: t.Name(fn)}
		default:
			continue
		}
		out[fn] = LimitPayload(inv, t.MaxPayload)
	}
	if len(out) == 0 && t.Remote() {
		return nil, errors.New("no function to invoke remotely")
	}
	return out, nil
}
