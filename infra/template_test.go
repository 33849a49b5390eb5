package infra_test

import (
	"fmt"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/votingpipe/voting/infra"
	"github.com/votingpipe/voting/shared/config"
)

const templatePath = "../template.yaml"

// logicalID is a function's resource name in template.yaml.
func logicalID(function string) string {
	return strings.ToUpper(function[:1]) + function[1:] + "Function"
}

// deployed are the functions template.yaml deploys: infra.Functions and the
// cast function, which is not among them yet (once it is, it is not
// counted twice).
func deployed() []string {
	fns := slices.Clone(infra.Functions)
	if !slices.Contains(fns, infra.Cast) {
		fns = append(fns, infra.Cast)
	}
	return fns
}

// physicalIDs stand for what CloudFormation makes of the template's
// references once deployed, so that a value built from them can be checked
// as the function will see it (a URL, an ARN).
var physicalIDs = map[string]string{
	"ref:CastApi": "a1b2c3d4e5",
	"getatt:DashboardDistribution.DomainName": "d111111abcdef8.cloudfront.net",
	"ref:DashboardBucket":                     "voting-dashboardbucket-1a2b3c4d5e6f",
	"ref:TokensBucket":                        "voting-tokensbucket-6f5e4d3c2b1a",
	"ref:TokenKeySecret":                      "arn:aws:secretsmanager:us-east-1:123456789012:secret:TokenKeySecret-AbCdEf",
}

// physical returns v with the references replaced by physicalIDs; a
// reference it has no value for fails the test.
func physical(t *testing.T, v string) string {
	t.Helper()
	for ref, id := range physicalIDs {
		v = strings.ReplaceAll(v, ref, id)
	}
	if strings.Contains(v, "ref:") || strings.Contains(v, "getatt:") {
		t.Errorf("%q: give physicalIDs a deployed value for its reference", v)
	}
	return v
}

// castEnv is the cast function's configuration: the parts
// functions/cast/main.go composes.
type castEnv struct {
	config.Database
	config.Kafka
	config.Topics
	config.Records
	config.Tokens
	config.Cast
	config.Log
	config.AWS
}

// environment returns a function's template environment as the deployed
// function sees it.
func environment(t *testing.T, e *evaluator, res map[string]cfnResource, fn string) map[string]string {
	t.Helper()
	env := map[string]string{}
	for k, v := range function(t, e, res, logicalID(fn))["Environment"].(map[string]any)["Variables"].(map[string]any) {
		env[k] = physical(t, fmt.Sprint(v))
	}
	return env
}

// required are test values for the parameters that have no default.
var required = map[string]any{
	"KafkaBootstrapServers": "b-1.voting.abc123.c2.kafka.us-east-1.amazonaws.com:9098,b-2.voting.abc123.c2.kafka.us-east-1.amazonaws.com:9098",
	"VpcId":                 "vpc-0123456789abcdef0",
	"SubnetIds":             "subnet-0aaaaaaaaaaaaaaa1,subnet-0bbbbbbbbbbbbbbb2",
	"SecurityGroupIds":      "sg-0ccccccccccccccc3",
	"DatabaseUrl":           "postgres://voting.cluster-abc.us-east-1.rds.amazonaws.com:5432/voting?sslmode=require",
	"DatabaseSecretArn":     "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-0123-AbCdEf",
}

// scenario is one way to deploy the template.
type scenario struct {
	name   string
	values map[string]any
}

const clusterArn = "arn:aws:kafka:us-east-1:123456789012:cluster/voting/5a3c1d2e-7b8f-4e6a-9c0d-1f2e3a4b5c6d-2"

func scenarios() []scenario {
	with := func(extra map[string]any) map[string]any {
		m := map[string]any{}
		for k, v := range required {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	scram := "arn:aws:secretsmanager:us-east-1:123456789012:secret:AmazonMSK_voting-AbCdEf"
	return []scenario{
		{"MSK with IAM", with(map[string]any{"MskClusterArn": clusterArn})},
		{"MSK with SCRAM", with(map[string]any{"MskClusterArn": clusterArn, "KafkaAuth": "SCRAM", "KafkaScramSecretArn": scram,
			"SecretsKmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-4e5f-6789-abcd-ef0123456789"})},
		{"self-managed with SCRAM", with(map[string]any{"KafkaSource": "SelfManagedKafka", "KafkaAuth": "SCRAM", "KafkaScramSecretArn": scram})},
		{"self-managed without SASL", with(map[string]any{"KafkaSource": "SelfManagedKafka", "KafkaAuth": "NONE", "KafkaTls": "false"})},
	}
}

func defaultConfig(t *testing.T) config.Config {
	t.Helper()
	cfg, err := config.LoadFrom[config.Config](map[string]string{}, config.Local)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// function is a function resource with the Globals applied.
func function(t *testing.T, e *evaluator, res map[string]cfnResource, id string) map[string]any {
	t.Helper()
	r, ok := res[id]
	if !ok || r.Type != "AWS::Serverless::Function" {
		t.Fatalf("template.yaml has no function %s", id)
	}
	merged := map[string]any{}
	globals, _ := e.eval(t, e.tpl.Globals.Function).(map[string]any)
	for k, v := range globals {
		merged[k] = v
	}
	vars := map[string]any{}
	if env, ok := globals["Environment"].(map[string]any); ok {
		for k, v := range env["Variables"].(map[string]any) {
			vars[k] = v
		}
	}
	for k, v := range r.Properties {
		merged[k] = v
	}
	if env, ok := r.Properties["Environment"].(map[string]any); ok {
		for k, v := range env["Variables"].(map[string]any) {
			vars[k] = v
		}
	}
	merged["Environment"] = map[string]any{"Variables": vars}
	return merged
}

func TestTemplateFunctions(t *testing.T) {
	tpl := loadTemplate(t, templatePath)
	if tpl.Transform != "AWS::Serverless-2016-10-31" {
		t.Errorf("Transform is %v", tpl.Transform)
	}
	makefile, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	e := newEvaluator(t, tpl, scenarios()[0].values)
	res := e.resources(t)
	var fns []string
	for id, r := range res {
		if r.Type == "AWS::Serverless::Function" || r.Type == "AWS::Lambda::Function" {
			fns = append(fns, id)
		}
	}
	slices.Sort(fns)
	var want []string
	for _, fn := range deployed() {
		want = append(want, logicalID(fn))
	}
	slices.Sort(want)
	if !slices.Equal(fns, want) {
		t.Fatalf("functions %v, want %v", fns, want)
	}
	for _, fn := range deployed() {
		id := logicalID(fn)
		t.Run(fn, func(t *testing.T) {
			f := function(t, e, res, id)
			for prop, want := range map[string]string{"CodeUri": ".", "Handler": "bootstrap", "Runtime": "provided.al2023"} {
				if got := fmt.Sprint(f[prop]); got != want {
					t.Errorf("%s is %q, want %q", prop, got, want)
				}
			}
			if got := strs(f["Architectures"]); !slices.Equal(got, []string{"arm64"}) {
				t.Errorf("Architectures %v, want [arm64]", got)
			}
			if bm := res[id].Metadata["BuildMethod"]; bm != "makefile" {
				t.Errorf("Metadata.BuildMethod is %v, want makefile", bm)
			}
			// sam build runs `make build-<LogicalId>`, which must build this function for arm64.
			target := regexp.MustCompile(`(?m)^build-` + id + `:\s+SAM_FUNCTION := (\w+)$`).FindSubmatch(makefile)
			if target == nil || string(target[1]) != fn {
				t.Errorf("Makefile has no build-%s target building ./functions/%s", id, fn)
			}
			if _, ok := f["Policies"]; ok {
				t.Error("has SAM Policies; use its own role so that nothing unscoped is attached")
			}
			role := fmt.Sprint(f["Role"])
			if !strings.HasPrefix(role, "getatt:") || res[strings.TrimSuffix(strings.TrimPrefix(role, "getatt:"), ".Arn")].Type != "AWS::IAM::Role" {
				t.Errorf("Role is %s, want the Arn of a role of this template", role)
			}
			lg, _ := f["LoggingConfig"].(map[string]any)
			lgName := strings.TrimPrefix(fmt.Sprint(lg["LogGroup"]), "ref:")
			if r := res[lgName]; r.Type != "AWS::Logs::LogGroup" || r.Properties["RetentionInDays"] == nil {
				t.Errorf("LoggingConfig.LogGroup %v is not a log group of this template with a retention", lg["LogGroup"])
			}
			vpc, _ := f["VpcConfig"].(map[string]any)
			if len(strs(vpc["SubnetIds"])) < 2 || len(strs(vpc["SecurityGroupIds"])) < 1 {
				t.Errorf("VpcConfig %v", vpc)
			}
		})
	}
}

// TestTemplateConfiguration: for every way to deploy, the environment the
// template gives each function is a valid Lambda configuration (the cast
// function's also as its own parts), with the topics of the defaults, the
// Kafka security the parameters ask for, the token key for exactly the
// functions that hash tokens, the tokens bucket for register, the
// dashboard's origin for cast and the cast API's URL for the dashboard.
func TestTemplateConfiguration(t *testing.T) {
	tpl := loadTemplate(t, templatePath)
	def := defaultConfig(t)
	topicParams := map[string]string{
		"VotersTopic": def.Topics.Voters, "VotesTopic": def.Topics.Votes,
		"CandidateTotalsTopic": def.Topics.CandidateTotals, "TurnoutTotalsTopic": def.Topics.TurnoutTotals,
		"VotesDlqTopic": def.Topics.VotesDLQ, "VotersDlqTopic": def.Topics.VotersDLQ,
	}
	for p, want := range topicParams {
		if got := tpl.Parameters[p].Default; got != want {
			t.Errorf("parameter %s defaults to %v, config to %s", p, got, want)
		}
	}
	if d := fmt.Sprint(tpl.Parameters["KafkaPartitions"].Default); d != fmt.Sprint(def.Kafka.Partitions) {
		t.Errorf("KafkaPartitions defaults to %s, config to %d", d, def.Kafka.Partitions)
	}
	for _, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			e := newEvaluator(t, tpl, sc.values)
			res := e.resources(t)
			castURL := physical(t, fmt.Sprint(e.eval(t, tpl.Outputs["CastApiUrl"].Value)))
			for _, fn := range deployed() {
				env := environment(t, e, res, fn)
				cfg, err := config.LoadFrom[config.Config](env, config.Lambda)
				if err != nil {
					t.Errorf("%s: the template's environment is not a valid configuration: %v", fn, err)
					continue
				}
				if cfg.Topics != def.Topics {
					t.Errorf("%s: topics %+v, want the defaults %+v", fn, cfg.Topics, def.Topics)
				}
				if cfg.Database.SecretARN != required["DatabaseSecretArn"] {
					t.Errorf("%s: DATABASE_SECRET_ARN is %q", fn, cfg.Database.SecretARN)
				}
				wantMech := map[string]string{"IAM": "AWS_MSK_IAM", "SCRAM": "SCRAM-SHA-512", "NONE": ""}[fmt.Sprint(e.params["KafkaAuth"])]
				if cfg.Kafka.SASLMechanism != wantMech {
					t.Errorf("%s: KAFKA_SASL_MECHANISM %q, want %q", fn, cfg.Kafka.SASLMechanism, wantMech)
				}
				if fn == infra.Dashboard && cfg.Dashboard.Bucket != physicalIDs["ref:DashboardBucket"] {
					t.Errorf("dashboard: DASHBOARD_BUCKET is %q, want the template's bucket", cfg.Dashboard.Bucket)
				}
				// Register hashes the tokens it issues, cast the tokens it is
				// given: they, and only they, get the key.
				hashes := fn == infra.Register || fn == infra.Cast
				if got, want := cfg.Tokens.KeySecretARN, map[bool]string{true: physicalIDs["ref:TokenKeySecret"]}[hashes]; got != want {
					t.Errorf("%s: TOKEN_KEY_SECRET_ARN is %q, want %q", fn, got, want)
				}
				if got, want := cfg.Tokens.Bucket, map[bool]string{true: physicalIDs["ref:TokensBucket"]}[fn == infra.Register]; got != want {
					t.Errorf("%s: TOKENS_BUCKET is %q, want %q (register writes the tokens; nothing reads them)", fn, got, want)
				}
				switch fn {
				case infra.Dashboard:
					// ballot.html, the link and the QR code point at the API.
					if cfg.Cast.URL != castURL || cfg.Cast.PublicURL() != castURL {
						t.Errorf("dashboard: CAST_URL is %q, want the CastApiUrl output %q", cfg.Cast.URL, castURL)
					}
				case infra.Cast:
					env["AWS_REGION"], env["AWS_LAMBDA_FUNCTION_NAME"] = "us-east-1", "voting-CastFunction-1A2B3C" // as Lambda sets them
					c, err := config.LoadFrom[castEnv](env, config.Lambda)
					if err != nil {
						t.Errorf("cast: the template's environment is not a valid configuration of its parts: %v", err)
						break
					}
					if want := "https://" + physicalIDs["getatt:DashboardDistribution.DomainName"]; c.Cast.AllowedOrigin != want {
						t.Errorf("cast: CAST_ALLOWED_ORIGIN is %q, want the dashboard's origin %s", c.Cast.AllowedOrigin, want)
					}
					// One request per instance at a time: a pool of 2 keeps
					// instances x connections within what RDS allows.
					if c.Database.MaxConns > 2 {
						t.Errorf("cast: DATABASE_MAX_CONNS is %d; an instance serves one request at a time", c.Database.MaxConns)
					}
				}
			}
		})
	}
}

// TestTemplateMappings: every Kafka-triggered function has exactly one
// event-source mapping per deployment, with the topics, consumer group,
// batching, retries and failure destination of infra.Triggers and partial
// batch responses; register has none.
func TestTemplateMappings(t *testing.T) {
	tpl := loadTemplate(t, templatePath)
	def := defaultConfig(t)
	for _, tr := range infra.Triggers {
		if tr.OnFailure && tr.MaximumRetryAttempts < 0 {
			t.Errorf("%s: infinite retries with a failure destination; Lambda would cap them at 10", tr.Function)
		}
		if !tr.OnFailure && tr.MaximumRetryAttempts >= 0 {
			t.Errorf("%s: gives up after %d retries with nowhere to record the batch", tr.Function, tr.MaximumRetryAttempts)
		}
	}
	for _, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			e := newEvaluator(t, tpl, sc.values)
			msk := e.params["KafkaSource"] == "MSK"
			res := e.resources(t)
			byFunction := map[string][]map[string]any{}
			for id, r := range res {
				switch r.Type {
				case "AWS::Lambda::EventSourceMapping":
					fn := strings.TrimPrefix(fmt.Sprint(r.Properties["FunctionName"]), "ref:")
					byFunction[fn] = append(byFunction[fn], r.Properties)
				case "AWS::Serverless::Function":
					// The cast function's HttpApi routes are its only
					// events (TestTemplateCastApi).
					if ev, ok := r.Properties["Events"]; ok && id != logicalID(infra.Cast) {
						t.Errorf("%s has SAM Events %v; the mappings are EventSourceMapping resources", id, ev)
					}
				}
			}
			if m := byFunction[logicalID(infra.Register)]; len(m) != 0 {
				t.Errorf("register has %d mappings; it is invoked directly", len(m))
			}
			if m := byFunction[logicalID(infra.Cast)]; len(m) != 0 {
				t.Errorf("cast has %d mappings; it is invoked by its HTTP API", len(m))
			}
			for _, tr := range infra.Triggers {
				maps := byFunction[logicalID(tr.Function)]
				if len(maps) != 1 {
					t.Errorf("%s: %d event-source mappings, want 1", tr.Function, len(maps))
					continue
				}
				m := maps[0]
				if got, want := strs(m["Topics"]), []string{tr.Topic(def.Topics)}; !slices.Equal(got, want) {
					t.Errorf("%s: Topics %v, want %v", tr.Function, got, want)
				}
				groupCfg := "SelfManagedKafkaEventSourceConfig"
				if msk {
					groupCfg = "AmazonManagedKafkaEventSourceConfig"
					if m["EventSourceArn"] != clusterArn {
						t.Errorf("%s: EventSourceArn %v, want the MskClusterArn parameter", tr.Function, m["EventSourceArn"])
					}
				} else {
					eps := m["SelfManagedEventSource"].(map[string]any)["Endpoints"].(map[string]any)
					if got := strings.Join(strs(eps["KafkaBootstrapServers"]), ","); got != required["KafkaBootstrapServers"] {
						t.Errorf("%s: KafkaBootstrapServers %s", tr.Function, got)
					}
				}
				gc, _ := m[groupCfg].(map[string]any)
				if gc["ConsumerGroupId"] != tr.Group {
					t.Errorf("%s: %s.ConsumerGroupId %v, want %s", tr.Function, groupCfg, gc["ConsumerGroupId"], tr.Group)
				}
				if m["BatchSize"] != tr.BatchSize {
					t.Errorf("%s: BatchSize %v, want %d", tr.Function, m["BatchSize"], tr.BatchSize)
				}
				if w := m["MaximumBatchingWindowInSeconds"]; w != int(tr.Window/time.Second) {
					t.Errorf("%s: MaximumBatchingWindowInSeconds %v, want %d", tr.Function, w, int(tr.Window/time.Second))
				}
				if m["Enabled"] != "true" {
					t.Errorf("%s: Enabled %v, want the EnableKafkaTriggers parameter (default true)", tr.Function, m["Enabled"])
				}
				if m["StartingPosition"] != "TRIM_HORIZON" {
					t.Errorf("%s: StartingPosition %v, want TRIM_HORIZON (every vote counts)", tr.Function, m["StartingPosition"])
				}
				if !slices.Contains(strs(m["FunctionResponseTypes"]), "ReportBatchItemFailures") {
					t.Errorf("%s: FunctionResponseTypes %v lacks ReportBatchItemFailures", tr.Function, m["FunctionResponseTypes"])
				}
				// Lambda honours Kafka partial batch responses in provisioned mode only.
				if pp, _ := m["ProvisionedPollerConfig"].(map[string]any); pp["MinimumPollers"] == nil {
					t.Errorf("%s: no ProvisionedPollerConfig", tr.Function)
				}
				// Retries and the failure destination are the table's: a
				// batch the table says must never be skipped is retried
				// forever with no destination (with one, Lambda caps
				// infinite retries at 10 and then moves past the batch).
				if got := m["MaximumRetryAttempts"]; got != tr.MaximumRetryAttempts {
					t.Errorf("%s: MaximumRetryAttempts %v, want %d", tr.Function, got, tr.MaximumRetryAttempts)
				}
				if tr.MaximumRetryAttempts == -1 {
					if age, ok := m["MaximumRecordAgeInSeconds"]; ok && age != -1 {
						t.Errorf("%s: MaximumRecordAgeInSeconds %v skips old records; want -1 (retry forever)", tr.Function, age)
					}
				}
				dc, hasDC := m["DestinationConfig"].(map[string]any)
				of, _ := dc["OnFailure"].(map[string]any)
				switch {
				case tr.OnFailure && of["Destination"] != "getatt:FailedBatchesQueue.Arn":
					t.Errorf("%s: DestinationConfig %v, want OnFailure to FailedBatchesQueue", tr.Function, dc)
				case !tr.OnFailure && hasDC:
					t.Errorf("%s: DestinationConfig %v; the table says its batches are never skipped", tr.Function, dc)
				}
				var access []string
				sas, _ := m["SourceAccessConfigurations"].([]any)
				for _, sa := range sas {
					access = append(access, fmt.Sprint(sa.(map[string]any)["Type"]))
				}
				wantAccess := map[bool][]string{true: nil, false: {"VPC_SUBNET", "VPC_SUBNET", "VPC_SECURITY_GROUP"}}[msk]
				if e.params["KafkaAuth"] == "SCRAM" {
					wantAccess = append(slices.Clone(wantAccess), "SASL_SCRAM_512_AUTH")
				}
				if !slices.Equal(access, wantAccess) {
					t.Errorf("%s: SourceAccessConfigurations %v, want %v", tr.Function, access, wantAccess)
				}
			}
		})
	}
}

// unscopedActions may have Resource "*": they support no resource-level
// permissions (ec2:Describe* are list/read calls Lambda makes to manage the
// functions' network interfaces).
var unscopedActions = []string{"ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups", "ec2:DescribeVpcs"}

// TestTemplateLeastPrivilege: every allowed action is scoped to resources,
// and each function may touch exactly the topics, group, buckets and
// secrets it uses: the cast function exactly its log group, network
// interfaces, the database, SCRAM and token key secrets and the votes topic;
// register writes the tokens (and nothing else of their bucket) and reads
// the token key; nothing else may touch either.
func TestTemplateLeastPrivilege(t *testing.T) {
	tpl := loadTemplate(t, templatePath)
	def := defaultConfig(t)
	for _, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			e := newEvaluator(t, tpl, sc.values)
			res := e.resources(t)
			granted := map[string]map[string][]string{} // role -> action -> resources
			conditions := map[string]map[string][]any{} // role -> action -> its statements' conditions
			for id, r := range res {
				var docs []any
				switch r.Type {
				case "AWS::IAM::Role":
					for _, p := range r.Properties["Policies"].([]any) {
						docs = append(docs, p.(map[string]any)["PolicyDocument"])
					}
					if mp := r.Properties["ManagedPolicyArns"]; mp != nil {
						t.Errorf("%s has managed policies %v; their statements are not scoped", id, mp)
					}
				case "AWS::IAM::Policy", "AWS::S3::BucketPolicy", "AWS::SQS::QueuePolicy":
					docs = append(docs, r.Properties["PolicyDocument"])
				default:
					continue
				}
				granted[id] = map[string][]string{}
				conditions[id] = map[string][]any{}
				for _, d := range docs {
					for _, st := range d.(map[string]any)["Statement"].([]any) {
						s := st.(map[string]any)
						actions, resources := strs(s["Action"]), strs(s["Resource"])
						if s["Effect"] != "Allow" {
							continue
						}
						if len(resources) == 0 {
							t.Errorf("%s: %v has no Resource", id, actions)
						}
						for _, a := range actions {
							if strings.Contains(a, "*") {
								t.Errorf("%s: wildcard action %s", id, a)
							}
							for _, rsc := range resources {
								if rsc == "*" && !slices.Contains(unscopedActions, a) {
									t.Errorf("%s: %s on Resource \"*\"", id, a)
								}
								if rsc == "" || strings.HasSuffix(rsc, ":*") && !strings.Contains(rsc, ":log-group:") {
									t.Errorf("%s: %s on unscoped resource %q", id, a, rsc)
								}
							}
							granted[id][a] = append(granted[id][a], resources...)
							if c := s["Condition"]; c != nil {
								conditions[id][a] = append(conditions[id][a], c)
							}
						}
						if r.Type == "AWS::S3::BucketPolicy" && s["Condition"] == nil {
							t.Errorf("%s: allows %v with no condition", id, actions)
						}
					}
				}
			}

			kafka := e.params["KafkaAuth"] == "IAM"
			scram := e.params["KafkaAuth"] == "SCRAM"
			kmsKey, _ := e.params["SecretsKmsKeyArn"].(string)
			prefix := "arn:aws:kafka:us-east-1:123456789012:"
			cluster := strings.TrimPrefix(clusterArn, prefix+"cluster/")
			topicArn := func(topic string) string { return prefix + "topic/" + cluster + "/" + topic }
			produces := map[string][]string{
				infra.Register:  {def.Topics.Voters},
				infra.Ballot:    {def.Topics.Votes, def.Topics.VotersDLQ},
				infra.Tally:     {def.Topics.CandidateTotals, def.Topics.TurnoutTotals, def.Topics.VotesDLQ},
				infra.Dashboard: nil,
				infra.Cast:      {def.Topics.Votes},
			}
			sorted := func(l []string) []string { l = slices.Clone(l); slices.Sort(l); return l }
			viaService := func(role, action, service string) {
				t.Helper()
				want := map[string]any{"StringEquals": map[string]any{"kms:ViaService": service + ".us-east-1.amazonaws.com"}}
				if got := conditions[role][action]; len(got) != 1 || !reflect.DeepEqual(got[0], want) {
					t.Errorf("%s: %s conditions %v, want only through %s", role, action, got, service)
				}
			}
			for _, fn := range deployed() {
				role := strings.TrimSuffix(strings.TrimPrefix(fmt.Sprint(res[logicalID(fn)].Properties["Role"]), "getatt:"), ".Arn")
				g := granted[role]
				if g == nil {
					t.Errorf("%s: no role %s", fn, role)
					continue
				}
				// Secrets: the database's, SCRAM's when used, and the token
				// key for the two functions that hash tokens; exactly.
				wantSecrets := []string{fmt.Sprint(required["DatabaseSecretArn"])}
				if scram {
					wantSecrets = append(wantSecrets, fmt.Sprint(e.params["KafkaScramSecretArn"]))
				}
				if fn == infra.Register || fn == infra.Cast {
					wantSecrets = append(wantSecrets, "ref:TokenKeySecret")
				}
				if got := sorted(g["secretsmanager:GetSecretValue"]); !slices.Equal(got, sorted(wantSecrets)) {
					t.Errorf("%s: may read secrets %v, want exactly %v", fn, got, sorted(wantSecrets))
				}
				if kmsKey != "" {
					if got := g["kms:Decrypt"]; !slices.Equal(got, []string{kmsKey}) {
						t.Errorf("%s: kms:Decrypt on %v, want the secrets' key %s", fn, got, kmsKey)
					}
					viaService(role, "kms:Decrypt", "secretsmanager")
				} else if got := g["kms:Decrypt"]; len(got) > 0 {
					t.Errorf("%s: kms:Decrypt on %v with no SecretsKmsKeyArn", fn, got)
				}
				// Register's token objects are encrypted with the key when
				// there is one; nothing else writes to S3 with it.
				if fn == infra.Register && kmsKey != "" {
					if got := g["kms:GenerateDataKey"]; !slices.Equal(got, []string{kmsKey}) {
						t.Errorf("register: kms:GenerateDataKey on %v, want %s (SSE-KMS of the tokens)", got, kmsKey)
					}
					viaService(role, "kms:GenerateDataKey", "s3")
				} else if got := g["kms:GenerateDataKey"]; len(got) > 0 {
					t.Errorf("%s: kms:GenerateDataKey on %v", fn, got)
				}
				var written []string
				for _, r := range g["kafka-cluster:WriteData"] {
					written = append(written, r)
				}
				var want []string
				if kafka {
					for _, tp := range produces[fn] {
						want = append(want, topicArn(tp))
					}
				}
				slices.Sort(written)
				slices.Sort(want)
				if !slices.Equal(written, want) {
					t.Errorf("%s: may write %v, produces to %v", fn, written, want)
				}
				// Only register creates topics: all of them, when it starts.
				var creates, wantCreates []string
				creates = append(creates, g["kafka-cluster:CreateTopic"]...)
				if kafka && fn == infra.Register {
					for _, tp := range def.Topics.All() {
						wantCreates = append(wantCreates, topicArn(tp))
					}
				}
				slices.Sort(creates)
				slices.Sort(wantCreates)
				if !slices.Equal(creates, wantCreates) {
					t.Errorf("%s: may create topics %v, want %v", fn, creates, wantCreates)
				}
				tr, triggered := infra.TriggerFor(fn)
				var read, wantRead []string
				read = append(read, g["kafka-cluster:ReadData"]...)
				if kafka && triggered {
					for _, tp := range []string{tr.Topic(def.Topics)} {
						wantRead = append(wantRead, topicArn(tp))
					}
					if groups := g["kafka-cluster:AlterGroup"]; !slices.Equal(groups, []string{prefix + "group/" + cluster + "/" + tr.Group}) {
						t.Errorf("%s: may alter groups %v, want only %s", fn, groups, tr.Group)
					}
				}
				slices.Sort(read)
				slices.Sort(wantRead)
				if !slices.Equal(read, wantRead) {
					t.Errorf("%s: may read %v, consumes %v", fn, read, wantRead)
				}
				// Only a mapping with a failure destination sends to the queue
				// (Lambda sends with the function's role).
				if triggered && tr.OnFailure {
					if !slices.Equal(g["sqs:SendMessage"], []string{"getatt:FailedBatchesQueue.Arn"}) {
						t.Errorf("%s: cannot send failed batches to the queue: %v", fn, g["sqs:SendMessage"])
					}
				} else if send := g["sqs:SendMessage"]; len(send) > 0 {
					t.Errorf("%s: may send to %v, but its mapping has no failure destination", fn, send)
				}
				// S3: the dashboard writes its bucket, register the tokens
				// under the prefix its environment names; nothing else.
				wantPut := map[string][]string{
					infra.Dashboard: {"getatt:DashboardBucket.Arn/*"},
					infra.Register:  {"getatt:TokensBucket.Arn/" + environment(t, e, res, infra.Register)["TOKENS_PREFIX"] + "*"},
				}[fn]
				if put := g["s3:PutObject"]; !slices.Equal(put, wantPut) {
					t.Errorf("%s: s3:PutObject on %v, want %v", fn, put, wantPut)
				}
			}

			// The cast role, whole: nothing beyond what it needs.
			cast := granted["CastRole"]
			wantCast := map[string][]string{
				"logs:CreateLogStream":           {"getatt:CastLogGroup.Arn"},
				"logs:PutLogEvents":              {"getatt:CastLogGroup.Arn"},
				"secretsmanager:GetSecretValue":  nil, // checked above
				"ec2:DescribeNetworkInterfaces":  {"*"},
				"ec2:DescribeSubnets":            {"*"},
				"ec2:DescribeSecurityGroups":     {"*"},
				"ec2:DescribeVpcs":               {"*"},
				"ec2:CreateNetworkInterface":     nil, // the VPC's, as every function
				"ec2:DeleteNetworkInterface":     nil,
				"ec2:AssignPrivateIpAddresses":   nil,
				"ec2:UnassignPrivateIpAddresses": nil,
			}
			if kmsKey != "" {
				wantCast["kms:Decrypt"] = []string{kmsKey}
			}
			if kafka && e.params["KafkaSource"] == "MSK" {
				wantCast["kafka-cluster:Connect"] = []string{clusterArn}
				wantCast["kafka-cluster:WriteDataIdempotently"] = []string{clusterArn}
				wantCast["kafka-cluster:DescribeTopic"] = []string{topicArn(def.Topics.Votes)}
				wantCast["kafka-cluster:WriteData"] = []string{topicArn(def.Topics.Votes)}
			}
			if got, want := slices.Sorted(maps.Keys(cast)), slices.Sorted(maps.Keys(wantCast)); !slices.Equal(got, want) {
				t.Errorf("CastRole allows %v, want exactly %v", got, want)
			}
			for a, want := range wantCast {
				if want != nil && !slices.Equal(sorted(cast[a]), sorted(want)) {
					t.Errorf("CastRole: %s on %v, want %v", a, cast[a], want)
				}
			}
			for _, a := range []string{"ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface"} {
				if got := conditions["CastRole"][a]; len(got) != 1 || !strings.Contains(fmt.Sprint(got[0]), "vpc/"+fmt.Sprint(required["VpcId"])) {
					t.Errorf("CastRole: %s not limited to the VPC: %v", a, got)
				}
			}

			// Nothing else touches the tokens or their key: whatever grants
			// name the tokens bucket or the key secret are the ones above.
			for role, g := range granted {
				for a, rs := range g {
					for _, r := range rs {
						if strings.Contains(r, "TokensBucket") && !(role == "RegisterRole" && a == "s3:PutObject") {
							t.Errorf("%s: %s on %s; only register writes the tokens, and nothing reads them", role, a, r)
						}
						if r == "ref:TokenKeySecret" && !(a == "secretsmanager:GetSecretValue" && (role == "RegisterRole" || role == "CastRole")) {
							t.Errorf("%s: %s on the token key", role, a)
						}
					}
				}
			}
		})
	}
}

var (
	credentialsInURL = regexp.MustCompile(`://[^/\s:@]+:[^/\s@]+@`)
	accessKey        = regexp.MustCompile(`\b(AKIA|ASIA)[0-9A-Z]{16}\b`)
	passwordWord     = regexp.MustCompile(`(?i)(password|passwd|pwd)\s*[=:]\s*\S`)
)

// TestTemplateNoPlaintextSecrets: no credential is written in the template;
// the functions get the database and SCRAM credentials and the token key
// from Secrets Manager, never the key itself in their environment.
func TestTemplateNoPlaintextSecrets(t *testing.T) {
	tpl := loadTemplate(t, templatePath)
	raw := map[string]any{"Parameters": map[string]any{}, "Resources": map[string]any{}, "Globals": tpl.Globals.Function}
	for name, p := range tpl.Parameters {
		raw["Parameters"].(map[string]any)[name] = map[string]any{"Default": p.Default}
		lname := strings.ToLower(name)
		if (strings.Contains(lname, "password") || strings.Contains(lname, "secret")) && !strings.HasSuffix(lname, "arn") {
			if !p.NoEcho || p.Default != nil {
				t.Errorf("parameter %s looks like a secret: it must be NoEcho without a default", name)
			}
		}
	}
	for name, r := range tpl.Resources {
		raw["Resources"].(map[string]any)[name] = r.Properties
	}
	walkScalars("", raw, func(path, v string) {
		if credentialsInURL.MatchString(v) || accessKey.MatchString(v) || passwordWord.MatchString(v) {
			t.Errorf("%s: %q looks like a plain-text credential", path, v)
		}
	})
	for _, sc := range scenarios() {
		e := newEvaluator(t, tpl, sc.values)
		res := e.resources(t)
		for _, fn := range deployed() {
			vars := function(t, e, res, logicalID(fn))["Environment"].(map[string]any)["Variables"].(map[string]any)
			for k := range vars {
				if (strings.Contains(k, "PASSWORD") || strings.Contains(k, "SECRET")) && !strings.HasSuffix(k, "_ARN") {
					t.Errorf("%s (%s): environment variable %s carries a secret; use a *_SECRET_ARN", fn, sc.name, k)
				}
				if k == "TOKEN_KEY" {
					t.Errorf("%s (%s): TOKEN_KEY is the token key in clear; deployed functions read TOKEN_KEY_SECRET_ARN", fn, sc.name)
				}
			}
			if u := fmt.Sprint(vars["DATABASE_URL"]); credentialsInURL.MatchString(u) {
				t.Errorf("%s: DATABASE_URL %s carries credentials", fn, u)
			}
		}
	}
	// The DatabaseUrl parameter refuses a URL with credentials.
	pat := regexp.MustCompile(tpl.Parameters["DatabaseUrl"].AllowedPattern)
	for u, ok := range map[string]bool{
		"postgres://db.internal:5432/voting?sslmode=require": true,
		"postgresql://db/voting":                             true,
		"postgres://voting:hunter2@db.internal:5432/voting":  false,
		"postgres://voting@db.internal/voting":               false,
	} {
		if pat.MatchString(u) != ok {
			t.Errorf("DatabaseUrl pattern on %s: accepted=%v, want %v", u, !ok, ok)
		}
	}
}

func TestTemplateOutputs(t *testing.T) {
	tpl := loadTemplate(t, templatePath)
	e := newEvaluator(t, tpl, scenarios()[0].values)
	url := fmt.Sprint(e.eval(t, tpl.Outputs["DashboardUrl"].Value))
	if url != "https://getatt:DashboardDistribution.DomainName/index.html" {
		t.Errorf("DashboardUrl is %s", url)
	}
	for _, fn := range deployed() {
		out, ok := tpl.Outputs[logicalID(fn)+"Name"]
		if !ok || fmt.Sprint(e.eval(t, out.Value)) != "ref:"+logicalID(fn) {
			t.Errorf("no output %sName with the function's name", logicalID(fn))
		}
	}
	// The ballot page is GET / of the API's $default stage; the dashboard
	// links to the same URL.
	if url := fmt.Sprint(e.eval(t, tpl.Outputs["CastApiUrl"].Value)); url != "https://ref:CastApi.execute-api.us-east-1.amazonaws.com/" {
		t.Errorf("CastApiUrl is %s", url)
	}
	for out, want := range map[string]string{"TokensBucketName": "ref:TokensBucket", "TokenKeySecretArn": "ref:TokenKeySecret"} {
		if o, ok := tpl.Outputs[out]; !ok || fmt.Sprint(e.eval(t, o.Value)) != want {
			t.Errorf("output %s is not %s", out, want)
		}
	}
	res := e.resources(t)
	for _, b := range []string{"DashboardBucket", "TokensBucket"} {
		bucket := res[b].Properties
		pab, _ := bucket["PublicAccessBlockConfiguration"].(map[string]any)
		for _, k := range []string{"BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"} {
			if pab[k] != true {
				t.Errorf("%s: %s is not true", b, k)
			}
		}
	}
}
