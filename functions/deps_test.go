// Package functions_test checks which way the dependencies point (README,
// "Architecture"): each Lambda binary links only its own stage, and the
// domain links no adapter.
package functions_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/votingpipe/voting/"

// stages are the packages that only their own function may link.
var stages = map[string]string{
	"register":  "shared/register",
	"ballot":    "shared/ballot",
	"cast":      "shared/cast",
	"tally":     "shared/tally",
	"dashboard": "shared/dashboard",
}

// neverInAFunction are what the harness and the tests use, never a Lambda.
var neverInAFunction = []string{
	module + "local/",
	"github.com/twmb/franz-go/pkg/kfake",
	"github.com/nats-io/",
	"github.com/brianvoe/gofakeit",
}

// onlyIn are packages only the named functions link.
var onlyIn = map[string][]string{
	"github.com/go-echarts/":    {"dashboard"},
	module + "shared/generator": {"register"},
	module + "shared/tokens":    {"register", "cast"},
}

func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

func imports(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", `{{join .Imports " "}}`, pkg).Output()
	if err != nil {
		t.Fatalf("go list -f {{.Imports}} %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

func has(list []string, prefix string) bool {
	return slices.ContainsFunc(list, func(d string) bool { return d == prefix || strings.HasPrefix(d, prefix) })
}

// TestEachFunctionLinksItsOwnStage checks go list -deps of every function.
func TestEachFunctionLinksItsOwnStage(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatal("the go tool is needed to list the functions' dependencies:", err)
	}
	for fn, own := range stages {
		t.Run(fn, func(t *testing.T) {
			d := deps(t, module+"functions/"+fn)
			if !has(d, module+own) {
				t.Errorf("functions/%s does not link its stage %s", fn, own)
			}
			for other, pkg := range stages {
				if other != fn && slices.Contains(d, module+pkg) {
					t.Errorf("functions/%s links %s, the %s function's stage", fn, pkg, other)
				}
			}
			for _, bad := range neverInAFunction {
				if has(d, bad) {
					t.Errorf("functions/%s links %s", fn, bad)
				}
			}
			for pkg, allowed := range onlyIn {
				if has(d, pkg) && !slices.Contains(allowed, fn) {
					t.Errorf("functions/%s links %s (only %v should)", fn, pkg, allowed)
				}
			}
		})
	}
}

// TestTheDomainLinksNoAdapter checks that the records, rules and stage
// processors reach Postgres and the brokers only through interfaces, and
// that the store depends on nothing above it. (pgx is linked below the
// domain by shared/config alone, which parses DATABASE_URL as the driver
// will to report a bad one and to redact its password: the domain imports
// neither pgx nor any package that talks to Postgres.)
func TestTheDomainLinksNoAdapter(t *testing.T) {
	adapters := []string{module + "shared/store", module + "shared/broker", "github.com/twmb/franz-go"}
	domain := []string{"shared/election", "shared/stream"}
	above := []string{"shared/stream", "shared/broker", "local/", "functions/"}
	for _, s := range stages {
		domain, above = append(domain, s), append(above, s)
	}
	for _, pkg := range domain {
		d := deps(t, module+pkg)
		for _, a := range adapters {
			if has(d, a) {
				t.Errorf("%s depends on %s", pkg, a)
			}
		}
		if has(imports(t, module+pkg), "github.com/jackc/pgx") {
			t.Errorf("%s imports pgx", pkg)
		}
	}
	d := deps(t, module+"shared/store")
	for _, a := range above {
		if has(d, module+a) {
			t.Errorf("shared/store depends on %s, which is above it", a)
		}
	}
}
