package harness_test

// Bounded memory: the tally works through a backlog of votes with memory
// that does not grow with the backlog.

import (
	"bufio"
	"context"
	"fmt"
	"github.com/votingpipe/voting/shared/stream"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/votingpipe/voting/infra"
	"github.com/votingpipe/voting/local/harness"
)

// procStatus returns a field of /proc/self/status in bytes (VmRSS, VmHWM),
// or -1 where there is no /proc.
func procStatus(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return -1
			}
			return kb << 10
		}
	}
	return -1
}

// resetPeakRSS starts a new peak for VmHWM (Linux 4.0+); false if it cannot.
func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// memSampler records the peaks of the live heap (as of each GC) and of the
// heap in use while it runs.
type memSampler struct {
	stop       chan struct{}
	done       sync.WaitGroup
	mu         sync.Mutex
	peakLive   uint64
	peakInUse  uint64
	peakRSS    int64
	samples    int
	liveSample []metrics.Sample
}

func sampleMemory(every time.Duration) *memSampler {
	m := &memSampler{stop: make(chan struct{}), liveSample: []metrics.Sample{
		{Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/heap/objects:bytes"}}}
	m.done.Add(1)
	go func() {
		defer m.done.Done()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			m.read()
			select {
			case <-m.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return m
}

func (m *memSampler) read() {
	metrics.Read(m.liveSample)
	rss := procStatus("VmRSS")
	m.mu.Lock()
	defer m.mu.Unlock()
	m.peakLive = max(m.peakLive, m.liveSample[0].Value.Uint64())
	m.peakInUse = max(m.peakInUse, m.liveSample[1].Value.Uint64())
	m.peakRSS = max(m.peakRSS, rss)
	m.samples++
}

func (m *memSampler) finish() {
	close(m.stop)
	m.done.Wait()
}

func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

const mib = 1 << 20

// TestDrillBacklogMemory builds a backlog of votes on votes_topic (register
// and ballot run first, the tally not at all), then lets the tally work
// through it with its production batch size and measures the process's
// memory: the live Go heap must not grow with the backlog. The broker keeps
// its records on disk (as `go run ./local` does), so the process's memory is
// the harness's, the tally's and the broker's indexes.
//
// The normal variant has 100,000 votes and asserts a generous bound on the
// live heap's growth; -drill.long has 1,000,000 and reports the figures.
func TestDrillBacklogMemory(t *testing.T) {
	backlog := pick[int64](100_000, 1_000_000)
	env := drillEnv(t, 6, nil, harness.EnvOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), pick(3*time.Minute, 30*time.Minute))
	defer cancel()

	began := time.Now()
	if _, err := registerElection(ctx, env, backlog, 0); err != nil {
		t.Fatal(err)
	}
	ballot := startFunction(t, env, infra.Ballot, 0)
	eventually(t, pick(2*time.Minute, 20*time.Minute), "the backlog is cast", func() (bool, error) {
		return topicEnd(t, env, env.Config.Topics.Votes) >= backlog, nil
	})
	if err := ballot.stop(); err != nil {
		t.Fatal(err)
	}
	var backlogBytes int64
	eachRecord(t, env, env.Config.Topics.Votes, func(r *stream.Record) { backlogBytes += int64(len(r.Value) + len(r.Key)) })
	prepared := time.Since(began)

	runtime.GC()
	debug.FreeOSMemory()
	baseLive, baseRSS := liveHeap(), procStatus("VmRSS")
	peakReset := resetPeakRSS()
	m := sampleMemory(20 * time.Millisecond)
	tallyStart := time.Now()
	tally := startFunction(t, env, infra.Tally, 0)
	eventually(t, pick(2*time.Minute, 20*time.Minute), "the backlog is tallied", func() (bool, error) {
		if n := count(t, env, `SELECT count(*) FROM votes`); n != backlog {
			return false, fmt.Errorf("%d of %d", n, backlog)
		}
		return caughtUp(ctx, env, mustGroup(t, infra.Tally))
	})
	took := time.Since(tallyStart)
	m.finish()
	hwm := procStatus("VmHWM")
	if err := tally.stop(); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	after := liveHeap()
	auditOK(t, env, backlog)

	growth := int64(m.peakLive) - int64(baseLive)
	retained := int64(after) - int64(baseLive)
	peakRSS := m.peakRSS
	if peakReset && hwm > 0 {
		peakRSS = hwm
	}
	t.Logf("backlog memory drill: %d votes (%.0f MiB of records) tallied in %.1fs (%.0f votes/s; backlog built in %.1fs)",
		backlog, float64(backlogBytes)/mib, took.Seconds(), float64(backlog)/took.Seconds(), prepared.Seconds())
	t.Logf("  live Go heap: %.0f MiB before, peak %.0f MiB (+%.0f MiB), %.0f MiB after; heap objects peak %.0f MiB; RSS %.0f MiB before, peak %.0f MiB (%s); %d samples",
		float64(baseLive)/mib, float64(m.peakLive)/mib, float64(growth)/mib, float64(after)/mib, float64(m.peakInUse)/mib,
		float64(baseRSS)/mib, float64(peakRSS)/mib, map[bool]string{true: "VmHWM while tallying", false: "sampled VmRSS"}[peakReset && hwm > 0], m.samples)

	// Nothing is retained once the backlog is counted (no memory that grows
	// with the votes counted), and while counting the heap holds the
	// trigger's fetch buffers and batches, bounded per partition (generously
	// here; see the figures above and of -drill.long for the real ones).
	if retained > 128*mib {
		t.Errorf("the live heap is %d MiB larger after tallying the backlog than before", retained/mib)
	}
	if growth > 1024*mib {
		t.Errorf("the live heap grew by %d MiB while tallying a %d MiB backlog; want under 1 GiB", growth/mib, backlogBytes/mib)
	}
}
