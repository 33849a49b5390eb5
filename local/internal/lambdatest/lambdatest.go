// Package lambdatest runs the functions' built bootstraps under the real
// Lambda runtime interface emulator (aws-lambda-rie, pinned by the tool line
// in go.mod), with no Docker: for tests that hold the binaries to what the
// handlers do in process.
package lambdatest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build compiles the bootstraps of functions as `make build` does, but for
// this machine's architecture, to dir/<function>/bootstrap, and the
// emulator to dir/aws-lambda-rie, whose path it returns. moduleRoot is the
// repository root, relative to the test's working directory.
func Build(moduleRoot, dir string, functions []string) (rie string, err error) {
	out := filepath.Join(dir, "out") + string(filepath.Separator)
	args := []string{"build", "-tags", "lambda.norpc", "-trimpath", "-ldflags", "-s -w", "-o", out}
	for _, fn := range functions {
		args = append(args, "./functions/"+fn)
	}
	cmd := exec.Command(goTool(), args...)
	cmd.Dir = moduleRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	for _, fn := range functions {
		if err := os.MkdirAll(filepath.Join(dir, fn), 0o755); err != nil {
			return "", err
		}
		if err := os.Rename(filepath.Join(dir, "out", fn), filepath.Join(dir, fn, "bootstrap")); err != nil {
			return "", err
		}
	}
	rie = filepath.Join(dir, "aws-lambda-rie")
	cmd = exec.Command(goTool(), "build", "-o", rie, "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie")
	cmd.Dir = moduleRoot
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build aws-lambda-rie (the go.mod tool): %v\n%s", err, b)
	}
	return rie, nil
}

func goTool() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); exists(p) {
		return p
	}
	return "go"
}

func exists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// Logs collects a process's output; safe for concurrent use.
type Logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Emulator is one bootstrap running under aws-lambda-rie.
type Emulator struct {
	// URL is where an invocation is POSTed.
	URL  string
	Logs *Logs
	cmd  *exec.Cmd
	done chan struct{}
}

// Start runs bootstrap under the emulator rie on free loopback ports, with
// exactly env (plus PATH and a HOME) as its environment, waits until it
// listens, and stops it (and the bootstrap) when t ends. Extra arguments go
// to the emulator before the bootstrap (e.g. "--log-level", "info").
func Start(t testing.TB, rie, bootstrap string, env map[string]string, extra ...string) *Emulator {
	t.Helper()
	var ports [2]int
	for i := range ports {
		p, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = p
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	e := &Emulator{URL: "http://" + addr + "/2015-03-31/functions/function/invocations", Logs: &Logs{}, done: make(chan struct{})}
	args := append(append([]string{}, extra...), "--runtime-interface-emulator-address", addr,
		"--runtime-api-address", net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1])), "./bootstrap")
	cmd := exec.Command(rie, args...)
	cmd.Dir = filepath.Dir(bootstrap)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = e.Logs, e.Logs
	// Own process group: Stop ends the emulator and the bootstrap it runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	e.cmd = cmd
	go func() { cmd.Wait(); close(e.done) }() //nolint:errcheck // the exit status is irrelevant after Stop
	t.Cleanup(e.Stop)
	for deadline := time.Now().Add(20 * time.Second); ; {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return e
		}
		select {
		case <-e.done:
			t.Fatalf("%s: emulator exited at start:\n%s", bootstrap, e.Logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: emulator not listening on %s:\n%s", bootstrap, addr, e.Logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Done is closed when the emulator has exited.
func (e *Emulator) Done() <-chan struct{} { return e.done }

// Stop ends the emulator and the bootstrap (SIGTERM, then SIGKILL after 5 s).
func (e *Emulator) Stop() {
	pgid := -e.cmd.Process.Pid
	syscall.Kill(pgid, syscall.SIGTERM) //nolint:errcheck
	select {
	case <-e.done:
	case <-time.After(5 * time.Second):
		syscall.Kill(pgid, syscall.SIGKILL) //nolint:errcheck
		<-e.done
	}
	// The bootstrap may outlive the emulator by a moment; make sure it is gone.
	syscall.Kill(pgid, syscall.SIGKILL) //nolint:errcheck
}

// freePort returns a TCP port that is free on 127.0.0.1 right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
