package testkit

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// Chromium runs Debian's headless chromium on url with extra flags and
// returns what it prints (the DOM, with --dump-dom), after the page's
// scripts ran for 5 s of virtual time. Host names do not resolve (only
// loopback addresses are reachable). Without chromium the test skips,
// unless VOTING_REQUIRE_CHROMIUM=1 (as in CI), when it fails.
func Chromium(t testing.TB, url string, extra ...string) string {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if p := os.Getenv("VOTING_CHROMIUM"); p != "" {
		bin, err = p, nil
	}
	if err != nil {
		if os.Getenv("VOTING_REQUIRE_CHROMIUM") == "1" {
			t.Fatal("chromium is not installed (apt-get install chromium) and VOTING_REQUIRE_CHROMIUM=1")
		}
		t.Skip("chromium is not installed; apt-get install chromium to run the browser tests")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-extensions", "--mute-audio", "--hide-scrollbars",
		"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--user-data-dir=" + t.TempDir(),
		"--virtual-time-budget=5000", "--window-size=1280,2400",
	}, extra...)
	cmd := exec.CommandContext(ctx, bin, append(args, url)...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		if len(msg) > 2000 {
			msg = msg[len(msg)-2000:]
		}
		t.Fatalf("chromium: %v\n%s", err, msg)
	}
	return string(out)
}
