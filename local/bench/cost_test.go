package bench

import "testing"

// A process name may hold spaces and parentheses: the CPU times are the
// fields after the last ')'.
func TestParseStat(t *testing.T) {
	line := []byte("4242 (post gres) (x)) S 1 4242 4242 0 -1 4194304 1 2 3 4 11 22 33 44 20 0 1 0 5 6 7\n")
	comm, times, ok := parseStat(line)
	if !ok || comm != "post gres) (x)" || times != [4]int64{11, 22, 33, 44} {
		t.Errorf("parseStat: %q %v %v", comm, times, ok)
	}
	if _, _, ok := parseStat([]byte("4242 (short) S 1")); ok {
		t.Error("a truncated line parsed")
	}
	title := []byte("postgres: 15/main: postgres voting_bench_p6_1 127.0.0.1(5432) idle\x00")
	if !isPostgres("postgres", title) || !backendOf(title, "voting_bench_p6_1") || backendOf(title, "voting_bench_p6") {
		t.Error("a backend of voting_bench_p6_1 is not recognised as such")
	}
	if !isPostgres("x", []byte("/usr/lib/postgresql/15/bin/postgres\x00-D\x00/data\x00")) || isPostgres("bash", []byte("bash\x00")) {
		t.Error("isPostgres")
	}
}
