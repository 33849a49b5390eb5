package rietest

// The built Lambda bootstraps run under the real Lambda runtime interface
// emulator (aws-lambda-rie, pinned by the tool line in go.mod; no Docker),
// against a fresh Postgres database and an embedded Kafka broker, invoked
// over HTTP with the sample events in events/.
//
// The bootstraps are built once per test binary exactly as `make build`
// builds them (CGO_ENABLED=0, -tags lambda.norpc, -trimpath), for the
// host's architecture so they run here.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/votingpipe/voting/infra"
	"github.com/votingpipe/voting/local/internal/lambdatest"
	"github.com/votingpipe/voting/local/internal/testkit"
	"github.com/votingpipe/voting/shared/broker"
	"github.com/votingpipe/voting/shared/broker/embedded"
	"github.com/votingpipe/voting/shared/config"
	"github.com/votingpipe/voting/shared/tokens"
)

// built are the bootstraps and the emulator, built once per test binary.
var built struct {
	once sync.Once
	dir  string // dir/<function>/bootstrap
	rie  string
	took time.Duration
	err  error
}

// TestMain removes the built binaries after the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// build compiles the four bootstraps (one go build, packages in parallel)
// and the emulator.
func build(t *testing.T) (dir, rie string) {
	t.Helper()
	built.once.Do(func() {
		start := time.Now()
		dir, err := os.MkdirTemp("", "voting-bootstraps-")
		if err != nil {
			built.err = err
			return
		}
		built.dir = dir
		built.rie, built.err = lambdatest.Build("../..", dir, infra.Functions)
		if built.err != nil {
			return
		}
		built.took = time.Since(start)
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.dir, built.rie
}

// emulator is one function's bootstrap running under aws-lambda-rie.
type emulator struct {
	*lambdatest.Emulator
	function string
	url      string
	logs     *lambdatest.Logs
	done     <-chan struct{}
}

// startEmulator runs function's bootstrap under the emulator with exactly
// env (plus PATH and AWS_REGION) as its environment, on free loopback ports.
func startEmulator(t *testing.T, function string, env map[string]string) *emulator {
	t.Helper()
	dir, rie := build(t)
	full := map[string]string{"AWS_REGION": "us-east-1"}
	for k, v := range env {
		full[k] = v
	}
	em := lambdatest.Start(t, rie, filepath.Join(dir, function, "bootstrap"), full, "--log-level", "info")
	return &emulator{Emulator: em, function: function, url: em.URL, logs: em.Logs, done: em.Done()}
}

// invoke posts payload and returns the response body. The emulator answers
// 200 for handler errors too, with an errorType body.
func (e *emulator) invoke(t *testing.T, payload []byte) []byte {
	t.Helper()
	status, body := e.post(t, payload)
	if status != http.StatusOK {
		t.Errorf("%s: HTTP %d: %s\n%s", e.function, status, body, e.logs)
	}
	return body
}

// post posts payload and returns the HTTP status and body.
func (e *emulator) post(t *testing.T, payload []byte) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: invoke: %v\n%s", e.function, err, e.logs)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func (e *emulator) invokeFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return e.invoke(t, b)
}

// initReport is the emulator's log line ending the init phase. (Its REPORT
// line also has an "Init Duration", but the emulator fills that with the
// duration of a phase that is empty for a warm sandbox, ~0.05 ms; the init
// phase itself, which starts the bootstrap and runs main up to
// lambda.Start, is the INIT REPORT.)
var initReport = regexp.MustCompile(`INIT RTDONE\(status: success\)[^\n]*\n[^\n]*INIT REPORT\(durationMs: ([0-9.]+)\)`)

// initDuration returns the cold start (init phase) of the first invocation,
// waiting briefly for the log line.
func (e *emulator) initDuration(t *testing.T) float64 {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if m := initReport.FindStringSubmatch(e.logs.String()); m != nil {
			f, err := strconv.ParseFloat(m[1], 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no INIT REPORT line:\n%s", e.function, e.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lambdaError is the body the emulator returns for a failed invocation.
type lambdaError struct {
	ErrorType    string `json:"errorType"`
	ErrorMessage string `json:"errorMessage"`
}

func asLambdaError(body []byte) (lambdaError, bool) {
	var le lambdaError
	if json.Unmarshal(body, &le) != nil || le.ErrorType == "" {
		return le, false
	}
	return le, true
}

// golden compares a response with the handler golden file of events/testdata,
// so the emulator is held to exactly what the in-process invocation returns.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	want, err := os.ReadFile(filepath.Join("..", "..", "events", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: response is not JSON: %s", name, got)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if !bytes.Equal(gb, wb) {
		t.Errorf("response differs from events/testdata/%s:\n got %s\nwant %s", name, gb, wb)
	}
}

func normalizeSeconds(t *testing.T, b []byte) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	m["seconds"] = 0
	if tok, _ := m["tokens"].(string); !strings.HasSuffix(tok, "tokens.csv") {
		t.Errorf("register response says the tokens are at %q", m["tokens"])
	}
	m["tokens"] = "<state-dir>/tokens.csv"
	out, _ := json.Marshal(m)
	return out
}

type world struct {
	env map[string]string
	db  *pgx.Conn
}

func newWorld(t *testing.T) *world {
	t.Helper()
	cfg, err := config.LoadFrom[config.Config](map[string]string{}, config.Local)
	if err != nil {
		t.Fatal(err)
	}
	kf, err := embedded.Start(embedded.Options{Topics: broker.Topics(cfg.Topics, 6)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kf.Close)
	dsn := testkit.NewDatabase(t)
	db, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(context.Background()) })
	return &world{db: db, env: map[string]string{
		"DATABASE_URL":  dsn,
		"KAFKA_BROKERS": strings.Join(kf.Addrs(), ","),
		"DASHBOARD_DIR": t.TempDir(),
		"LOG_FORMAT":    "json",
		"TOKEN_KEY":     strings.Repeat("5e", 32),
		"TOKENS_FILE":   filepath.Join(t.TempDir(), "tokens.csv"),
	}}
}

func (w *world) count(t *testing.T, sql string) int64 {
	t.Helper()
	var n int64
	if err := w.db.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// TestBootstrapsUnderEmulator invokes each built bootstrap with its sample
// event, in pipeline order, and checks responses, rows and cold starts.
func TestBootstrapsUnderEmulator(t *testing.T) {
	w := newWorld(t)
	initMs := map[string]float64{}
	defer func() {
		var parts []string
		for _, fn := range infra.Functions {
			if ms, ok := initMs[fn]; ok {
				parts = append(parts, fmt.Sprintf("%s %.1f ms", fn, ms))
			}
		}
		t.Logf("cold start (Init Duration under aws-lambda-rie, %s/%s): %s; build took %s",
			runtime.GOOS, runtime.GOARCH, strings.Join(parts, ", "), built.took.Round(time.Second))
	}()

	t.Run("register", func(t *testing.T) {
		e := startEmulator(t, infra.Register, w.env)
		golden(t, "register.response.json", normalizeSeconds(t, e.invokeFile(t, "../../events/register.json")))
		initMs[infra.Register] = e.initDuration(t)
		if n := w.count(t, "SELECT count(*) FROM voters"); n != 10 {
			t.Errorf("%d voters, want 10", n)
		}
		// A bad request is a Lambda error response, and the process lives on.
		body := e.invoke(t, []byte(`{"voters": 0}`))
		le, ok := asLambdaError(body)
		if !ok || !strings.Contains(le.ErrorMessage, "invalid register request") {
			t.Errorf("register {voters: 0}: %s", body)
		}
		again := e.invokeFile(t, "../../events/register.json")
		if !bytes.Contains(again, []byte(`"already_registered":true`)) {
			t.Errorf("register after an error: %s\n%s", again, e.logs)
		}
	})

	t.Run("cast", func(t *testing.T) {
		e := startEmulator(t, infra.Cast, w.env)
		golden(t, "cast.response.json", e.invokeFile(t, "../../events/cast.json"))
		initMs[infra.Cast] = e.initDuration(t)
		issued, err := tokens.ReadFile(w.env["TOKENS_FILE"])
		if err != nil || len(issued) != 10 {
			t.Fatalf("register handed out %d tokens (%v), want 10", len(issued), err)
		}
		ev, _ := os.ReadFile("../../events/cast.json")
		real := []byte(strings.Replace(string(ev), "REPLACEWITHATOKENFROMTHECS", issued[9].Token, 1))
		for i, want := range []string{`"statusCode":202`, `"statusCode":409`} {
			if out := e.invoke(t, real); !bytes.Contains(out, []byte(want)) {
				t.Errorf("cast %d with a real token: %s, want %s", i+1, out, want)
			}
		}
		if strings.Contains(e.logs.String(), issued[9].Token) {
			t.Error("the cast function logged a token")
		}
	})

	t.Run("ballot", func(t *testing.T) {
		e := startEmulator(t, infra.Ballot, w.env)
		golden(t, "ballot.response.json", e.invokeFile(t, "../../events/ballot.json"))
		initMs[infra.Ballot] = e.initDuration(t)
	})

	t.Run("tally", func(t *testing.T) {
		e := startEmulator(t, infra.Tally, w.env)
		golden(t, "tally.response.json", e.invokeFile(t, "../../events/tally.json"))
		initMs[infra.Tally] = e.initDuration(t)
		if n := w.count(t, "SELECT count(*) FROM votes"); n != 4 {
			t.Errorf("%d votes, want 4", n)
		}
		if n := w.count(t, "SELECT count(*) FROM rejected_votes WHERE reason = 'malformed'"); n != 1 {
			t.Errorf("%d malformed rejections, want 1", n)
		}
		// An event that is not a Kafka event fails the invocation, not the process.
		body := e.invoke(t, []byte(`{"records": "not a map"}`))
		if le, ok := asLambdaError(body); !ok {
			t.Errorf("malformed event: %s", body)
		} else {
			t.Logf("malformed event: errorType %s: %s", le.ErrorType, le.ErrorMessage)
		}
		golden(t, "tally.redelivered.response.json", e.invokeFile(t, "../../events/tally.json"))
	})

	t.Run("dashboard", func(t *testing.T) {
		e := startEmulator(t, infra.Dashboard, w.env)
		payload, err := os.ReadFile("../../events/dashboard.json")
		if err != nil {
			t.Fatal(err)
		}
		status, body := e.post(t, payload)
		if status != http.StatusOK {
			t.Fatalf("HTTP %d: %s\n%s", status, body, e.logs)
		}
		golden(t, "dashboard.response.json", body)
		initMs[infra.Dashboard] = e.initDuration(t)
		if _, err := os.Stat(filepath.Join(w.env["DASHBOARD_DIR"], "index.html")); err != nil {
			t.Errorf("no index.html in DASHBOARD_DIR")
		}
	})
}

// TestRegisterCreatesTopics: on a broker with no topics, the register
// function creates the pipeline's topics at start (nothing else does in
// AWS), with the configured partitions and compaction.
func TestRegisterCreatesTopics(t *testing.T) {
	kf, err := embedded.Start(embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kf.Close)
	e := startEmulator(t, infra.Register, map[string]string{
		"DATABASE_URL":     testkit.NewDatabase(t),
		"KAFKA_BROKERS":    strings.Join(kf.Addrs(), ","),
		"KAFKA_PARTITIONS": "3",
		"TOKEN_KEY":        strings.Repeat("5e", 32),
		"TOKENS_FILE":      filepath.Join(t.TempDir(), "tokens.csv"),
	})
	out := e.invoke(t, []byte(`{"voters": 5}`))
	if _, failed := asLambdaError(out); failed {
		t.Fatalf("register: %s\n%s", out, e.logs)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(kf.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg, err := config.LoadFrom[config.Config](map[string]string{}, config.Local)
	if err != nil {
		t.Fatal(err)
	}
	specs := broker.Topics(cfg.Topics, 3)
	var names []string
	for _, s := range specs {
		names = append(names, s.Name)
	}
	details, err := adm.ListTopics(ctx, names...)
	if err != nil {
		t.Fatal(err)
	}
	confs, err := adm.DescribeTopicConfigs(ctx, names...)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range specs {
		d, ok := details[s.Name]
		if !ok || d.Err != nil {
			t.Errorf("topic %s was not created: %v", s.Name, d.Err)
			continue
		}
		if len(d.Partitions) != 3 {
			t.Errorf("topic %s has %d partitions, want 3", s.Name, len(d.Partitions))
		}
		rc, err := confs.On(s.Name, nil)
		if err != nil {
			t.Errorf("configs of %s: %v", s.Name, err)
			continue
		}
		compact := false
		for _, c := range rc.Configs {
			if c.Key == "cleanup.policy" && c.MaybeValue() == "compact" {
				compact = true
			}
		}
		if compact != s.Compacted {
			t.Errorf("topic %s: compacted=%v, want %v", s.Name, compact, s.Compacted)
		}
	}
}

// TestBootstrapInitFailure: a function whose configuration is invalid fails
// its init (Runtime.ExitError, as Lambda reports it), the invocation fails,
// the logs name every problem, and the emulator itself stays up: the next
// invocation gets the same answer.
func TestBootstrapInitFailure(t *testing.T) {
	e := startEmulator(t, infra.Tally, map[string]string{
		"DATABASE_URL":         "postgres://127.0.0.1:1/none?sslmode=disable",
		"KAFKA_SASL_MECHANISM": "GSSAPI",
	})
	for i := range 2 {
		status, body := e.post(t, []byte(`{}`))
		if _, ok := asLambdaError(body); !ok && len(bytes.TrimSpace(body)) > 0 {
			t.Errorf("invocation %d of a function that cannot start: HTTP %d %q", i, status, body)
		}
		select {
		case <-e.done:
			t.Fatalf("the emulator exited:\n%s", e.logs)
		default:
		}
	}
	logs := e.logs.String()
	for _, want := range []string{"Runtime.ExitError", "INIT RTDONE(status: error)", "KAFKA_BROKERS: is required", "KAFKA_SASL_MECHANISM: is \"GSSAPI\""} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs do not say %s:\n%s", want, logs)
		}
	}
}

// TestNoCredentialsInLogs: a function that cannot reach its database fails
// its init (the emulator answers HTTP 502, as Lambda fails the invoke), and
// neither the logs nor the response carry the database password.
func TestNoCredentialsInLogs(t *testing.T) {
	const pw = "n0t-in-logs-pw"
	e := startEmulator(t, infra.Ballot, map[string]string{
		"DATABASE_URL":  "postgres://voting:" + pw + "@127.0.0.1:1/voting?sslmode=disable&connect_timeout=2",
		"KAFKA_BROKERS": "127.0.0.1:1",
	})
	status, body := e.post(t, []byte(`{}`))
	if status == http.StatusOK {
		t.Errorf("invocation with an unreachable database succeeded: %s", body)
	}
	// The emulator may answer before it has written the exit to its log.
	reported := func(logs string) bool {
		return strings.Contains(logs, "connect to postgres://voting:xxxxx@127.0.0.1:1/") && strings.Contains(logs, "Runtime.ExitError")
	}
	logs := e.logs.String()
	for deadline := time.Now().Add(10 * time.Second); !reported(logs) && time.Now().Before(deadline); logs = e.logs.String() {
		time.Sleep(50 * time.Millisecond)
	}
	if strings.Contains(logs, pw) || strings.Contains(string(body), pw) {
		t.Errorf("the password appears in the logs or response:\n%s\n%s", logs, body)
	}
	if !reported(logs) {
		t.Errorf("logs do not report the failed connection:\n%s", logs)
	}
}
