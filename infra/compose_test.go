package infra_test

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/votingpipe/voting/shared/broker"
)

const composePath = "../docker-compose.yml"

type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Ports       []string          `yaml:"ports"`
		Environment map[string]string `yaml:"environment"`
		Volumes     []string          `yaml:"volumes"`
		Healthcheck *struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
		DependsOn map[string]struct {
			Condition string `yaml:"condition"`
		} `yaml:"depends_on"`
		Command []string `yaml:"command"`
	} `yaml:"services"`
	Volumes  map[string]any `yaml:"volumes"`
	Networks map[string]struct {
		Name string `yaml:"name"`
	} `yaml:"networks"`
}

// TestDockerCompose checks that docker-compose.yml runs Kafka in KRaft mode
// and Postgres with a volume and health checks, creates exactly the
// pipeline's topics, and matches the defaults `go run ./local` uses with
// KAFKA_BROKERS=localhost:9092. When docker-compose is installed it also
// validates the file with `docker-compose config -q` (no engine needed).
func TestDockerCompose(t *testing.T) {
	b, err := os.ReadFile(composePath)
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if svc, _ := yaml.Marshal(c.Services); strings.Contains(strings.ToLower(string(svc)), "zookeeper") {
		t.Error("a service uses ZooKeeper; Kafka must run in KRaft mode")
	}
	kafka, ok := c.Services["kafka"]
	if !ok {
		t.Fatal("no kafka service")
	}
	if !strings.Contains(kafka.Environment["KAFKA_PROCESS_ROLES"], "controller") {
		t.Errorf("kafka is not its own KRaft controller: KAFKA_PROCESS_ROLES=%q", kafka.Environment["KAFKA_PROCESS_ROLES"])
	}
	if !strings.Contains(kafka.Environment["KAFKA_ADVERTISED_LISTENERS"], "HOST://localhost:${KAFKA_PORT:-9092}") {
		t.Errorf("kafka does not advertise localhost:9092 to the host: %s", kafka.Environment["KAFKA_ADVERTISED_LISTENERS"])
	}
	pg, ok := c.Services["postgres"]
	if !ok {
		t.Fatal("no postgres service")
	}
	for name, svc := range map[string]bool{"kafka": true, "postgres": true} {
		s := c.Services[name]
		if svc && (s.Healthcheck == nil || len(s.Healthcheck.Test) == 0) {
			t.Errorf("%s has no healthcheck", name)
		}
		if len(s.Volumes) == 0 {
			t.Errorf("%s keeps no data in a volume", name)
		}
		for _, v := range s.Volumes {
			if _, ok := c.Volumes[strings.SplitN(v, ":", 2)[0]]; !ok {
				t.Errorf("%s: volume %s is not a named volume", name, v)
			}
		}
	}

	// Postgres is what DATABASE_URL defaults to.
	def := defaultConfig(t)
	u, err := url.Parse(def.Database.URL)
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := u.User.Password()
	if pg.Environment["POSTGRES_USER"] != u.User.Username() || pg.Environment["POSTGRES_PASSWORD"] != pw ||
		pg.Environment["POSTGRES_DB"] != strings.TrimPrefix(u.Path, "/") {
		t.Errorf("postgres user/password/db %s/%s/%s do not match the default DATABASE_URL", pg.Environment["POSTGRES_USER"],
			pg.Environment["POSTGRES_PASSWORD"], pg.Environment["POSTGRES_DB"])
	}
	if len(pg.Ports) != 1 || !strings.HasSuffix(pg.Ports[0], ":${POSTGRES_PORT:-"+u.Port()+"}:5432") {
		t.Errorf("postgres ports %v do not publish the default port %s", pg.Ports, u.Port())
	}

	// The topics service creates the pipeline's topics, compacted where the
	// pipeline compacts them, after Kafka is healthy.
	topics, ok := c.Services["topics"]
	if !ok {
		t.Fatal("no topics service")
	}
	if topics.DependsOn["kafka"].Condition != "service_healthy" {
		t.Errorf("topics does not wait for a healthy kafka: %+v", topics.DependsOn)
	}
	script := strings.Join(topics.Command, "\n")
	created := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^\s*create (\S+)(.*)$`).FindAllStringSubmatch(script, -1) {
		created[m[1]] = strings.TrimSpace(m[2])
	}
	specs := broker.Topics(def.Topics, def.Kafka.Partitions)
	if len(created) != len(specs) {
		t.Errorf("topics service creates %d topics, the pipeline has %d", len(created), len(specs))
	}
	for _, s := range specs {
		opts, ok := created[s.Name]
		if !ok {
			t.Errorf("topic %s is not created", s.Name)
			continue
		}
		if compact := strings.Contains(opts, "cleanup.policy=compact"); compact != s.Compacted {
			t.Errorf("topic %s: compacted=%v, the pipeline wants %v", s.Name, compact, s.Compacted)
		}
	}
	if p := topics.Environment["PARTITIONS"]; p != fmt.Sprintf("${KAFKA_PARTITIONS:-%d}", def.Kafka.Partitions) {
		t.Errorf("topics partitions %s, want KAFKA_PARTITIONS defaulting to %d", p, def.Kafka.Partitions)
	}
	if c.Networks["default"].Name != "voting" {
		t.Errorf("the network is not named voting (infra/README.md's sam local invoke uses it)")
	}

	dc, err := exec.LookPath("docker-compose")
	if err != nil {
		t.Fatal("docker-compose is not installed: `apt-get install docker-compose` (no engine is needed; it validates docker-compose.yml offline with `config -q`; .ci/run installs it)")
	}
	out, err := exec.Command(dc, "-f", composePath, "config", "-q").CombinedOutput()
	if err != nil {
		t.Errorf("docker-compose config -q: %v\n%s", err, out)
	}
}
