package metrics_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/votingpipe/voting/shared/metrics"
)

// cloudWatchUnits: the EMF specification's schema, MetricDefinition Unit.
var cloudWatchUnits = strings.Split("Seconds|Microseconds|Milliseconds|Bytes|Kilobytes|Megabytes|Gigabytes|Terabytes|"+
	"Bits|Kilobits|Megabits|Gigabits|Terabits|Percent|Count|Bytes/Second|Kilobytes/Second|Megabytes/Second|"+
	"Gigabytes/Second|Terabytes/Second|Bits/Second|Kilobits/Second|Megabits/Second|Gigabits/Second|"+
	"Terabits/Second|Count/Second|None", "|")

var fixed = time.Date(2026, 11, 3, 20, 0, 0, 123e6, time.UTC)

func clock() time.Time { return fixed }

func newEmitter(t *testing.T, w io.Writer, dims map[string]string) *metrics.Emitter {
	t.Helper()
	e, err := metrics.New(w, "VotingPipeline", dims, metrics.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// directive is the part of an EMF document under _aws.CloudWatchMetrics.
type directive struct {
	Namespace  string
	Dimensions [][]string
	Metrics    []struct {
		Name string
		Unit string
	}
}

// parseEMF parses one line and checks it against the specification
// ("Specification: Embedded metric format", CloudWatch user guide): a JSON
// object with _aws {Timestamp (integer ms), CloudWatchMetrics [directives]};
// every directive has a Namespace, Dimensions (dimension sets of at most 30
// keys, each a string member of the root) and Metrics (at most 100, each
// Name a numeric member of the root, Unit a CloudWatch unit).
func parseEMF(t *testing.T, line []byte) (root map[string]any, d directive) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&root); err != nil {
		t.Fatalf("not a JSON object: %v\n%s", err, line)
	}
	if dec.More() {
		t.Fatalf("data after the object: %s", line)
	}
	aws, ok := root["_aws"].(map[string]any)
	if !ok {
		t.Fatalf("no _aws object: %s", line)
	}
	ts, ok := aws["Timestamp"].(json.Number)
	if _, err := ts.Int64(); !ok || err != nil {
		t.Fatalf("_aws.Timestamp %v is not an integer", aws["Timestamp"])
	}
	var meta struct{ CloudWatchMetrics []directive }
	raw, _ := json.Marshal(aws)
	if err := json.Unmarshal(raw, &meta); err != nil || len(meta.CloudWatchMetrics) != 1 {
		t.Fatalf("CloudWatchMetrics %v: %v", aws["CloudWatchMetrics"], err)
	}
	d = meta.CloudWatchMetrics[0]
	if d.Namespace == "" || len(d.Dimensions) == 0 || len(d.Metrics) == 0 {
		t.Fatalf("incomplete directive %+v", d)
	}
	for _, set := range d.Dimensions {
		if len(set) > metrics.MaxDimensions {
			t.Errorf("dimension set of %d keys", len(set))
		}
		for _, k := range set {
			if s, ok := root[k].(string); !ok || s == "" {
				t.Errorf("dimension %s: root member %v is not a non-empty string", k, root[k])
			}
		}
	}
	if len(d.Metrics) > metrics.MaxMetricsPerLine {
		t.Errorf("%d metrics in one directive", len(d.Metrics))
	}
	for _, m := range d.Metrics {
		if _, ok := root[m.Name].(json.Number); !ok {
			t.Errorf("metric %s: root member %v is not a number", m.Name, root[m.Name])
		}
		if m.Unit != "" && !slices.Contains(cloudWatchUnits, m.Unit) {
			t.Errorf("metric %s: unit %q", m.Name, m.Unit)
		}
	}
	return root, d
}

func lines(t *testing.T, b []byte) [][]byte {
	t.Helper()
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Fatalf("output does not end in a newline: %q", b)
	}
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		out = append(out, append([]byte(nil), sc.Bytes()...))
	}
	return out
}

func TestEmitIsValidEMF(t *testing.T) {
	var buf bytes.Buffer
	e := newEmitter(t, &buf, map[string]string{"FunctionName": "voting-TallyFunction-1A2B", "Stage": "tally"})
	if err := e.Emit(
		metrics.Metric{Name: "VotesCounted", Value: 5000, Unit: metrics.Count},
		metrics.Metric{Name: "BatchSeconds", Value: 0.0625, Unit: metrics.Seconds},
	); err != nil {
		t.Fatal(err)
	}
	if err := e.EmitWith([]metrics.Dimension{{Name: "Reason", Value: "already_voted"}},
		metrics.Metric{Name: "VotesRejected", Value: 3, Unit: metrics.Count}); err != nil {
		t.Fatal(err)
	}
	ls := lines(t, buf.Bytes())
	if len(ls) != 2 {
		t.Fatalf("%d lines, want 2:\n%s", len(ls), buf.Bytes())
	}
	root, d := parseEMF(t, ls[0])
	if ts, _ := root["_aws"].(map[string]any)["Timestamp"].(json.Number).Int64(); ts != fixed.UnixMilli() {
		t.Errorf("Timestamp %d, want %d (milliseconds)", ts, fixed.UnixMilli())
	}
	if d.Namespace != "VotingPipeline" || fmt.Sprint(d.Dimensions) != "[[FunctionName Stage]]" {
		t.Errorf("directive %+v", d)
	}
	if root["VotesCounted"] != json.Number("5000") || root["BatchSeconds"] != json.Number("0.0625") || root["Stage"] != "tally" {
		t.Errorf("values %v", root)
	}
	root, d = parseEMF(t, ls[1])
	if fmt.Sprint(d.Dimensions) != "[[FunctionName Stage Reason]]" || root["Reason"] != "already_voted" || root["VotesRejected"] != json.Number("3") {
		t.Errorf("line with an extra dimension: %+v %v", d, root)
	}
}

// TestEmitIsDeterministic: the same call writes the same bytes, fields in a
// fixed order (_aws first, then the emitter's dimensions by name, the extra
// dimensions in the order given, the metrics in the order given).
func TestEmitIsDeterministic(t *testing.T) {
	const want = `{"_aws":{"Timestamp":1793736000123,"CloudWatchMetrics":[{"Namespace":"VotingPipeline",` +
		`"Dimensions":[["A","B","Reason"]],"Metrics":[{"Name":"Z","Unit":"Count"},{"Name":"Y","Unit":"Milliseconds"},{"Name":"X"}]}]},` +
		`"A":"a","B":"b","Reason":"malformed","Z":1,"Y":2.5,"X":1e-07}` + "\n"
	for range 20 {
		var buf bytes.Buffer
		e := newEmitter(t, &buf, map[string]string{"B": "b", "A": "a"})
		if err := e.EmitWith([]metrics.Dimension{{Name: "Reason", Value: "malformed"}},
			metrics.Metric{Name: "Z", Value: 1, Unit: metrics.Count},
			metrics.Metric{Name: "Y", Value: 2.5, Unit: metrics.Milliseconds},
			metrics.Metric{Name: "X", Value: 1e-7},
		); err != nil {
			t.Fatal(err)
		}
		if buf.String() != want {
			t.Fatalf("got  %s\nwant %s", buf.String(), want)
		}
	}
}

func TestEmitSplitsAt100Metrics(t *testing.T) {
	var buf bytes.Buffer
	e := newEmitter(t, &buf, map[string]string{"FunctionName": "f"})
	var ms []metrics.Metric
	for i := range 250 {
		ms = append(ms, metrics.Metric{Name: fmt.Sprintf("M%03d", i), Value: float64(i), Unit: metrics.Count})
	}
	if err := e.Emit(ms...); err != nil {
		t.Fatal(err)
	}
	ls := lines(t, buf.Bytes())
	if len(ls) != 3 {
		t.Fatalf("%d lines, want 3", len(ls))
	}
	seen := 0
	for i, l := range ls {
		root, d := parseEMF(t, l)
		if want := []int{100, 100, 50}[i]; len(d.Metrics) != want {
			t.Errorf("line %d: %d metrics, want %d", i, len(d.Metrics), want)
		}
		if root["FunctionName"] != "f" {
			t.Errorf("line %d lacks the dimension", i)
		}
		for _, m := range d.Metrics {
			if m.Name != fmt.Sprintf("M%03d", seen) {
				t.Errorf("line %d: metric %s, want M%03d", i, m.Name, seen)
			}
			seen++
		}
	}
}

func TestEscaping(t *testing.T) {
	var buf bytes.Buffer
	odd := "quote \" backslash \\ newline \n tab \t nul \x00 bell \a é 中 \xff"
	e := newEmitter(t, &buf, map[string]string{"Where": odd})
	if err := e.Emit(metrics.Metric{Name: `a "name"`, Value: -0.5, Unit: metrics.Bytes}); err != nil {
		t.Fatal(err)
	}
	root, _ := parseEMF(t, lines(t, buf.Bytes())[0])
	if want := strings.ToValidUTF8(odd, "\uFFFD"); root["Where"] != want {
		t.Errorf("dimension value %q, want %q", root["Where"], want)
	}
	if root[`a "name"`] != json.Number("-0.5") {
		t.Errorf("metric %v", root)
	}
}

func TestValidation(t *testing.T) {
	long := strings.Repeat("x", 1025)
	many := map[string]string{}
	for i := range 31 {
		many[fmt.Sprintf("D%d", i)] = "v"
	}
	for _, tc := range []struct {
		name      string
		namespace string
		dims      map[string]string
		extra     []metrics.Dimension
		metrics   []metrics.Metric
		want      string
	}{
		{name: "empty namespace", namespace: "", want: "namespace"},
		{name: "AWS namespace", namespace: "AWS/Lambda", want: "reserved"},
		{name: "too many dimensions", dims: many, want: "31 dimensions"},
		{name: "too many with the extra ones", dims: map[string]string{"A": "a"}, extra: func() []metrics.Dimension {
			var ds []metrics.Dimension
			for i := range 30 {
				ds = append(ds, metrics.Dimension{Name: fmt.Sprintf("E%d", i), Value: "v"})
			}
			return ds
		}(), want: "31 dimensions"},
		{name: "empty dimension value", dims: map[string]string{"FunctionName": ""}, want: "dimension FunctionName"},
		{name: "dimension value too long", extra: []metrics.Dimension{{Name: "R", Value: long}}, want: "dimension R"},
		{name: "dimension twice", dims: map[string]string{"R": "a"}, extra: []metrics.Dimension{{Name: "R", Value: "b"}}, want: "given twice"},
		{name: "empty metric name", metrics: []metrics.Metric{{Name: "", Value: 1}}, want: "metric name"},
		{name: "metric twice", metrics: []metrics.Metric{{Name: "A", Value: 1}, {Name: "A", Value: 2}}, want: "twice"},
		{name: "metric named like a dimension", dims: map[string]string{"A": "a"}, metrics: []metrics.Metric{{Name: "A", Value: 1}}, want: "name of a dimension"},
		{name: "NaN", metrics: []metrics.Metric{{Name: "A", Value: math.NaN()}}, want: "metric A"},
		{name: "infinity", metrics: []metrics.Metric{{Name: "A", Value: math.Inf(1)}}, want: "metric A"},
		{name: "unknown unit", metrics: []metrics.Metric{{Name: "A", Value: 1, Unit: "Votes"}}, want: "unit"},
		{name: "_aws", metrics: []metrics.Metric{{Name: "_aws", Value: 1}}, want: "reserved"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := tc.namespace
			if ns == "" && tc.name != "empty namespace" {
				ns = "VotingPipeline"
			}
			var buf bytes.Buffer
			e, err := metrics.New(&buf, ns, tc.dims)
			if err == nil {
				ms := tc.metrics
				if ms == nil {
					ms = []metrics.Metric{{Name: "Ok", Value: 1, Unit: metrics.Count}}
				}
				err = e.EmitWith(tc.extra, ms...)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
			if buf.Len() != 0 {
				t.Errorf("wrote %q despite the error", buf.String())
			}
		})
	}
}

func TestNilEmitterIsDisabled(t *testing.T) {
	var e *metrics.Emitter
	if err := e.Emit(metrics.Metric{Name: "A", Value: 1}); err != nil {
		t.Fatal(err)
	}
	if err := e.EmitWith([]metrics.Dimension{{Name: "R", Value: "x"}}, metrics.Metric{Name: "A", Value: 1}); err != nil {
		t.Fatal(err)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteErrorIsReturned(t *testing.T) {
	e := newEmitter(t, failingWriter{}, nil)
	if err := e.Emit(metrics.Metric{Name: "A", Value: 1}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("error %v", err)
	}
}

// lockedBuffer counts Writes; a line split across two Writes could
// interleave with another goroutine's on a shared stdout.
type lockedBuffer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.writes++
	return b.buf.Write(p)
}

func TestConcurrentEmits(t *testing.T) {
	w := &lockedBuffer{}
	e := newEmitter(t, w, map[string]string{"FunctionName": "f"})
	const goroutines, each = 8, 500
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				if err := e.EmitWith([]metrics.Dimension{{Name: "G", Value: fmt.Sprint(g)}},
					metrics.Metric{Name: "I", Value: float64(i), Unit: metrics.Count}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	ls := lines(t, w.buf.Bytes())
	if len(ls) != goroutines*each || w.writes != goroutines*each {
		t.Fatalf("%d lines in %d writes, want %d", len(ls), w.writes, goroutines*each)
	}
	for _, l := range ls {
		parseEMF(t, l)
	}
}

func TestEmitDoesNotAllocate(t *testing.T) {
	e := newEmitter(t, io.Discard, map[string]string{"FunctionName": "voting-TallyFunction-1A2B"})
	extra := []metrics.Dimension{{Name: "Reason", Value: "duplicate"}}
	allocs := testing.AllocsPerRun(100, func() {
		_ = e.Emit(
			metrics.Metric{Name: "VotesCounted", Value: 5000, Unit: metrics.Count},
			metrics.Metric{Name: "BatchSeconds", Value: 0.25, Unit: metrics.Seconds},
		)
		_ = e.EmitWith(extra, metrics.Metric{Name: "VotesRejected", Value: 2, Unit: metrics.Count})
	})
	if allocs > 0 {
		t.Errorf("%.1f allocations per emit", allocs)
	}
}

func BenchmarkEmit(b *testing.B) {
	e, err := metrics.New(io.Discard, "VotingPipeline", map[string]string{"FunctionName": "voting-TallyFunction-1A2B"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = e.Emit(
			metrics.Metric{Name: "VotesCounted", Value: 5000, Unit: metrics.Count},
			metrics.Metric{Name: "VotesRejected", Value: 3, Unit: metrics.Count},
			metrics.Metric{Name: "BatchSeconds", Value: 0.0625, Unit: metrics.Seconds},
		)
	}
}
