package infra_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/votingpipe/voting/infra"
)

// alarm is what an AWS::CloudWatch::Alarm watches.
type alarm struct {
	id, namespace, metric string
	dims                  map[string]string
	props                 map[string]any
}

func alarmsOf(res map[string]cfnResource) []alarm {
	var out []alarm
	for _, id := range slices.Sorted(maps.Keys(res)) {
		r := res[id]
		if r.Type != "AWS::CloudWatch::Alarm" {
			continue
		}
		a := alarm{id: id, namespace: fmt.Sprint(r.Properties["Namespace"]), metric: fmt.Sprint(r.Properties["MetricName"]),
			dims: map[string]string{}, props: r.Properties}
		for _, d := range toList(r.Properties["Dimensions"]) {
			m := d.(map[string]any)
			a.dims[fmt.Sprint(m["Name"])] = fmt.Sprint(m["Value"])
		}
		out = append(out, a)
	}
	return out
}

// find returns the alarms on namespace/metric whose dimensions are dims.
func find(alarms []alarm, namespace, metric string, dims map[string]string) []alarm {
	var out []alarm
	for _, a := range alarms {
		if a.namespace == namespace && a.metric == metric && maps.Equal(a.dims, dims) {
			out = append(out, a)
		}
	}
	return out
}

// TestTemplateAlarms: in every deployment each function has an Errors and a
// Throttles alarm, the cast API an alarm on its 5xx answers, the
// failed-batch queue an alarm on its visible messages,
// every consumer group of infra.Triggers a lag alarm on its topic (MSK's
// MaxOffsetLag or, for self-managed Kafka, Lambda's OffsetLag), the tally an
// alarm on its rejections; all notify AlarmTopicArn when it is given, and
// only then.
func TestTemplateAlarms(t *testing.T) {
	tpl := loadTemplate(t, templatePath)
	def := defaultConfig(t)
	const topicArn = "arn:aws:sns:us-east-1:123456789012:voting-alarms"
	var cases []scenario
	for _, sc := range scenarios() {
		cases = append(cases, sc)
		withTopic := maps.Clone(sc.values)
		withTopic["AlarmTopicArn"] = topicArn
		cases = append(cases, scenario{sc.name + ", alarm topic", withTopic})
	}
	for _, sc := range cases {
		t.Run(sc.name, func(t *testing.T) {
			e := newEvaluator(t, tpl, sc.values)
			res := e.resources(t)
			alarms := alarmsOf(res)
			one := func(what, namespace, metric string, dims map[string]string) {
				t.Helper()
				if got := find(alarms, namespace, metric, dims); len(got) != 1 {
					t.Errorf("%s: %d alarms on %s %s %v, want 1", what, len(got), namespace, metric, dims)
				}
			}
			for _, fn := range deployed() {
				dims := map[string]string{"FunctionName": "ref:" + logicalID(fn)}
				one(fn+" errors", "AWS/Lambda", "Errors", dims)
				one(fn+" throttles", "AWS/Lambda", "Throttles", dims)
			}
			// HTTP APIs publish 5xx (not REST's 5XXError) by ApiId.
			one("cast API 5xx", "AWS/ApiGateway", "5xx", map[string]string{"ApiId": "ref:CastApi"})
			one("failed batches", "AWS/SQS", "ApproximateNumberOfMessagesVisible",
				map[string]string{"QueueName": "getatt:FailedBatchesQueue.QueueName"})
			one("tally rejections", "VotingPipeline", "VotesRejected",
				map[string]string{"FunctionName": "ref:" + logicalID(infra.Tally)})

			msk := e.params["KafkaSource"] == "MSK"
			cluster := strings.SplitN(strings.TrimPrefix(clusterArn, "arn:aws:kafka:us-east-1:123456789012:cluster/"), "/", 2)[0]
			for _, tr := range infra.Triggers {
				topics := []string{tr.Topic(def.Topics)}
				if len(topics) != 1 {
					t.Fatalf("%s: %d topics; a Kafka mapping takes one", tr.Function, len(topics))
				}
				if msk {
					one(tr.Function+" lag", "AWS/Kafka", "MaxOffsetLag",
						map[string]string{"Cluster Name": cluster, "Consumer Group": tr.Group, "Topic": topics[0]})
				} else {
					one(tr.Function+" lag", "AWS/Lambda", "OffsetLag",
						map[string]string{"FunctionName": "ref:" + logicalID(tr.Function)})
				}
			}
			if len(alarms) != 2*len(deployed())+3+len(infra.Triggers) {
				t.Errorf("%d alarms; a new one needs its place in this test and in infra/README.md", len(alarms))
			}

			_, withTopic := sc.values["AlarmTopicArn"]
			for _, a := range alarms {
				for _, k := range []string{"AlarmActions", "OKActions"} {
					got := strs(a.props[k])
					if withTopic && !slices.Equal(got, []string{topicArn}) || !withTopic && len(got) > 0 {
						t.Errorf("%s: %s %v", a.id, k, got)
					}
				}
				if a.props["TreatMissingData"] != "notBreaching" {
					t.Errorf("%s: TreatMissingData %v; no data (no invocations, no lag published) is not an alarm", a.id, a.props["TreatMissingData"])
				}
				if desc := fmt.Sprint(a.props["AlarmDescription"]); !strings.Contains(desc, "infra/README.md") {
					t.Errorf("%s: AlarmDescription %q does not point the operator to infra/README.md", a.id, desc)
				}
			}
		})
	}
}
