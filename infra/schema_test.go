package infra_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// This file validates every resource's Properties in every template against
// the CloudFormation registry schema of its type (testdata/schemas, copied
// unchanged from AWS's published schemas), which state limits no Go type or
// evaluator test does: an event-source mapping's Topics holds exactly one
// topic, a security group's GroupDescription allows no apostrophe, BatchSize
// is at most 10,000, no property is unknown.
//
// How a template becomes JSON Schema instances:
//   - Fn::If: each resource is validated once per combination of the
//     conditions its Fn::Ifs name (the resource's own Condition held true;
//     combinations that contradict the condition definitions, e.g. MskIam
//     without IsMsk, are skipped), with every Fn::If replaced by the branch
//     the combination picks. Ref AWS::NoValue removes its key or item.
//   - Every other intrinsic (Ref, Fn::Sub, Fn::GetAtt, Fn::Join, Fn::Select,
//     Fn::Split, ...) stands for a value the schema accepts at its position:
//     errors located at or inside an intrinsic are dropped, and an anyOf or
//     oneOf passes when one of its branches fails only there. Errors about
//     the object or array that holds it still count: an unknown key, a
//     missing required key, two items where one is allowed.
//   - Scalars are converted as CloudFormation does: "5" is an integer, 5 and
//     true are strings where a string is wanted, "true" is a boolean.
//   - CloudFormation's own root keywords, which are not JSON Schema, are
//     checked by hand: requiredXor, requiredOr, dependentRequired,
//     dependentExcluded, and readOnlyProperties (set by CloudFormation, never
//     by a template).
//   - The SAM types have no registry schema: they are translated the way SAM
//     (samtranslator v1.110) translates them, and what they become is
//     validated. An AWS::Serverless::Function, Globals merged in, becomes an
//     AWS::Lambda::Function, and each of its HttpApi events an
//     AWS::Lambda::Permission letting API Gateway invoke it; an
//     AWS::Serverless::HttpApi becomes an AWS::ApiGatewayV2::Api (the
//     OpenAPI body SAM writes, with the events' routes and the CORS
//     configuration) and the AWS::ApiGatewayV2::Stage of its settings. A SAM
//     property or event type the translation does not know fails the test,
//     naming it.
//   - A resource type with no schema in testdata/schemas fails the test,
//     naming the type, and a schema no template uses fails it too. The
//     schemas are AWS's as cfn-lint v1.51.5 bundles them (the ones from
//     ../shared/aws-schemas are identical to those; AWS-SecretsManager-Secret
//     comes from the bundle, git show v1.51.5:src/cfnlint/data/schemas/
//     resources/c85175a4ebcce361.json).
//
// Not checked: "format" (ARN and id formats, CIDRs) is not asserted; values
// hidden behind intrinsics (a Ref's parameter value, a Sub's result) are not
// checked against patterns or ranges (cfn-lint resolves some of those);
// resource attributes (DependsOn, DeletionPolicy, Metadata), Outputs,
// Parameters and Rules; whether a property may change without replacement;
// what SAM would generate that the template does not ask for (roles,
// policies, event sources other than HttpApi: template_test.go refuses SAM
// Policies and every event but the cast function's HttpApi routes); the
// OpenAPI body beyond being an object (API Gateway reads it; cfn-lint runs
// the real transform).

const schemaDir = "testdata/schemas"

// cfnSchema is one resource type's registry schema.
type cfnSchema struct {
	typeName string
	file     string
	schema   *jsonschema.Schema
	// CloudFormation keywords outside JSON Schema, on the root object.
	readOnly          []string
	requiredXor       []string
	requiredOr        []string
	dependentRequired map[string][]string
	dependentExcluded map[string][]string
}

var (
	schemasOnce sync.Once
	schemaSet   map[string]*cfnSchema
	schemasErr  error
)

// loadSchemas compiles testdata/schemas/*.json once, keyed by type name.
func loadSchemas(t *testing.T) map[string]*cfnSchema {
	t.Helper()
	schemasOnce.Do(func() { schemaSet, schemasErr = compileSchemas() })
	if schemasErr != nil {
		t.Fatal(schemasErr)
	}
	return schemaSet
}

func compileSchemas() (map[string]*cfnSchema, error) {
	files, err := filepath.Glob(filepath.Join(schemaDir, "*.json"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no schemas in %s: %v", schemaDir, err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7)
	c.UseRegexpEngine(ecmaRegexp)
	out := map[string]*cfnSchema{}
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		root, ok := doc.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: not an object", file)
		}
		// Some name the CloudFormation provider meta-schema, which is not on
		// this machine; they are draft-07 schemas with extra keywords.
		delete(root, "$schema")
		s := &cfnSchema{file: file}
		s.typeName, _ = root["typeName"].(string)
		if want := strings.ReplaceAll(s.typeName, "::", "-") + ".json"; filepath.Base(file) != want {
			return nil, fmt.Errorf("%s holds the schema of %q; name it %s", file, s.typeName, want)
		}
		for _, p := range jsonStrings(root["readOnlyProperties"]) {
			if name, ok := strings.CutPrefix(p, "/properties/"); ok && !strings.Contains(name, "/") {
				s.readOnly = append(s.readOnly, name)
			}
		}
		s.requiredXor = jsonStrings(root["requiredXor"])
		s.requiredOr = jsonStrings(root["requiredOr"])
		s.dependentRequired = jsonStringLists(root["dependentRequired"])
		s.dependentExcluded = jsonStringLists(root["dependentExcluded"])
		abs, err := filepath.Abs(file)
		if err != nil {
			return nil, err
		}
		if err := c.AddResource(abs, root); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if s.schema, err = c.Compile(abs); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if out[s.typeName] != nil {
			return nil, fmt.Errorf("%s: a second schema of %s", file, s.typeName)
		}
		out[s.typeName] = s
	}
	return out, nil
}

// uncheckedPatterns are the schema patterns Go's regexp cannot compile;
// they accept anything (TestTemplateSchemas logs them).
var uncheckedPatterns []string

// acceptAll stands for a pattern Go's regexp cannot compile.
type acceptAll string

func (acceptAll) MatchString(string) bool { return true }
func (a acceptAll) String() string        { return string(a) }

// ecmaRegexp compiles a schema pattern, written for ECMA-262 regular
// expressions, with Go's regexp: \uXXXX becomes \x{XXXX}, \Z becomes \z.
// A pattern with syntax RE2 lacks (lookarounds; in these schemas only a
// DocumentDB CollectionName and a function's Code.S3Bucket, which sam
// package writes, not the templates) accepts anything and is recorded in
// uncheckedPatterns.
func ecmaRegexp(pattern string) (jsonschema.Regexp, error) {
	re, err := regexp.Compile(ecmaToRE2(pattern))
	if err != nil {
		if !slices.Contains(uncheckedPatterns, pattern) {
			uncheckedPatterns = append(uncheckedPatterns, pattern)
		}
		return acceptAll(pattern), nil
	}
	return re, nil
}

func ecmaToRE2(pattern string) string {
	var b strings.Builder
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		if c != '\\' || i+1 == len(pattern) {
			b.WriteByte(c)
			continue
		}
		if pattern[i+1] == 'Z' { // end of text, as in Python; RE2 writes \z
			b.WriteString(`\z`)
			i++
			continue
		}
		if pattern[i+1] == 'u' && i+6 <= len(pattern) {
			if _, err := strconv.ParseUint(pattern[i+2:i+6], 16, 32); err == nil {
				b.WriteString(`\x{` + pattern[i+2:i+6] + `}`)
				i += 5
				continue
			}
		}
		b.WriteString(pattern[i : i+2])
		i++
	}
	return b.String()
}

func jsonStrings(v any) []string {
	var out []string
	for _, x := range asList(v) {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func jsonStringLists(v any) map[string][]string {
	m, _ := v.(map[string]any)
	out := map[string][]string{}
	for k, l := range m {
		out[k] = jsonStrings(l)
	}
	return out
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// isIntrinsic reports whether v is an intrinsic function object.
func isIntrinsic(v any) bool {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return false
	}
	for k := range m {
		return k == "Ref" || strings.HasPrefix(k, "Fn::")
	}
	return false
}

// ------------------------------------------------------------- conditions

// tri is a condition's value when only some conditions are decided.
type tri int8

const (
	unknown tri = 0
	yes     tri = 1
	no      tri = -1
)

func triOf(b bool) tri {
	if b {
		return yes
	}
	return no
}

// condValue evaluates a condition definition given the decided conditions;
// comparisons of parameters are unknown.
func condValue(conds map[string]any, decided map[string]bool, def any, depth int) tri {
	m, ok := def.(map[string]any)
	if !ok || len(m) != 1 || depth > 32 {
		return unknown
	}
	for fn, arg := range m {
		switch fn {
		case "Condition":
			name, _ := arg.(string)
			if b, ok := decided[name]; ok {
				return triOf(b)
			}
			return condValue(conds, decided, conds[name], depth+1)
		case "Fn::Not":
			if a := asList(arg); len(a) == 1 {
				return -condValue(conds, decided, a[0], depth+1)
			}
		case "Fn::And", "Fn::Or":
			short, res := no, yes // And: one false decides
			if fn == "Fn::Or" {
				short, res = yes, no
			}
			for _, c := range asList(arg) {
				switch condValue(conds, decided, c, depth+1) {
				case short:
					return short
				case unknown:
					res = unknown
				}
			}
			return res
		}
	}
	return unknown
}

// usedConditions adds the conditions of the Fn::Ifs in v to set.
func usedConditions(v any, set map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		if a, ok := x["Fn::If"]; ok && len(x) == 1 {
			if l := asList(a); len(l) == 3 {
				if name, ok := l[0].(string); ok {
					set[name] = true
				}
			}
		}
		for _, val := range x {
			usedConditions(val, set)
		}
	case []any:
		for _, val := range x {
			usedConditions(val, set)
		}
	}
}

// combinations returns every assignment of the conditions the Fn::Ifs in
// props name that agrees with the condition definitions, the resource's own
// condition (if any) being true.
func combinations(tpl *cfnTemplate, props any, own string) ([]map[string]bool, error) {
	set := map[string]bool{}
	usedConditions(props, set)
	delete(set, own)
	names := slices.Sorted(maps.Keys(set))
	for _, n := range append(slices.Clone(names), own) {
		if _, ok := tpl.Conditions[n]; n != "" && !ok {
			return nil, fmt.Errorf("unknown condition %s", n)
		}
	}
	var out []map[string]bool
	for bits := 0; bits < 1<<len(names); bits++ {
		a := map[string]bool{}
		if own != "" {
			a[own] = true
		}
		for i, n := range names {
			a[n] = bits&(1<<i) != 0
		}
		consistent := true
		for n, v := range a {
			if got := condValue(tpl.Conditions, a, tpl.Conditions[n], 0); got != unknown && got != triOf(v) {
				consistent = false
				break
			}
		}
		if consistent {
			out = append(out, a)
		}
	}
	return out, nil
}

// dropped marks a value that Ref AWS::NoValue removes.
type dropped struct{}

// pickBranches returns v with every Fn::If replaced by the branch conds
// picks and AWS::NoValue removed. Other intrinsics stay.
func pickBranches(v any, conds map[string]bool) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 {
			if a, ok := x["Fn::If"]; ok {
				l := asList(a)
				name, _ := l[0].(string)
				if len(l) != 3 || name == "" {
					return nil, fmt.Errorf("Fn::If %v: want [condition, then, else]", a)
				}
				if conds[name] {
					return pickBranches(l[1], conds)
				}
				return pickBranches(l[2], conds)
			}
			if x["Ref"] == "AWS::NoValue" {
				return dropped{}, nil
			}
		}
		out := make(map[string]any, len(x))
		for k, val := range x {
			r, err := pickBranches(val, conds)
			if err != nil {
				return nil, err
			}
			if _, drop := r.(dropped); !drop {
				out[k] = r
			}
		}
		return out, nil
	case []any:
		out := make([]any, 0, len(x))
		for _, val := range x {
			r, err := pickBranches(val, conds)
			if err != nil {
				return nil, err
			}
			if _, drop := r.(dropped); !drop {
				out = append(out, r)
			}
		}
		return out, nil
	}
	return v, nil
}

func describe(conds map[string]bool) string {
	if len(conds) == 0 {
		return ""
	}
	var parts []string
	for _, n := range slices.Sorted(maps.Keys(conds)) {
		parts = append(parts, fmt.Sprintf("%s=%t", n, conds[n]))
	}
	return " [" + strings.Join(parts, " ") + "]"
}

// -------------------------------------------------------------------- SAM

// samPassThrough are the AWS::Serverless::Function properties SAM copies
// unchanged into the AWS::Lambda::Function
// (samtranslator/model/sam_resources.py, _construct_lambda_function).
var samPassThrough = []string{
	"Architectures", "CodeSigningConfigArn", "Description", "Environment", "EphemeralStorage",
	"FileSystemConfigs", "FunctionName", "Handler", "ImageConfig", "KmsKeyArn", "Layers",
	"LoggingConfig", "MemorySize", "PackageType", "RecursiveLoop", "ReservedConcurrentExecutions",
	"Role", "Runtime", "RuntimeManagementConfig", "SnapStart", "Timeout", "VpcConfig",
}

// samMerge merges a Globals value into a resource's value as SAM does
// (samtranslator/plugins/globals/globals.py, _do_merge): maps deep-merge,
// lists concatenate (Globals first), anything else (an intrinsic included)
// is the resource's.
func samMerge(global, local any) any {
	gm, gMap := global.(map[string]any)
	lm, lMap := local.(map[string]any)
	if gMap && lMap && !isIntrinsic(gm) && !isIntrinsic(lm) {
		out := make(map[string]any, len(gm)+len(lm))
		maps.Copy(out, gm)
		for k, v := range lm {
			if g, ok := out[k]; ok {
				out[k] = samMerge(g, v)
			} else {
				out[k] = v
			}
		}
		return out
	}
	gl, gList := global.([]any)
	ll, lList := local.([]any)
	if gList && lList {
		return append(slices.Clone(gl), ll...)
	}
	return local
}

// samFunction returns the AWS::Lambda::Function properties SAM makes of a
// function, and the SAM properties it cannot account for.
func samFunction(tpl *cfnTemplate, id string, props map[string]any) (map[string]any, []string) {
	merged, _ := samMerge(tpl.Globals.Function, props).(map[string]any)
	if merged == nil {
		merged = map[string]any{}
	}
	out := map[string]any{}
	var unknownProps []string
	for k, v := range merged {
		switch {
		case slices.Contains(samPassThrough, k):
			out[k] = v
		case k == "CodeUri" || k == "InlineCode" || k == "ImageUri":
			// sam package uploads CodeUri and writes where it went.
			code := map[string]any{"S3Bucket": "sam-artifacts", "S3Key": id + ".zip"}
			switch k {
			case "InlineCode":
				code = map[string]any{"ZipFile": v}
			case "ImageUri":
				code = map[string]any{"ImageUri": v}
			}
			out["Code"] = code
		case k == "Tracing":
			out["TracingConfig"] = map[string]any{"Mode": v}
		case k == "DeadLetterQueue":
			dlq, _ := v.(map[string]any)
			out["DeadLetterConfig"] = map[string]any{"TargetArn": dlq["TargetArn"]}
		case k == "Events":
			// Not a Lambda property: samEvents translates them.
		case k == "Tags":
			tags := []any{map[string]any{"Key": "lambda:createdBy", "Value": "SAM"}}
			m, _ := v.(map[string]any)
			for _, tk := range slices.Sorted(maps.Keys(m)) {
				tags = append(tags, map[string]any{"Key": tk, "Value": m[tk]})
			}
			out["Tags"] = tags
		default:
			unknownProps = append(unknownProps, k)
		}
	}
	if _, ok := out["Role"]; !ok {
		// SAM creates <Id>Role.
		out["Role"] = map[string]any{"Fn::GetAtt": []any{id + "Role", "Arn"}}
	}
	slices.Sort(unknownProps)
	return out, unknownProps
}

// samResource is one CloudFormation resource SAM makes of a template's.
type samResource struct {
	id, typ string
	props   map[string]any
}

// samExpand returns the resources SAM makes of resource id, and the SAM
// properties and event types it cannot account for (each a problem).
// Resources of other types are returned as they are.
func samExpand(tpl *cfnTemplate, id string, r cfnResource) ([]samResource, []string) {
	props := map[string]any(r.Properties)
	if props == nil {
		props = map[string]any{}
	}
	switch r.Type {
	case "AWS::Serverless::Function":
		fn, unknownProps := samFunction(tpl, id, props)
		var problems []string
		for _, p := range unknownProps {
			problems = append(problems, fmt.Sprintf("SAM property %s is not checked: SAM neither copies nor translates it into the AWS::Lambda::Function as far as samFunction (schema_test.go) knows; a typo, or teach samFunction what SAM makes of it", p))
		}
		out := []samResource{{id, "AWS::Lambda::Function", fn}}
		perms, more := samEvents(id, props["Events"])
		return append(out, perms...), append(problems, more...)
	case "AWS::Serverless::HttpApi":
		return samHTTPAPI(tpl, id, props)
	}
	return []samResource{{id, r.Type, props}}, nil
}

// samHTTPAPIEventProps are the properties of a function's HttpApi event
// (samtranslator/model/eventsources/push.py, HttpApi).
var samHTTPAPIEventProps = []string{"Path", "Method", "ApiId", "Stage", "Auth", "TimeoutInMillis", "RouteSettings", "PayloadFormatVersion"}

// samEvents returns the AWS::Lambda::Permission SAM makes of each HttpApi
// event of function fn (push.py, HttpApi._get_permission): API Gateway may
// invoke it for the event's method and path (path parameters as *) on any
// stage of the API.
func samEvents(fn string, events any) ([]samResource, []string) {
	evs, _ := events.(map[string]any)
	var out []samResource
	var problems []string
	for _, name := range slices.Sorted(maps.Keys(evs)) {
		ev, _ := evs[name].(map[string]any)
		if ev["Type"] != "HttpApi" {
			problems = append(problems, fmt.Sprintf("SAM event %s of type %v is not checked: samEvents (schema_test.go) translates HttpApi events only; teach it what SAM makes of this type", name, ev["Type"]))
			continue
		}
		p, _ := ev["Properties"].(map[string]any)
		for _, k := range slices.Sorted(maps.Keys(p)) {
			if !slices.Contains(samHTTPAPIEventProps, k) {
				problems = append(problems, fmt.Sprintf("SAM event %s: HttpApi property %s is not one SAM knows (%v)", name, k, samHTTPAPIEventProps))
			}
		}
		if v, ok := p["PayloadFormatVersion"]; ok && v != "1.0" && v != "2.0" {
			problems = append(problems, fmt.Sprintf("SAM event %s: PayloadFormatVersion %v, want 1.0 or 2.0", name, v))
		}
		method, _ := p["Method"].(string)
		path, _ := p["Path"].(string)
		if method == "" || path == "" || p["ApiId"] == nil {
			problems = append(problems, fmt.Sprintf("SAM event %s: an HttpApi event of an explicit API needs ApiId, Method and Path", name))
			continue
		}
		method = strings.ToUpper(method)
		if method == "ANY" {
			method = "*"
		}
		if len(path) > 1 {
			path = strings.TrimSuffix(path, "/")
		}
		path = regexp.MustCompile(`\{[^}]+\}`).ReplaceAllString(path, "*")
		out = append(out, samResource{fn + name + "Permission", "AWS::Lambda::Permission", map[string]any{
			"Action":       "lambda:InvokeFunction",
			"FunctionName": map[string]any{"Ref": fn},
			"Principal":    "apigateway.amazonaws.com",
			"SourceArn": map[string]any{"Fn::Sub": []any{
				"arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${__ApiId__}/${__Stage__}/" + method + path,
				map[string]any{"__ApiId__": p["ApiId"], "__Stage__": "*"},
			}},
		}})
	}
	return out, problems
}

// samHTTPAPIProps are the AWS::Serverless::HttpApi properties SAM knows
// (samtranslator/model/sam_resources.py, SamHttpApi) that this translation
// handles; Auth, Domain, DefinitionUri, DefinitionBody and PropagateTags it
// does not.
var samHTTPAPIProps = []string{"Name", "StageName", "Tags", "StageVariables", "CorsConfiguration", "AccessLogSettings", "DefaultRouteSettings", "RouteSettings", "FailOnWarnings", "Description", "DisableExecuteApiEndpoint"}

// samCORSKeys are the keys of an HttpApi's CorsConfiguration and the
// OpenAPI extension's keys SAM writes them as (http_api_generator.py,
// _add_cors).
var samCORSKeys = map[string]string{
	"AllowOrigins": "allowOrigins", "AllowHeaders": "allowHeaders", "AllowMethods": "allowMethods",
	"ExposeHeaders": "exposeHeaders", "MaxAge": "maxAge", "AllowCredentials": "allowCredentials",
}

// samHTTPAPI returns the AWS::ApiGatewayV2::Api and AWS::ApiGatewayV2::Stage
// SAM makes of an HttpApi (model/api/http_api_generator.py): the API's
// OpenAPI body holds the routes of the functions' HttpApi events on it, the
// CORS configuration, the title and description; the stage (named
// $default unless StageName says otherwise, deployed automatically) holds
// the throttling, route settings, access logging and variables.
func samHTTPAPI(tpl *cfnTemplate, id string, props map[string]any) ([]samResource, []string) {
	var problems []string
	for _, k := range slices.Sorted(maps.Keys(props)) {
		if !slices.Contains(samHTTPAPIProps, k) {
			problems = append(problems, fmt.Sprintf("SAM property %s is not checked: samHTTPAPI (schema_test.go) does not translate it into the AWS::ApiGatewayV2::Api or Stage; a typo, or teach it what SAM makes of it", k))
		}
	}
	paths := map[string]any{}
	for _, fid := range slices.Sorted(maps.Keys(tpl.Resources)) {
		f := tpl.Resources[fid]
		if f.Type != "AWS::Serverless::Function" {
			continue
		}
		evs, _ := f.Properties["Events"].(map[string]any)
		for _, name := range slices.Sorted(maps.Keys(evs)) {
			ev, _ := evs[name].(map[string]any)
			p, _ := ev["Properties"].(map[string]any)
			if ref, _ := p["ApiId"].(map[string]any); ev["Type"] != "HttpApi" || ref["Ref"] != id {
				continue
			}
			path, _ := p["Path"].(string)
			method, _ := p["Method"].(string)
			ops, _ := paths[path].(map[string]any)
			if ops == nil {
				ops = map[string]any{}
				paths[path] = ops
			}
			integration := map[string]any{
				"type": "aws_proxy", "httpMethod": "POST",
				"uri": map[string]any{"Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${" + fid + ".Arn}/invocations"},
			}
			if v, ok := p["PayloadFormatVersion"]; ok {
				integration["payloadFormatVersion"] = v
			}
			op := map[string]any{"x-amazon-apigateway-integration": integration, "responses": map[string]any{}}
			var params []any
			for _, m := range regexp.MustCompile(`\{([^}]+)\}`).FindAllStringSubmatch(path, -1) {
				params = append(params, map[string]any{"in": "path", "name": m[1], "required": true})
			}
			if params != nil {
				op["parameters"] = params
			}
			ops[strings.ToLower(method)] = op
		}
	}
	body := map[string]any{
		"openapi": "3.0.1",
		"info":    map[string]any{"version": "1.0", "title": map[string]any{"Ref": "AWS::StackName"}},
		"paths":   paths,
		"tags":    []any{map[string]any{"name": "httpapi:createdBy", "x-amazon-apigateway-tag-value": "SAM"}},
	}
	if d, ok := props["Description"]; ok {
		body["info"].(map[string]any)["description"] = d
	}
	if n, ok := props["Name"]; ok {
		body["info"].(map[string]any)["title"] = n
	}
	if d, ok := props["DisableExecuteApiEndpoint"]; ok {
		body["x-amazon-apigateway-endpoint-configuration"] = map[string]any{"disableExecuteApiEndpoint": d}
	}
	switch c := props["CorsConfiguration"].(type) {
	case nil:
	case bool:
		if c {
			body["x-amazon-apigateway-cors"] = map[string]any{"allowOrigins": []any{"*"}, "allowHeaders": []any{"*"}, "allowMethods": []any{"*"}}
		}
	case map[string]any:
		cors := map[string]any{}
		for _, k := range slices.Sorted(maps.Keys(c)) {
			key, ok := samCORSKeys[k]
			if !ok {
				problems = append(problems, fmt.Sprintf("CorsConfiguration.%s is not a key SAM knows (%v)", k, slices.Sorted(maps.Keys(samCORSKeys))))
				continue
			}
			if k == "AllowCredentials" && c[k] == false {
				continue // SAM writes it only when true
			}
			cors[key] = c[k]
		}
		body["x-amazon-apigateway-cors"] = cors
	default:
		problems = append(problems, fmt.Sprintf("CorsConfiguration is %T, want true or a map", c))
	}
	api := map[string]any{"Body": body}
	if f, ok := props["FailOnWarnings"]; ok {
		api["FailOnWarnings"] = f
	}
	out := []samResource{{id, "AWS::ApiGatewayV2::Api", api}}

	stageProps := []string{"StageName", "StageVariables", "AccessLogSettings", "DefaultRouteSettings", "RouteSettings"}
	if !slices.ContainsFunc(stageProps, func(k string) bool { _, ok := props[k]; return ok }) {
		return out, problems // API Gateway's own $default stage
	}
	tags := map[string]any{"httpapi:createdBy": "SAM"}
	if t, ok := props["Tags"].(map[string]any); ok {
		maps.Copy(tags, t)
	}
	stage := map[string]any{"ApiId": map[string]any{"Ref": id}, "StageName": "$default", "AutoDeploy": true, "Tags": tags}
	for _, k := range stageProps {
		if v, ok := props[k]; ok {
			stage[k] = v
		}
	}
	stageID := id + "ApiGatewayDefaultStage"
	if n, ok := stage["StageName"].(string); ok && n != "$default" {
		stageID = id + n + "Stage"
	}
	return append(out, samResource{stageID, "AWS::ApiGatewayV2::Stage", stage}), problems
}

// ------------------------------------------------------------- validation

var printer = message.NewPrinter(language.English)

// schemaProblems validates every resource of tpl; used collects the types
// it found a schema for. Each problem names the template, resource, the
// combination of conditions and the property.
func schemaProblems(t *testing.T, name string, tpl *cfnTemplate, used map[string]bool) []string {
	t.Helper()
	schemas := loadSchemas(t)
	var problems []string
	for _, tid := range slices.Sorted(maps.Keys(tpl.Resources)) {
		r := tpl.Resources[tid]
		expanded, samProblems := samExpand(tpl, tid, r)
		for _, p := range samProblems {
			problems = append(problems, fmt.Sprintf("%s: %s (%s): %s", name, tid, r.Type, p))
		}
		for _, x := range expanded {
			problems = append(problems, resourceProblems(t, schemas, tpl, name, tid, r, x, used)...)
		}
	}
	return problems
}

// resourceProblems validates x, which SAM makes of the template's resource
// tid (r) or which is r itself.
func resourceProblems(t *testing.T, schemas map[string]*cfnSchema, tpl *cfnTemplate, name, tid string, r cfnResource, x samResource, used map[string]bool) []string {
	t.Helper()
	var problems []string
	id, typ, props := x.id, x.typ, x.props
	where := fmt.Sprintf("%s: %s (%s)", name, id, typ)
	if r.Type != typ {
		where = fmt.Sprintf("%s: %s (%s as %s)", name, id, r.Type, typ)
		if id != tid {
			where = fmt.Sprintf("%s: %s (%s, made by SAM of %s %s)", name, id, typ, r.Type, tid)
		}
	}
	s := schemas[typ]
	if s == nil {
		hint := "copy it from ../shared/aws-schemas"
		if strings.HasPrefix(typ, "AWS::Serverless::") {
			hint = "SAM types have none: teach the test what SAM makes of it"
		}
		return append(problems, fmt.Sprintf("%s: no schema for resource type %s in infra/%s: %s", where, typ, schemaDir, hint))
	}
	used[typ] = true
	combos, err := combinations(tpl, props, r.Condition)
	if err != nil {
		return append(problems, fmt.Sprintf("%s: %v", where, err))
	}
	seen := map[string]bool{}
	for _, conds := range combos {
		inst, err := pickBranches(props, conds)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s%s: %v", where, describe(conds), err))
			continue
		}
		key, _ := json.Marshal(inst)
		if seen[string(key)] {
			continue
		}
		seen[string(key)] = true
		for _, p := range s.check(inst.(map[string]any)) {
			problems = append(problems, fmt.Sprintf("%s%s: %s", where, describe(conds), p))
		}
	}
	return problems
}

// check validates one resource's properties (no Fn::If left).
func (s *cfnSchema) check(props map[string]any) []string {
	var problems []string
	inst := deepCopy(props).(map[string]any)
	var leaves []*jsonschema.ValidationError
	for range 64 {
		leaves = nil
		err := s.schema.Validate(inst)
		if err == nil {
			break
		}
		verr, ok := err.(*jsonschema.ValidationError)
		if !ok {
			return []string{err.Error()}
		}
		leaves = unexplained(verr, inst)
		if !coerce(inst, leaves) {
			break
		}
	}
	for _, e := range leaves {
		msg := e.ErrorKind.LocalizedString(printer)
		if kw := strings.Join(e.ErrorKind.KeywordPath(), "/"); !strings.HasPrefix(msg, kw+":") {
			msg = kw + ": " + msg
		}
		problems = append(problems, fmt.Sprintf("/%s: %s", strings.Join(e.InstanceLocation, "/"), msg))
	}
	has := func(k string) bool { _, ok := props[k]; return ok }
	count := func(keys []string) (n int) {
		for _, k := range keys {
			if has(k) {
				n++
			}
		}
		return n
	}
	if len(s.requiredXor) > 0 && count(s.requiredXor) != 1 {
		problems = append(problems, fmt.Sprintf("requiredXor: exactly one of %v, got %d", s.requiredXor, count(s.requiredXor)))
	}
	if len(s.requiredOr) > 0 && count(s.requiredOr) == 0 {
		problems = append(problems, fmt.Sprintf("requiredOr: at least one of %v", s.requiredOr))
	}
	for _, k := range slices.Sorted(maps.Keys(s.dependentRequired)) {
		for _, d := range s.dependentRequired[k] {
			if has(k) && !has(d) {
				problems = append(problems, fmt.Sprintf("/%s: dependentRequired: needs %s", k, d))
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(s.dependentExcluded)) {
		for _, d := range s.dependentExcluded[k] {
			if has(k) && has(d) {
				problems = append(problems, fmt.Sprintf("/%s: dependentExcluded: not with %s", k, d))
			}
		}
	}
	for _, k := range s.readOnly {
		if has(k) {
			problems = append(problems, fmt.Sprintf("/%s: readOnlyProperties: CloudFormation sets it; a template may not", k))
		}
	}
	return problems
}

// unexplained returns the leaf errors of e that intrinsics do not explain:
// an error at or inside an intrinsic is the intrinsic's value, which the
// schema is taken to accept; an anyOf/oneOf holds if one branch fails only
// that way.
func unexplained(e *jsonschema.ValidationError, inst any) []*jsonschema.ValidationError {
	switch k := e.ErrorKind.(type) {
	case *kind.AnyOf:
		return branches(e, inst)
	case *kind.OneOf:
		if k.Subschemas == nil { // no branch matched
			return branches(e, inst)
		}
	}
	if len(e.Causes) > 0 {
		var out []*jsonschema.ValidationError
		for _, c := range e.Causes {
			out = append(out, unexplained(c, inst)...)
		}
		return out
	}
	if underIntrinsic(inst, e.InstanceLocation) {
		return nil
	}
	return []*jsonschema.ValidationError{e}
}

func branches(e *jsonschema.ValidationError, inst any) []*jsonschema.ValidationError {
	var out []*jsonschema.ValidationError
	for _, c := range e.Causes {
		r := unexplained(c, inst)
		if len(r) == 0 {
			return nil
		}
		out = append(out, r...)
	}
	return out
}

// underIntrinsic reports whether loc is, or is inside, an intrinsic of v.
func underIntrinsic(v any, loc []string) bool {
	for i := 0; ; i++ {
		if isIntrinsic(v) {
			return true
		}
		if i == len(loc) {
			return false
		}
		switch x := v.(type) {
		case map[string]any:
			v = x[loc[i]]
		case []any:
			n, err := strconv.Atoi(loc[i])
			if err != nil || n < 0 || n >= len(x) {
				return false
			}
			v = x[n]
		default:
			return false
		}
	}
}

// coerce converts, in place, the scalars whose type errors CloudFormation
// would not raise (it converts "5" to 5 for an integer, 5 to "5" for a
// string, "true" to true for a boolean), so that the next validation checks
// them against the rest of their schema. It reports whether it changed any.
func coerce(inst any, leaves []*jsonschema.ValidationError) bool {
	changed := false
	for _, e := range leaves {
		k, ok := e.ErrorKind.(*kind.Type)
		if !ok || len(e.InstanceLocation) == 0 {
			continue
		}
		parent, last := valueAt(inst, e.InstanceLocation[:len(e.InstanceLocation)-1]), e.InstanceLocation[len(e.InstanceLocation)-1]
		cur := valueAt(parent, []string{last})
		var conv any
		switch {
		case slices.Contains(k.Want, "string"):
			switch cur.(type) {
			case int, int64, float64, bool:
				conv = fmt.Sprint(cur)
			}
		case slices.Contains(k.Want, "integer") || slices.Contains(k.Want, "number"):
			if s, ok := cur.(string); ok {
				if n, err := strconv.ParseInt(s, 10, 64); err == nil {
					conv = n
				} else if f, err := strconv.ParseFloat(s, 64); err == nil && slices.Contains(k.Want, "number") {
					conv = f
				}
			}
		case slices.Contains(k.Want, "boolean"):
			if s, ok := cur.(string); ok && (s == "true" || s == "false") {
				conv = s == "true"
			}
		}
		if conv == nil {
			continue
		}
		switch p := parent.(type) {
		case map[string]any:
			p[last] = conv
			changed = true
		case []any:
			if n, err := strconv.Atoi(last); err == nil && n >= 0 && n < len(p) {
				p[n] = conv
				changed = true
			}
		}
	}
	return changed
}

func valueAt(v any, loc []string) any {
	for _, step := range loc {
		switch x := v.(type) {
		case map[string]any:
			v = x[step]
		case []any:
			n, err := strconv.Atoi(step)
			if err != nil || n < 0 || n >= len(x) {
				return nil
			}
			v = x[n]
		default:
			return nil
		}
	}
	return v
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			out[k] = deepCopy(val)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			out[i] = deepCopy(val)
		}
		return out
	}
	return v
}

// ------------------------------------------------------------------ tests

// TestTemplateSchemas: every resource of every template is valid against
// its type's CloudFormation schema, in every combination of conditions.
func TestTemplateSchemas(t *testing.T) {
	infraFiles, err := filepath.Glob("aws/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files := append([]string{templatePath}, infraFiles...)
	used := map[string]bool{}
	for _, f := range files {
		tpl := loadTemplate(t, f)
		for _, p := range schemaProblems(t, f, tpl, used) {
			t.Error(p)
		}
	}
	for _, p := range uncheckedPatterns {
		t.Logf("not checked (Go's regexp cannot compile it): pattern %q", p)
	}
	for typ, s := range loadSchemas(t) {
		if !used[typ] {
			t.Errorf("%s: no template has a %s; keep only the schemas the templates use", s.file, typ)
		}
	}
}

// TestTemplateSchemasCatch: the validation fails on real classes of error,
// naming the property, and passes what CloudFormation accepts.
func TestTemplateSchemasCatch(t *testing.T) {
	const header = `AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Topic: { Type: String }
  Topics: { Type: CommaDelimitedList }
  Size: { Type: Number }
  Vpc: { Type: String }
  Source: { Type: String, AllowedValues: [MSK, Other] }
Conditions:
  IsMsk: !Equals [!Ref Source, MSK]
  NotMsk: !Not [!Condition IsMsk]
Resources:
`
	const mapping = `  Mapping:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      FunctionName: fn
      EventSourceArn: arn:aws:kafka:us-east-1:123456789012:cluster/c/1
      StartingPosition: TRIM_HORIZON
`
	const httpAPI = `  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      FailOnWarnings: true
      DefaultRouteSettings: { ThrottlingRateLimit: 100, ThrottlingBurstLimit: 50 }
      CorsConfiguration: { AllowOrigins: [!Sub "https://${Topic}"], AllowMethods: [GET], MaxAge: 60 }
      AccessLogSettings: { DestinationArn: !Ref Topic, Format: $context.requestId }
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Handler: bootstrap
      Runtime: provided.al2023
      Role: arn:aws:iam::123456789012:role/r
`
	for _, tc := range []struct {
		name, resources string
		want            []string // substrings of one problem each; none: valid
	}{
		{"a Kafka mapping with two topics", mapping + `      Topics: [!Ref Topic, other_topic]
`, []string{"Mapping (AWS::Lambda::EventSourceMapping): /Topics: maxItems: got 2, want 1"}},
		{"a security group description with an apostrophe", `  Group:
    Type: AWS::EC2::SecurityGroup
    Properties:
      GroupDescription: The pipeline's functions
      VpcId: !Ref Vpc
`, []string{"Group (AWS::EC2::SecurityGroup): /GroupDescription: pattern"}},
		{"a batch over 10,000 records", mapping + `      Topics: [!Ref Topic]
      BatchSize: 20000
`, []string{"/BatchSize: maximum"}},
		{"a numeric string over the limit", mapping + `      Topics: [!Ref Topic]
      BatchSize: "20000"
`, []string{"/BatchSize: maximum"}},
		{"an unknown property", mapping + `      Topics: [!Ref Topic]
      ConsumerGroup: voting-tally
`, []string{"additionalProperties", "'ConsumerGroup'"}},
		{"a wrong type", mapping + `      Topics: [!Ref Topic]
      Enabled: [true]
`, []string{"/Enabled: type: got array, want boolean"}},
		{"an error in one branch of an Fn::If", mapping + `      Topics: [!Ref Topic]
      BatchSize: !If [IsMsk, 100, 0]
`, []string{"[IsMsk=false]: /BatchSize: minimum"}},
		{"a nested unknown property", mapping + `      Topics: [!Ref Topic]
      DestinationConfig:
        OnFailure:
          Destination: !Ref Topic
          Retries: 3
`, []string{"/DestinationConfig/OnFailure: additionalProperties", "'Retries'"}},
		{"a SAM function property of the wrong type", `  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Handler: bootstrap
      Runtime: provided.al2023
      Role: arn:aws:iam::123456789012:role/r
      MemorySize: lots
`, []string{"Fn (AWS::Serverless::Function as AWS::Lambda::Function): /MemorySize: type"}},
		{"a SAM function property the test cannot translate", `  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Handler: bootstrap
      Runtime: provided.al2023
      Role: arn:aws:iam::123456789012:role/r
      AutoPublishAlias: live
`, []string{"SAM property AutoPublishAlias is not checked"}},
		{"an HttpApi event property SAM does not know", httpAPI + `      Events:
        Page: { Type: HttpApi, Properties: { ApiId: !Ref Api, Method: GET, Path: /, Payload: "2.0" } }
`, []string{"Fn (AWS::Serverless::Function): SAM event Page: HttpApi property Payload is not one SAM knows"}},
		{"a SAM event type the test cannot translate", httpAPI + `      Events:
        Queue: { Type: SQS, Properties: { Queue: !Ref Topic } }
`, []string{"SAM event Queue of type SQS is not checked"}},
		{"a stage setting of the wrong type", strings.Replace(httpAPI, "ThrottlingBurstLimit: 50", "ThrottlingBurstLimit: lots", 1), []string{
			"ApiApiGatewayDefaultStage (AWS::ApiGatewayV2::Stage, made by SAM of AWS::Serverless::HttpApi Api): /DefaultRouteSettings/ThrottlingBurstLimit: type"}},
		{"an unknown access log setting", strings.Replace(httpAPI, "Format: $context.requestId", "Formatt: $context.requestId", 1), []string{
			"ApiApiGatewayDefaultStage", "/AccessLogSettings: additionalProperties", "'Formatt'"}},
		{"an HttpApi property the test cannot translate", strings.Replace(httpAPI, "      FailOnWarnings: true\n", "      FailOnWarnings: true\n      Domain: { DomainName: vote.example.org }\n", 1), []string{
			"Api (AWS::Serverless::HttpApi): SAM property Domain is not checked"}},
		{"a CORS key SAM does not know", strings.Replace(httpAPI, "AllowOrigins:", "AllowOrigin:", 1), []string{
			"CorsConfiguration.AllowOrigin is not a key SAM knows"}},
		{"an HttpApi, its stage and a route's permission", httpAPI + `      Events:
        Page: { Type: HttpApi, Properties: { ApiId: !Ref Api, Method: GET, Path: "/a/{b}", PayloadFormatVersion: "2.0" } }
`, nil},
		{"a resource type with no schema", `  Sub:
    Type: AWS::SNS::Subscription
    Properties:
      Protocol: email
`, []string{"no schema for resource type AWS::SNS::Subscription"}},
		{"CloudFormation keywords: requiredXor, readOnlyProperties", `  In:
    Type: AWS::EC2::SecurityGroupIngress
    Properties:
      IpProtocol: tcp
      GroupId: !Ref Vpc
      CidrIp: 10.0.0.0/8
      SourceSecurityGroupId: !Ref Vpc
      Id: sg-1
`, []string{"requiredXor", "/Id: readOnlyProperties"}},
		{"intrinsics where values go, AWS::NoValue, conversions", mapping + `      Topics: !Ref Topics
      BatchSize: !Ref Size
      Enabled: "true"
      MaximumBatchingWindowInSeconds: "0"
      Queues: !Ref AWS::NoValue
      SourceAccessConfigurations:
        - !If [IsMsk, { Type: SASL_SCRAM_512_AUTH, URI: !Ref Topic }, !Ref AWS::NoValue]
        - { Type: VPC_SUBNET, URI: !Sub "subnet:${Vpc}" }
      ProvisionedPollerConfig: { MinimumPollers: 1, MaximumPollers: !Ref Size }
`, nil},
		{"a resource's own condition decides its Fn::Ifs", `  Mapping:
    Type: AWS::Lambda::EventSourceMapping
    Condition: IsMsk
    Properties:
      FunctionName: fn
      Topics: [!Ref Topic]
      BatchSize: !If [NotMsk, 0, 100]
`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tpl := parseTemplate(t, "snippet.yaml", []byte(header+tc.resources))
			problems := schemaProblems(t, "snippet.yaml", tpl, map[string]bool{})
			if len(tc.want) == 0 && len(problems) > 0 {
				t.Errorf("valid snippet refused:\n%s", strings.Join(problems, "\n"))
			}
			for _, w := range tc.want {
				found := slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, w) })
				if !found {
					t.Errorf("no problem mentions %q; got:\n%s", w, strings.Join(problems, "\n"))
				}
			}
		})
	}
}
