package bench

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// PhaseCost is what one phase of the benchmark cost per vote: CPU of this
// process and of the local Postgres server, over the phase's wall time.
type PhaseCost struct {
	Phase       string  `json:"phase"`
	Votes       int64   `json:"votes"`
	WallSeconds float64 `json:"wall_seconds"`
	// GoCPUSeconds is this process's user+system CPU over the phase
	// (getrusage RUSAGE_SELF): the functions, the harness and, unless
	// KAFKA_BROKERS is set, the embedded broker.
	GoCPUSeconds float64 `json:"go_cpu_seconds"`
	// PGCPUSeconds is the user+system CPU of every process of the local
	// Postgres server (read from /proc; exited backends through the
	// postmaster's reaped-children time), whoever's work it was; PGKnown
	// is false when /proc shows no Postgres processes.
	PGCPUSeconds float64 `json:"pg_cpu_seconds"`
	PGKnown      bool    `json:"pg_cpu_known"`
	// PGOwnCPUSeconds is the part of PGCPUSeconds spent by the backends
	// connected to this phase's scratch database (alive at its end):
	// without the server's background processes and other clients.
	PGOwnCPUSeconds float64 `json:"pg_own_backends_cpu_seconds"`
	// Per vote, in microseconds of CPU.
	GoMicrosPerVote    float64 `json:"go_cpu_us_per_vote"`
	PGMicrosPerVote    float64 `json:"pg_cpu_us_per_vote"`
	PGOwnMicrosPerVote float64 `json:"pg_own_backends_cpu_us_per_vote"`
	// CoresBusy is (Go CPU + Postgres CPU) / wall seconds.
	CoresBusy float64 `json:"cores_busy"`
	// WALBytesPerVote is how far the server's write-ahead log advanced over
	// the phase, per vote (pg_current_wal_lsn; the whole server's, like
	// PGCPUSeconds): what the database writes to disk for a vote.
	WALBytesPerVote float64 `json:"wal_bytes_per_vote"`
	WALKnown        bool    `json:"wal_known"`
}

// activeWall sets the phase's wall time to seconds, from its start to its
// last invocation's end (its CPU is sampled until the harness returned,
// which adds only the harness's idle polling), and cores busy with it.
func (c *PhaseCost) activeWall(seconds float64) {
	if seconds <= 0 {
		return
	}
	c.WallSeconds = seconds
	c.CoresBusy = (c.GoCPUSeconds + c.PGCPUSeconds) / seconds
}

// The phases whose cost Run measures.
const (
	PhaseStatement      = "tally statement alone"
	PhaseElection       = "election, full speed"
	PhaseDrain          = "tally drain"
	PhaseDrainNoResults = "tally drain, no results by state"
	PhasePaced          = "election at the latency rate"
)

// phaseOrder is the order the phases are printed in.
var phaseOrder = []string{PhaseStatement, PhaseElection, PhaseDrain, PhaseDrainNoResults, PhasePaced}

// userHZ is the unit of the CPU times in /proc/<pid>/stat (USER_HZ, 100 on
// every Linux architecture Go supports).
const userHZ = 100

// cpuSample is the CPU used so far by this process and by the local
// Postgres server's processes.
type cpuSample struct {
	at    time.Time
	goCPU time.Duration
	pgOK  bool
	pg    int64          // ticks: every postgres process, with reaped children
	procs map[int]pgProc // live postgres processes
	db    string         // the scratch database whose backends are "own"
	dsn   string
	wal   int64 // the server's WAL position (bytes); -1 when unknown
}

type pgProc struct {
	ticks int64 // utime+stime
	db    bool  // a backend of the sample's database
}

// startCost samples the CPU and the WAL position at the start of a phase on
// the database at dsn.
func startCost(dsn string) cpuSample {
	s := sampleCPU(dbName(dsn))
	s.dsn, s.wal = dsn, walPosition(dsn)
	return s
}

// walPosition returns the server's current WAL position in bytes, or -1.
func walPosition(dsn string) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return -1
	}
	defer conn.Close(ctx)
	var pos int64
	if err := conn.QueryRow(ctx, `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint`).Scan(&pos); err != nil {
		return -1
	}
	return pos
}

// end samples again and returns the phase's cost for votes votes.
func (a cpuSample) end(phase string, votes int64) PhaseCost {
	b := sampleCPU(a.db)
	wal := walPosition(a.dsn)
	c := PhaseCost{Phase: phase, Votes: votes, WallSeconds: b.at.Sub(a.at).Seconds(),
		GoCPUSeconds: (b.goCPU - a.goCPU).Seconds(), PGKnown: a.pgOK && b.pgOK}
	if c.PGKnown {
		c.PGCPUSeconds = float64(b.pg-a.pg) / userHZ
		var own int64
		for pid, p := range b.procs {
			if p.db {
				own += p.ticks - a.procs[pid].ticks // 0 for a backend started in the phase
			}
		}
		c.PGOwnCPUSeconds = float64(own) / userHZ
	}
	if a.wal >= 0 && wal >= a.wal && votes > 0 {
		c.WALKnown, c.WALBytesPerVote = true, float64(wal-a.wal)/float64(votes)
	}
	if votes > 0 {
		c.GoMicrosPerVote = c.GoCPUSeconds * 1e6 / float64(votes)
		c.PGMicrosPerVote = c.PGCPUSeconds * 1e6 / float64(votes)
		c.PGOwnMicrosPerVote = c.PGOwnCPUSeconds * 1e6 / float64(votes)
	}
	if c.WallSeconds > 0 {
		c.CoresBusy = (c.GoCPUSeconds + c.PGCPUSeconds) / c.WallSeconds
	}
	return c
}

func sampleCPU(db string) cpuSample {
	s := cpuSample{at: time.Now(), db: db, procs: map[int]pgProc{}}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.goCPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return s
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone, or not ours to read
		}
		comm, times, ok := parseStat(stat)
		if !ok {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if !isPostgres(comm, cmdline) {
			continue
		}
		s.pgOK = true
		// utime+stime of the process, plus cutime+cstime: the CPU of its
		// children it has reaped (the postmaster's exited backends).
		s.pg += times[0] + times[1] + times[2] + times[3]
		s.procs[pid] = pgProc{ticks: times[0] + times[1], db: db != "" && backendOf(cmdline, db)}
	}
	return s
}

// parseStat returns the comm of a /proc/<pid>/stat line and its utime,
// stime, cutime and cstime (fields 14–17).
func parseStat(b []byte) (comm string, times [4]int64, ok bool) {
	open, close := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || close < open {
		return "", times, false
	}
	f := strings.Fields(string(b[close+1:]))
	if len(f) < 15 { // f[0] is field 3 (state)
		return "", times, false
	}
	for i := range times {
		v, err := strconv.ParseInt(f[11+i], 10, 64)
		if err != nil {
			return "", times, false
		}
		times[i] = v
	}
	return string(b[open+1 : close]), times, true
}

// isPostgres reports whether a process is one of a Postgres server's: the
// postmaster (…/bin/postgres) or a child that retitled itself "postgres: …".
func isPostgres(comm string, cmdline []byte) bool {
	if comm == "postgres" {
		return true
	}
	arg0, _, _ := bytes.Cut(cmdline, []byte{0})
	return bytes.HasPrefix(arg0, []byte("postgres:")) || bytes.HasSuffix(arg0, []byte("/postgres"))
}

// backendOf reports whether a backend's title ("postgres: [cluster: ]user
// database host(port) state", "postgres: autovacuum worker database")
// names database db.
func backendOf(cmdline []byte, db string) bool {
	return slices.Contains(strings.Fields(strings.ReplaceAll(string(cmdline), "\x00", " ")), db)
}

// dbName is the database named in a postgres:// URL.
func dbName(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return ""
	}
	return strings.TrimPrefix(u.Path, "/")
}
