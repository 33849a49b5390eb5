package infra_test

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// This file reads CloudFormation/SAM templates with yaml.v3 into our own
// structs (goformation drops the fields of Kafka event sources), turning the
// short intrinsic tags (!Ref, !Sub, !GetAtt, !If, ...) into their long form
// ({"Ref": x}, {"Fn::Sub": x}, ...) on the yaml.Node tree before decoding,
// and evaluates intrinsics for a given set of parameter values, as
// CloudFormation would, so tests can check the template a deployment gets.

// cfnTemplate is the part of a template the tests read.
// cfnRule is a template rule: when RuleCondition holds, every assertion must.
type cfnRule struct {
	RuleCondition any `yaml:"RuleCondition"`
	Assertions    []struct {
		Assert            any    `yaml:"Assert"`
		AssertDescription string `yaml:"AssertDescription"`
	} `yaml:"Assertions"`
}

// refused returns the descriptions of the rules that would refuse the
// evaluator's parameter values.
func (e *evaluator) refused(t *testing.T) []string {
	t.Helper()
	var out []string
	for name, r := range e.tpl.Rules {
		if r.RuleCondition != nil && e.eval(t, r.RuleCondition) != true {
			continue
		}
		for _, a := range r.Assertions {
			if e.eval(t, a.Assert) != true {
				out = append(out, name+": "+a.AssertDescription)
			}
		}
	}
	return out
}

type cfnTemplate struct {
	Transform  any                     `yaml:"Transform"`
	Parameters map[string]cfnParameter `yaml:"Parameters"`
	Conditions map[string]any          `yaml:"Conditions"`
	Rules      map[string]cfnRule      `yaml:"Rules"`
	Globals    struct {
		Function map[string]any `yaml:"Function"`
	} `yaml:"Globals"`
	Resources map[string]cfnResource `yaml:"Resources"`
	Outputs   map[string]cfnOutput   `yaml:"Outputs"`
}

type cfnParameter struct {
	Type           string `yaml:"Type"`
	Default        any    `yaml:"Default"`
	NoEcho         bool   `yaml:"NoEcho"`
	AllowedPattern string `yaml:"AllowedPattern"`
	AllowedValues  []any  `yaml:"AllowedValues"`
	Description    string `yaml:"Description"`
}

type cfnResource struct {
	Type                string         `yaml:"Type"`
	Condition           string         `yaml:"Condition"`
	Metadata            map[string]any `yaml:"Metadata"`
	Properties          map[string]any `yaml:"Properties"`
	DependsOn           any            `yaml:"DependsOn"`
	DeletionPolicy      string         `yaml:"DeletionPolicy"`
	UpdateReplacePolicy string         `yaml:"UpdateReplacePolicy"`
}

type cfnOutput struct {
	Description string `yaml:"Description"`
	Value       any    `yaml:"Value"`
	Condition   string `yaml:"Condition"`
}

// intrinsicTags maps short-form tags to their long-form keys.
var intrinsicTags = map[string]string{
	"!Ref": "Ref", "!Condition": "Condition",
	"!Sub": "Fn::Sub", "!GetAtt": "Fn::GetAtt", "!If": "Fn::If", "!Equals": "Fn::Equals",
	"!Not": "Fn::Not", "!And": "Fn::And", "!Or": "Fn::Or", "!Split": "Fn::Split",
	"!Select": "Fn::Select", "!Join": "Fn::Join", "!FindInMap": "Fn::FindInMap",
	"!Base64": "Fn::Base64", "!Cidr": "Fn::Cidr", "!GetAZs": "Fn::GetAZs",
	"!ImportValue": "Fn::ImportValue", "!Length": "Fn::Length", "!ToJsonString": "Fn::ToJsonString",
}

// expandTags rewrites every node tagged with a short intrinsic into a
// one-key mapping of its long form. !GetAtt "A.B" becomes ["A", "B"].
func expandTags(n *yaml.Node) error {
	for _, c := range n.Content {
		if err := expandTags(c); err != nil {
			return err
		}
	}
	if !strings.HasPrefix(n.Tag, "!") || strings.HasPrefix(n.Tag, "!!") {
		return nil
	}
	key, ok := intrinsicTags[n.Tag]
	if !ok {
		return fmt.Errorf("line %d: unknown tag %s", n.Line, n.Tag)
	}
	val := *n
	val.Tag = ""
	switch val.Kind {
	case yaml.ScalarNode:
		val.Tag = "!!str"
		if key == "Fn::GetAtt" {
			parts := strings.SplitN(val.Value, ".", 2)
			if len(parts) != 2 {
				return fmt.Errorf("line %d: !GetAtt %q is not Resource.Attribute", n.Line, val.Value)
			}
			val = yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{
				{Kind: yaml.ScalarNode, Tag: "!!str", Value: parts[0]},
				{Kind: yaml.ScalarNode, Tag: "!!str", Value: parts[1]},
			}}
		}
	case yaml.SequenceNode:
		val.Tag = "!!seq"
	case yaml.MappingNode:
		val.Tag = "!!map"
	}
	*n = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column, Content: []*yaml.Node{
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, &val,
	}}
	return nil
}

// loadTemplate reads a template file.
func loadTemplate(t *testing.T, path string) *cfnTemplate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parseTemplate(t, path, b)
}

// parseTemplate reads a template; path names it in errors.
func parseTemplate(t *testing.T, path string, b []byte) *cfnTemplate {
	t.Helper()
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if err := expandTags(&root); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var tpl cfnTemplate
	if err := root.Decode(&tpl); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &tpl
}

// noValue is what AWS::NoValue evaluates to; evaluation drops it from maps
// and lists.
type noValue struct{}

// evaluator evaluates intrinsics for one set of parameter values.
type evaluator struct {
	tpl    *cfnTemplate
	params map[string]any
	conds  map[string]bool
	region string
}

// newEvaluator takes explicit parameter values; the others get their
// defaults. A parameter with neither is an error.
func newEvaluator(t *testing.T, tpl *cfnTemplate, values map[string]any) *evaluator {
	t.Helper()
	e := &evaluator{tpl: tpl, params: map[string]any{}, conds: map[string]bool{}, region: "us-east-1"}
	for name, p := range tpl.Parameters {
		v, ok := values[name]
		if !ok {
			v = p.Default
		}
		if v == nil {
			t.Fatalf("parameter %s has no default and no test value", name)
		}
		if s, isStr := v.(string); isStr && strings.HasPrefix(p.Type, "List<") {
			v = splitList(s)
		}
		e.params[name] = v
	}
	for name := range values {
		if _, ok := tpl.Parameters[name]; !ok {
			t.Fatalf("test value for unknown parameter %s", name)
		}
	}
	for name := range tpl.Conditions {
		e.conds[name] = e.condition(t, name, map[string]bool{})
	}
	return e
}

func splitList(s string) []any {
	var out []any
	for _, p := range strings.Split(s, ",") {
		out = append(out, p)
	}
	return out
}

func (e *evaluator) condition(t *testing.T, name string, visiting map[string]bool) bool {
	t.Helper()
	if v, ok := e.conds[name]; ok {
		return v
	}
	def, ok := e.tpl.Conditions[name]
	if !ok {
		t.Fatalf("unknown condition %s", name)
	}
	if visiting[name] {
		t.Fatalf("condition %s refers to itself", name)
	}
	visiting[name] = true
	v, ok := e.eval(t, def).(bool)
	if !ok {
		t.Fatalf("condition %s is not boolean", name)
	}
	e.conds[name] = v
	return v
}

// eval returns v with every intrinsic evaluated. Resource references become
// "ref:Name" and attributes "getatt:Name.Attr", since they exist only once
// deployed.
func (e *evaluator) eval(t *testing.T, v any) any {
	t.Helper()
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 {
			for k, arg := range x {
				if r, ok := e.intrinsic(t, k, arg); ok {
					return r
				}
			}
		}
		out := map[string]any{}
		for k, val := range x {
			r := e.eval(t, val)
			if _, drop := r.(noValue); !drop {
				out[k] = r
			}
		}
		return out
	case []any:
		out := []any{}
		for _, val := range x {
			r := e.eval(t, val)
			if _, drop := r.(noValue); !drop {
				out = append(out, r)
			}
		}
		return out
	}
	return v
}

var subVar = regexp.MustCompile(`\$\{([^}!]+)\}`)

func (e *evaluator) intrinsic(t *testing.T, fn string, arg any) (any, bool) {
	t.Helper()
	switch fn {
	case "Ref":
		name := arg.(string)
		switch name {
		case "AWS::NoValue":
			return noValue{}, true
		case "AWS::Region":
			return e.region, true
		case "AWS::AccountId":
			return "123456789012", true
		case "AWS::Partition":
			return "aws", true
		case "AWS::URLSuffix":
			return "amazonaws.com", true
		case "AWS::StackName":
			return "voting", true
		}
		if p, ok := e.params[name]; ok {
			return p, true
		}
		if _, ok := e.tpl.Resources[name]; !ok {
			t.Fatalf("!Ref %s: no such parameter or resource", name)
		}
		return "ref:" + name, true
	case "Condition":
		return e.condition(t, arg.(string), map[string]bool{}), true
	case "Fn::If":
		a := arg.([]any)
		if len(a) != 3 {
			t.Fatalf("Fn::If takes 3 arguments: %v", a)
		}
		if e.condition(t, a[0].(string), map[string]bool{}) {
			return e.eval(t, a[1]), true
		}
		return e.eval(t, a[2]), true
	case "Fn::Equals":
		a := e.eval(t, arg).([]any)
		return fmt.Sprint(a[0]) == fmt.Sprint(a[1]), true
	case "Fn::Not":
		a := e.eval(t, arg).([]any)
		return !a[0].(bool), true
	case "Fn::And", "Fn::Or":
		a := e.eval(t, arg).([]any)
		res := fn == "Fn::And"
		for _, c := range a {
			if fn == "Fn::And" {
				res = res && c.(bool)
			} else {
				res = res || c.(bool)
			}
		}
		return res, true
	case "Fn::GetAtt":
		a := arg.([]any)
		name := fmt.Sprint(a[0])
		if _, ok := e.tpl.Resources[name]; !ok {
			t.Fatalf("!GetAtt %s: no such resource", name)
		}
		return fmt.Sprintf("getatt:%s.%s", a[0], a[1]), true
	case "Fn::Split":
		a := e.eval(t, arg).([]any)
		var out []any
		for _, p := range strings.Split(fmt.Sprint(a[1]), fmt.Sprint(a[0])) {
			out = append(out, p)
		}
		return out, true
	case "Fn::Select":
		a := e.eval(t, arg).([]any)
		i, err := strconv.Atoi(fmt.Sprint(a[0]))
		list, ok := a[1].([]any)
		if err != nil || !ok || i < 0 || i >= len(list) {
			t.Fatalf("Fn::Select %v out of range", a)
		}
		return list[i], true
	case "Fn::Join":
		a := e.eval(t, arg).([]any)
		var parts []string
		for _, p := range a[1].([]any) {
			parts = append(parts, fmt.Sprint(p))
		}
		return strings.Join(parts, fmt.Sprint(a[0])), true
	case "Fn::GetAZs":
		return []any{e.region + "a", e.region + "b", e.region + "c"}, true
	case "Fn::Cidr":
		a := e.eval(t, arg).([]any)
		n, _ := strconv.Atoi(fmt.Sprint(a[1]))
		var out []any
		for i := range n {
			out = append(out, fmt.Sprintf("cidr%d-of:%v", i, a[0]))
		}
		return out, true
	case "Fn::Sub":
		var text string
		vars := map[string]any{}
		switch a := arg.(type) {
		case string:
			text = a
		case []any:
			text = a[0].(string)
			for k, v := range a[1].(map[string]any) {
				vars[k] = e.eval(t, v)
			}
		}
		return subVar.ReplaceAllStringFunc(text, func(m string) string {
			name := m[2 : len(m)-1]
			if v, ok := vars[name]; ok {
				return fmt.Sprint(v)
			}
			if strings.Contains(name, ".") {
				parts := strings.SplitN(name, ".", 2)
				return fmt.Sprint(e.eval(t, map[string]any{"Fn::GetAtt": []any{parts[0], parts[1]}}))
			}
			return fmt.Sprint(e.eval(t, map[string]any{"Ref": name}))
		}), true
	}
	if strings.HasPrefix(fn, "Fn::") {
		t.Fatalf("intrinsic %s is not supported by the test evaluator", fn)
	}
	return nil, false
}

// resources returns the resources a deployment with these parameters
// creates, with their properties evaluated.
func (e *evaluator) resources(t *testing.T) map[string]cfnResource {
	t.Helper()
	out := map[string]cfnResource{}
	for name, r := range e.tpl.Resources {
		if r.Condition != "" && !e.condition(t, r.Condition, map[string]bool{}) {
			continue
		}
		r.Properties, _ = e.eval(t, r.Properties).(map[string]any)
		out[name] = r
	}
	return out
}

// strs returns v as a list of strings (a string is a list of one).
func strs(v any) []string {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, strs(e)...)
		}
		return out
	}
	return []string{fmt.Sprint(v)}
}

// walkScalars calls fn with the path and value of every scalar in v.
func walkScalars(path string, v any, fn func(path, value string)) {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			walkScalars(path+"."+k, val, fn)
		}
	case []any:
		for i, val := range x {
			walkScalars(fmt.Sprintf("%s[%d]", path, i), val, fn)
		}
	case nil:
	default:
		fn(path, fmt.Sprint(x))
	}
}
