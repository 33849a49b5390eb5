package main

// The command line as a user runs it: the program built once, run as
// separate processes with the environment a user gives it, its exit status
// and output checked.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/votingpipe/voting/local/internal/testkit"
	"github.com/votingpipe/voting/local/natsbridge"
)

var binary struct {
	once sync.Once
	path string
	err  error
}

// program builds the command once per test binary.
func program(t *testing.T) string {
	t.Helper()
	binary.once.Do(func() {
		dir, err := os.MkdirTemp("", "voting-cli")
		if err != nil {
			binary.err = err
			return
		}
		binary.path = filepath.Join(dir, "local")
		out, err := exec.Command("go", "build", "-o", binary.path, ".").CombinedOutput()
		if err != nil {
			binary.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binary.err != nil {
		t.Fatal(binary.err)
	}
	return binary.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binary.path != "" {
		os.RemoveAll(filepath.Dir(binary.path))
	}
	os.Exit(code)
}

// user is a user's shell: a working directory, the environment, a database.
type user struct {
	t   *testing.T
	dir string
	env []string
	dsn string
}

func newUser(t *testing.T, vars ...string) *user {
	t.Helper()
	dsn := testkit.NewDatabase(t)
	u := &user{t: t, dir: t.TempDir(), dsn: dsn}
	u.env = append(os.Environ(), "DATABASE_URL="+dsn, "LOG_LEVEL=warn", "GOMEMLIMIT=512MiB")
	u.env = append(u.env, vars...)
	return u
}

// run runs the program with args and returns its exit status and output.
func (u *user) run(args ...string) (int, string) {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, program(u.t), args...)
	cmd.Dir, cmd.Env = u.dir, u.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), out.String()
	}
	u.t.Fatalf("%v: %v\n%s", args, err, out.String())
	return -1, ""
}

func (u *user) sql(query string) {
	u.t.Helper()
	conn, err := pgx.Connect(context.Background(), u.dsn)
	if err != nil {
		u.t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), query); err != nil {
		u.t.Fatal(err)
	}
}

func TestHelpExitsZeroAndDescribesEveryCommand(t *testing.T) {
	u := newUser(t)
	code, out := u.run("--help")
	if code != 0 {
		t.Fatalf("--help exited %d:\n%s", code, out)
	}
	for _, want := range []string{"audit", "bench", "invoke", "reset", "--voters", "--until-done", "--transport", "--state-dir"} {
		if !strings.Contains(out, want) {
			t.Errorf("--help does not mention %s:\n%s", want, out)
		}
	}
	for _, cmd := range []string{"audit", "bench", "invoke", "reset"} {
		if code, out := u.run(cmd, "--help"); code != 0 || !strings.Contains(out, "Usage:") {
			t.Errorf("%s --help exited %d:\n%s", cmd, code, out)
		}
	}
	if code, out := u.run("--no-such-flag"); code == 0 || !strings.Contains(out, "--help") {
		t.Errorf("an unknown flag exited %d:\n%s", code, out)
	}
}

func TestConfigurationErrorsNameTheVariableOnce(t *testing.T) {
	u := newUser(t, "KAFKA_PARTITIONS=abc", "LOG_FORMAT=xml")
	code, out := u.run("audit")
	if code == 0 {
		t.Fatalf("a bad configuration exited 0:\n%s", out)
	}
	if n := strings.Count(out, "KAFKA_PARTITIONS"); n != 1 || !strings.Contains(out, `"abc" is not a whole number`) {
		t.Errorf("KAFKA_PARTITIONS is named %d times, want once with what it should be:\n%s", n, out)
	}
	if !strings.Contains(out, "LOG_FORMAT") {
		t.Errorf("not every problem is reported:\n%s", out)
	}
}

// An election to the end, then the audit as a command: clean, then after a
// tally shard is tampered with, failing with exit 1; --until-done exits
// non-zero when its audit fails; invoke exits non-zero on a handler error.
func TestExitStatuses(t *testing.T) {
	u := newUser(t)
	code, out := u.run("--voters", "300", "--until-done", "--partitions", "2")
	if code != 0 || !strings.Contains(out, "audit: OK") {
		t.Fatalf("the election exited %d:\n%s", code, out)
	}
	if !strings.Contains(out, "300 of 300 votes tallied") {
		t.Errorf("summary:\n%s", out)
	}
	if code, out := u.run("audit"); code != 0 {
		t.Fatalf("a clean audit exited %d:\n%s", code, out)
	}
	u.sql(`UPDATE tally_candidate SET votes = votes + 1 WHERE shard = 0`)
	code, out = u.run("audit")
	if code != 1 || !strings.Contains(out, "MISMATCH") {
		t.Fatalf("audit of a tampered shard exited %d:\n%s", code, out)
	}
	code, out = u.run("--voters", "300", "--until-done", "--partitions", "2")
	if code == 0 || !strings.Contains(out, "audit: MISMATCH") {
		t.Fatalf("--until-done with a failing audit exited %d:\n%s", code, out)
	}
	bad := filepath.Join(u.dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"records": "not a map"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := u.run("invoke", "tally", "-e", bad); code == 0 || !strings.Contains(out, "tally returned an error") {
		t.Fatalf("invoke with a handler error exited %d:\n%s", code, out)
	}
	if code, out := u.run("invoke", "register", "-e", bad); code == 0 {
		t.Fatalf("invoke register with a bad request exited 0:\n%s", out)
	}
}

// A new user's first hour: an election, the database dropped, a second
// election in the same checkout (the state directory left by the first),
// then reset and a third.
func TestStartingOver(t *testing.T) {
	u := newUser(t)
	if code, out := u.run("--voters", "400", "--until-done", "--partitions", "3"); code != 0 {
		t.Fatalf("first election exited %d:\n%s", code, out)
	}
	u.sql(`DROP SCHEMA public CASCADE; CREATE SCHEMA public`) // as good as a new database
	code, out := u.run("--voters", "700", "--until-done", "--partitions", "3")
	if code != 0 || !strings.Contains(out, "700 of 700 votes tallied, 0 rejected") || !strings.Contains(out, "audit: OK") {
		t.Fatalf("the second election on the first's state directory exited %d:\n%s", code, out)
	}
	if !strings.Contains(out, "earlier elections") {
		t.Errorf("the audit does not say records of earlier elections were left out:\n%s", out)
	}
	if code, out := u.run("reset"); code == 0 || !strings.Contains(out, "would drop") {
		t.Errorf("reset without --yes exited %d:\n%s", code, out)
	}
	if code, out := u.run("reset", "--yes"); code != 0 || !strings.Contains(out, "reset: done") {
		t.Fatalf("reset --yes exited %d:\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(u.dir, ".voting", "kafka")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("reset left the embedded broker's state: %v", err)
	}
	code, out = u.run("--voters", "250", "--seed", "7", "--until-done", "--partitions", "3")
	if code != 0 || !strings.Contains(out, "250 of 250 votes tallied, 0 rejected") {
		t.Fatalf("the election after reset exited %d:\n%s", code, out)
	}
}

// On NATS, the election remembers its transport (audit needs no flag,
// another transport is refused naming both), and two harnesses started
// together, each running the tally, share the work.
func TestNATSTransportRememberedAndShared(t *testing.T) {
	prefix := fmt.Sprintf("cli%d_", time.Now().UnixNano()%1_000_000)
	u := newUser(t, "NATS_STREAM_PREFIX="+prefix, "KAFKA_PARTITIONS=4")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		b, err := natsbridge.Connect(ctx, natsbridge.Options{URL: "nats://127.0.0.1:4222", Prefix: prefix, Partitions: 4})
		if err != nil {
			return
		}
		defer b.Close()
		b.DeleteStreams(ctx, "voters_topic", "votes_topic", "aggregated_votes_per_candidate", "aggregated_turnout_by_location", "votes_dlq", "voters_dlq") //nolint:errcheck
	})
	type result struct {
		code int
		out  string
	}
	var wg sync.WaitGroup
	tallies := make([]result, 2)
	for i := range tallies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tallies[i].code, tallies[i].out = u.run("--transport", "nats", "--functions", "tally", "--until-done")
		}()
	}
	// The votes come at a pace, so both tallies are up while they come.
	code, out := u.run("--transport", "nats", "--functions", "register,ballot", "--voters", "6000", "--rate", "1500", "--until-done")
	wg.Wait()
	if code != 0 {
		t.Fatalf("register and ballot exited %d:\n%s", code, out)
	}
	for i, r := range tallies {
		if r.code != 0 || !strings.Contains(r.out, "audit: OK") {
			t.Fatalf("tally %d exited %d:\n%s", i, r.code, r.out)
		}
		var n int
		for _, line := range strings.Split(r.out, "\n") {
			if f := strings.Fields(line); len(f) > 2 && f[0] == "tally" && f[2] == "records" {
				fmt.Sscan(f[1], &n) //nolint:errcheck
			}
		}
		if n == 0 {
			t.Errorf("tally %d processed no records: the harnesses did not share the group\n%s", i, r.out)
		}
	}
	if code, out := u.run("audit"); code != 0 || !strings.Contains(out, "audit: OK") {
		t.Fatalf("audit (the election's transport) exited %d:\n%s", code, out)
	}
	if code, out := u.run("audit", "--transport", "kafka"); code == 0 || !strings.Contains(out, "nats") || !strings.Contains(out, "kafka") {
		t.Fatalf("audit on another transport exited %d:\n%s", code, out)
	}
}

func TestBenchFlags(t *testing.T) {
	u := newUser(t)
	code, out := u.run("bench", "--help")
	if code != 0 {
		t.Fatalf("bench --help exited %d:\n%s", code, out)
	}
	for _, want := range []string{"--repeat", "--memprofile", "--cpuprofile", "--json", "median"} {
		if !strings.Contains(out, want) {
			t.Errorf("bench --help does not mention %s:\n%s", want, out)
		}
	}
	if code, out := u.run("bench", "--repeat", "0"); code == 0 || !strings.Contains(out, "--repeat must be at least 1") {
		t.Errorf("bench --repeat 0 exited %d:\n%s", code, out)
	}
}
