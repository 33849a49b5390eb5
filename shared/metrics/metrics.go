package metrics

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Namespace is the CloudWatch namespace of the pipeline's metrics (the
// template's alarms read it).
const Namespace = "VotingPipeline"

// Unit is a CloudWatch metric unit.
type Unit string

// The units the pipeline uses; any CloudWatch unit (see validUnits) may be
// given as a Unit.
const (
	Count        Unit = "Count"
	Seconds      Unit = "Seconds"
	Milliseconds Unit = "Milliseconds"
	Bytes        Unit = "Bytes"
	None         Unit = "None"
)

// validUnits are CloudWatch's units (MetricDatum Unit, and the EMF
// specification's schema). An empty Unit is written as none at all, which
// CloudWatch reads as None.
var validUnits = []Unit{
	"Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
	"Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
	"Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second",
	"Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second",
	"Terabits/Second", "Count/Second", "None",
}

// Limits of the embedded metric format and of CloudWatch.
const (
	MaxDimensions       = 30   // dimension keys in a dimension set
	MaxMetricsPerLine   = 100  // metric definitions in a directive
	maxNamespaceLen     = 255  // CloudWatch namespace
	maxNameLen          = 1024 // metric name
	maxDimensionNameLen = 250  // dimension key
	maxDimensionLen     = 1024 // dimension value
)

// Metric is one value of a line.
type Metric struct {
	Name  string
	Value float64
	Unit  Unit
}

// Dimension is one dimension of a line.
type Dimension struct {
	Name, Value string
}

// Option configures an Emitter.
type Option func(*Emitter)

// WithClock makes the emitter timestamp lines with now instead of
// time.Now (for tests).
func WithClock(now func() time.Time) Option {
	return func(e *Emitter) { e.now = now }
}

// Emitter writes EMF lines for one namespace and set of dimensions.
type Emitter struct {
	w   io.Writer
	now func() time.Time
	// The parts of every line that never change, pre-rendered.
	namespace string      // `"Namespace":"..."`
	dims      []Dimension // sorted by name
	dimNames  string      // `"A","B"` (quoted, comma-separated)
	dimValues string      // `,"A":"a","B":"b"`

	mu  sync.Mutex
	buf []byte
}

// New returns an emitter writing to w, in namespace, with dims on every line.
func New(w io.Writer, namespace string, dims map[string]string, opts ...Option) (*Emitter, error) {
	if w == nil {
		return nil, errors.New("metrics: nil writer")
	}
	switch {
	case namespace == "" || len(namespace) > maxNamespaceLen:
		return nil, fmt.Errorf("metrics: namespace %q: want 1 to %d characters", namespace, maxNamespaceLen)
	case strings.HasPrefix(namespace, "AWS/"), strings.HasPrefix(namespace, ":"):
		return nil, fmt.Errorf("metrics: namespace %q is reserved", namespace)
	}
	if len(dims) > MaxDimensions {
		return nil, fmt.Errorf("metrics: %d dimensions, at most %d", len(dims), MaxDimensions)
	}
	e := &Emitter{w: w, now: time.Now}
	for _, o := range opts {
		o(e)
	}
	for name, value := range dims {
		e.dims = append(e.dims, Dimension{name, value})
	}
	slices.SortFunc(e.dims, func(a, b Dimension) int { return strings.Compare(a.Name, b.Name) })
	if err := checkDimensions(e.dims, nil); err != nil {
		return nil, err
	}
	e.namespace = string(appendString([]byte(`"Namespace":`), namespace))
	var names, values []byte
	for i, d := range e.dims {
		if i > 0 {
			names = append(names, ',')
		}
		names = appendString(names, d.Name)
		values = append(values, ',')
		values = appendString(values, d.Name)
		values = append(values, ':')
		values = appendString(values, d.Value)
	}
	e.dimNames, e.dimValues = string(names), string(values)
	return e, nil
}

// Emit writes metrics, with the emitter's dimensions, as one line (or one
// line per 100 metrics). A nil Emitter writes nothing.
func (e *Emitter) Emit(metrics ...Metric) error {
	return e.EmitWith(nil, metrics...)
}

// EmitWith writes metrics with the emitter's dimensions and extra ones,
// which together form the line's one dimension set: the metrics are
// recorded under that combination only (emit the total separately with
// Emit if you also want it under the emitter's dimensions alone).
func (e *Emitter) EmitWith(extra []Dimension, metrics ...Metric) error {
	if e == nil || len(metrics) == 0 {
		return nil
	}
	if len(e.dims)+len(extra) > MaxDimensions {
		return fmt.Errorf("metrics: %d dimensions, at most %d", len(e.dims)+len(extra), MaxDimensions)
	}
	if err := checkDimensions(extra, e.dims); err != nil {
		return err
	}
	if err := checkMetrics(metrics, e.dims, extra); err != nil {
		return err
	}
	ts := e.now().UnixMilli()
	e.mu.Lock()
	defer e.mu.Unlock()
	for start := 0; start < len(metrics); start += MaxMetricsPerLine {
		chunk := metrics[start:min(start+MaxMetricsPerLine, len(metrics))]
		e.buf = e.appendLine(e.buf[:0], ts, extra, chunk)
		if _, err := e.w.Write(e.buf); err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
	}
	return nil
}

// appendLine renders one EMF line, newline included.
func (e *Emitter) appendLine(b []byte, ts int64, extra []Dimension, metrics []Metric) []byte {
	b = append(b, `{"_aws":{"Timestamp":`...)
	b = strconv.AppendInt(b, ts, 10)
	b = append(b, `,"CloudWatchMetrics":[{`...)
	b = append(b, e.namespace...)
	b = append(b, `,"Dimensions":[[`...)
	b = append(b, e.dimNames...)
	for i, d := range extra {
		if i > 0 || len(e.dims) > 0 {
			b = append(b, ',')
		}
		b = appendString(b, d.Name)
	}
	b = append(b, `]],"Metrics":[`...)
	for i, m := range metrics {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"Name":`...)
		b = appendString(b, m.Name)
		if m.Unit != "" {
			b = append(b, `,"Unit":`...)
			b = appendString(b, string(m.Unit))
		}
		b = append(b, '}')
	}
	b = append(b, `]}]}`...)
	b = append(b, e.dimValues...)
	for _, d := range extra {
		b = append(b, ',')
		b = appendString(b, d.Name)
		b = append(b, ':')
		b = appendString(b, d.Value)
	}
	for _, m := range metrics {
		b = append(b, ',')
		b = appendString(b, m.Name)
		b = append(b, ':')
		b = appendFloat(b, m.Value)
	}
	return append(b, '}', '\n')
}

// checkDimensions checks dims, which must not repeat each other or base.
func checkDimensions(dims, base []Dimension) error {
	for i, d := range dims {
		switch {
		case d.Name == "" || len(d.Name) > maxDimensionNameLen:
			return fmt.Errorf("metrics: dimension name %q: want 1 to %d characters", d.Name, maxDimensionNameLen)
		case d.Name == "_aws":
			return errors.New(`metrics: dimension name "_aws" is reserved`)
		case d.Value == "" || utf8.RuneCountInString(d.Value) > maxDimensionLen:
			return fmt.Errorf("metrics: dimension %s: value %q: want 1 to %d characters", d.Name, d.Value, maxDimensionLen)
		}
		dup := func(o Dimension) bool { return o.Name == d.Name }
		if slices.ContainsFunc(dims[:i], dup) || slices.ContainsFunc(base, dup) {
			return fmt.Errorf("metrics: dimension %s given twice", d.Name)
		}
	}
	return nil
}

// checkMetrics checks a line's metrics: names unique and distinct from the
// dimensions (all are members of the same JSON object), values finite.
func checkMetrics(metrics []Metric, base, extra []Dimension) error {
	for i, m := range metrics {
		switch {
		case m.Name == "" || len(m.Name) > maxNameLen:
			return fmt.Errorf("metrics: metric name %q: want 1 to %d characters", m.Name, maxNameLen)
		case m.Name == "_aws":
			return errors.New(`metrics: metric name "_aws" is reserved`)
		case math.IsNaN(m.Value) || math.IsInf(m.Value, 0):
			return fmt.Errorf("metrics: metric %s: value %v is not a number JSON can carry", m.Name, m.Value)
		case m.Unit != "" && !slices.Contains(validUnits, m.Unit):
			return fmt.Errorf("metrics: metric %s: unit %q is not a CloudWatch unit", m.Name, m.Unit)
		}
		same := func(d Dimension) bool { return d.Name == m.Name }
		if slices.ContainsFunc(base, same) || slices.ContainsFunc(extra, same) {
			return fmt.Errorf("metrics: metric %s has the name of a dimension", m.Name)
		}
		for _, o := range metrics[:i] {
			if o.Name == m.Name {
				return fmt.Errorf("metrics: metric %s given twice in one line", m.Name)
			}
		}
	}
	return nil
}

// appendFloat writes v as a JSON number, as encoding/json does.
func appendFloat(b []byte, v float64) []byte {
	abs := math.Abs(v)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	return strconv.AppendFloat(b, v, format, -1, 64)
}

const hex = "0123456789abcdef"

// appendString writes s as a JSON string: quotes, backslashes and control
// characters escaped, invalid UTF-8 replaced by U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
