package election

import (
	"fmt"
	"maps"
	"slices"
	"sync"
)

// Starts says where an election's own records begin: for each topic and
// partition, the offset of its first record (the partition's end offset
// when the election was registered). Topics outlive elections, so the
// records before a start belong to earlier elections: stages skip them,
// neither counting nor rejecting them, and the audit accounts for every
// offset from the start on.
type Starts map[string]map[int32]int64

// Of returns the first offset of the election on a topic-partition; 0 when
// none was recorded (an election registered before starts were recorded
// owns every record).
func (s Starts) Of(topic string, partition int32) int64 {
	return s[topic][partition]
}

// Set records the first offset of a topic-partition.
func (s Starts) Set(topic string, partition int32, offset int64) {
	if s[topic] == nil {
		s[topic] = map[int32]int64{}
	}
	s[topic][partition] = offset
}

// Skips reports whether the record at offset of a topic-partition is before
// the election's start.
func (s Starts) Skips(topic string, partition int32, offset int64) bool {
	return offset < s.Of(topic, partition)
}

// Sum returns the records of topic that precede the election.
func (s Starts) Sum(topic string) int64 {
	var n int64
	for _, o := range s[topic] {
		n += o
	}
	return n
}

// String lists the starts in a stable order, e.g. "votes_topic/0@170".
func (s Starts) String() string {
	var out []string
	for _, t := range slices.Sorted(maps.Keys(s)) {
		for _, p := range slices.Sorted(maps.Keys(s[t])) {
			out = append(out, fmt.Sprintf("%s/%d@%d", t, p, s[t][p]))
		}
	}
	return fmt.Sprint(out)
}

// Carrier is what carries an election's records: a transport ("kafka" or
// "nats") and the broker within it (a Kafka cluster ID; a NATS server and
// stream prefix). An election is audited and resumed on its own carrier.
type Carrier struct {
	Transport string
	Broker    string
}

// Known reports whether the carrier was recorded (elections registered
// before carriers were recorded have none).
func (c Carrier) Known() bool { return c.Transport != "" }

func (c Carrier) String() string {
	if !c.Known() {
		return "an unrecorded transport"
	}
	return fmt.Sprintf("%s (%s)", c.Transport, c.Broker)
}

// SkipCounter counts, per topic-partition, the records skipped because
// they precede the election's start, so that a stage can report the skip
// once: when the partition reaches the election's own records. It is safe
// for concurrent use.
type SkipCounter struct {
	mu sync.Mutex
	m  map[string]map[int32]*SkipRun
}

// SkipRun is one partition's run of skipped records.
type SkipRun struct {
	Count    int64
	From, To int64 // first and last offset skipped
	reported bool
}

// Note records that the first n of a partition's batch (whose offsets are
// from..to, the last of them being the batch's last record when rest is 0)
// were skipped, rest records of it being the election's own. It returns
// the run to report when this is the moment to report it (the partition
// has reached the election's first record), once per run.
func (c *SkipCounter) Note(topic string, partition int32, start int64, skippedFrom, skippedTo int64, n, rest int) (SkipRun, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]map[int32]*SkipRun{}
	}
	if c.m[topic] == nil {
		c.m[topic] = map[int32]*SkipRun{}
	}
	r := c.m[topic][partition]
	if r == nil {
		r = &SkipRun{From: -1}
		c.m[topic][partition] = r
	}
	if n > 0 {
		if r.From < 0 {
			r.From = skippedFrom
		}
		r.Count += int64(n)
		r.To = skippedTo
	}
	if r.reported || r.Count == 0 || (rest == 0 && r.To < start-1) {
		return SkipRun{}, false
	}
	r.reported = true
	return *r, true
}

// Reset forgets every run (the election changed).
func (c *SkipCounter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m = nil
}
