package infra_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/votingpipe/voting/infra"
)

// TestTemplateCastApi: the cast function is reached through one HTTP API
// whose routes are infra.CastRoutes (payload format 2.0, the
// events.APIGatewayV2HTTPRequest the handler takes), whose stage throttles
// at infra.CastThrottle, whose CORS lets only the dashboard's origin call it
// (the origin the function is told), and whose access log is JSON that
// names no request body or query string; nothing else exposes the function.
func TestTemplateCastApi(t *testing.T) {
	tpl := loadTemplate(t, templatePath)
	e := newEvaluator(t, tpl, scenarios()[0].values)
	res := e.resources(t)

	var apis []string
	for id, r := range res {
		switch r.Type {
		case "AWS::Serverless::HttpApi", "AWS::Serverless::Api", "AWS::ApiGatewayV2::Api", "AWS::ApiGateway::RestApi":
			apis = append(apis, id)
		case "AWS::Lambda::Url", "AWS::Lambda::Permission":
			t.Errorf("%s (%s): the cast function is reached through CastApi only (SAM makes its permissions)", id, r.Type)
		}
	}
	if !slices.Equal(apis, []string{"CastApi"}) || res["CastApi"].Type != "AWS::Serverless::HttpApi" {
		t.Fatalf("APIs %v, want one AWS::Serverless::HttpApi, CastApi", apis)
	}
	api := res["CastApi"].Properties

	// Routes: the cast function's HttpApi events, and nothing else on the API.
	var routes []infra.CastRoute
	for _, id := range slices.Sorted(maps.Keys(res)) {
		if res[id].Type != "AWS::Serverless::Function" {
			continue
		}
		evs, _ := res[id].Properties["Events"].(map[string]any)
		for _, name := range slices.Sorted(maps.Keys(evs)) {
			ev := evs[name].(map[string]any)
			p, _ := ev["Properties"].(map[string]any)
			if id != logicalID(infra.Cast) || ev["Type"] != "HttpApi" || p["ApiId"] != "ref:CastApi" {
				t.Errorf("%s: event %s (%v on %v); only the cast function's HttpApi events on CastApi", id, name, ev["Type"], p["ApiId"])
				continue
			}
			if p["PayloadFormatVersion"] != "2.0" {
				t.Errorf("event %s: PayloadFormatVersion %v, want 2.0 (events.APIGatewayV2HTTPRequest)", name, p["PayloadFormatVersion"])
			}
			for _, k := range []string{"Auth", "RouteSettings", "Stage", "TimeoutInMillis"} {
				if v, ok := p[k]; ok {
					t.Errorf("event %s: %s %v; the API's defaults apply to every route", name, k, v)
				}
			}
			routes = append(routes, infra.CastRoute{Method: fmt.Sprint(p["Method"]), Path: fmt.Sprint(p["Path"])})
		}
	}
	key := func(r infra.CastRoute) string { return r.Method + " " + r.Path }
	sortRoutes := func(rs []infra.CastRoute) []string {
		var out []string
		for _, r := range rs {
			out = append(out, key(r))
		}
		slices.Sort(out)
		return out
	}
	if got, want := sortRoutes(routes), sortRoutes(infra.CastRoutes); !slices.Equal(got, want) {
		t.Errorf("CastApi routes %v, want infra.CastRoutes %v", got, want)
	}

	// Throttling at the edge, as infra.CastThrottle says (the harness
	// applies the same); no route may loosen it.
	drs, _ := api["DefaultRouteSettings"].(map[string]any)
	if rate := fmt.Sprint(drs["ThrottlingRateLimit"]); rate != strconv.FormatFloat(infra.CastThrottle.RateLimit, 'f', -1, 64) {
		t.Errorf("ThrottlingRateLimit %s, want infra.CastThrottle.RateLimit %v", rate, infra.CastThrottle.RateLimit)
	}
	if burst := fmt.Sprint(drs["ThrottlingBurstLimit"]); burst != strconv.Itoa(infra.CastThrottle.BurstLimit) {
		t.Errorf("ThrottlingBurstLimit %s, want infra.CastThrottle.BurstLimit %d", burst, infra.CastThrottle.BurstLimit)
	}
	if rs, ok := api["RouteSettings"]; ok {
		t.Errorf("RouteSettings %v; every route has the default throttling", rs)
	}
	// The $default stage: the API's URL (CastApiUrl, the dashboard's
	// CAST_URL) has no stage path, and the ballot page is its /.
	if sn, ok := api["StageName"]; ok && sn != "$default" {
		t.Errorf("StageName %v; CastApiUrl assumes the $default stage", sn)
	}

	// CORS: the dashboard's origin only, the methods and header the ballot
	// page (ballot.html beside the dashboard) uses, no credentials.
	origin := "https://getatt:DashboardDistribution.DomainName"
	cors, ok := api["CorsConfiguration"].(map[string]any)
	if !ok {
		t.Fatalf("CorsConfiguration %v, want a configuration naming the dashboard's origin", api["CorsConfiguration"])
	}
	if got := strs(cors["AllowOrigins"]); !slices.Equal(got, []string{origin}) {
		t.Errorf("CORS AllowOrigins %v, want only the dashboard's %s", got, origin)
	}
	castEnv := function(t, e, res, logicalID(infra.Cast))["Environment"].(map[string]any)["Variables"].(map[string]any)
	if castEnv["CAST_ALLOWED_ORIGIN"] != origin {
		t.Errorf("CAST_ALLOWED_ORIGIN %v, want the API's CORS origin %s", castEnv["CAST_ALLOWED_ORIGIN"], origin)
	}
	if got := slices.Sorted(slices.Values(strs(cors["AllowMethods"]))); !slices.Equal(got, []string{"GET", "OPTIONS", "POST"}) {
		t.Errorf("CORS AllowMethods %v, want GET, POST, OPTIONS", got)
	}
	if got := strs(cors["AllowHeaders"]); !slices.Equal(got, []string{"content-type"}) {
		t.Errorf("CORS AllowHeaders %v, want content-type", got)
	}
	if c := cors["AllowCredentials"]; c != nil && c != false {
		t.Errorf("CORS AllowCredentials %v; the ballot sends no cookies", c)
	}
	if age, err := strconv.Atoi(fmt.Sprint(cors["MaxAge"])); err != nil || age <= 0 || age > 86400 {
		t.Errorf("CORS MaxAge %v, want 1-86400 seconds", cors["MaxAge"])
	}

	// Access log: to a log group of the template with a retention, one JSON
	// object per request, of $context variables that hold no token (the
	// body, the query string, headers).
	als, _ := api["AccessLogSettings"].(map[string]any)
	lg := strings.TrimSuffix(strings.TrimPrefix(fmt.Sprint(als["DestinationArn"]), "getatt:"), ".Arn")
	if r := res[lg]; r.Type != "AWS::Logs::LogGroup" || r.Properties["RetentionInDays"] == nil {
		t.Errorf("AccessLogSettings.DestinationArn %v is not a log group of this template with a retention", als["DestinationArn"])
	}
	format := fmt.Sprint(als["Format"])
	var line map[string]string
	if err := json.Unmarshal([]byte(format), &line); err != nil {
		t.Errorf("access log format is not a JSON object of strings: %v", err)
	}
	allowed := []string{"requestId", "requestTime", "identity.sourceIp", "routeKey", "status", "responseLength",
		"responseLatency", "integrationLatency", "error.message", "integrationErrorMessage", "httpMethod", "protocol"}
	for _, m := range regexp.MustCompile(`\$(\w+)\.([\w.]+)`).FindAllStringSubmatch(format, -1) {
		if m[1] != "context" || !slices.Contains(allowed, m[2]) {
			t.Errorf("access log logs %s; only %v (nothing that can hold a token)", m[0], allowed)
		}
	}

	// The HTTP API gives up on an integration after 30 s: the function must
	// answer (or fail) before.
	if to, err := strconv.Atoi(fmt.Sprint(function(t, e, res, logicalID(infra.Cast))["Timeout"])); err != nil || to >= 30 {
		t.Errorf("CastFunction Timeout %v, want under the HTTP API's 30 s", to)
	}
}

// dependencies returns, for each resource, the resources it needs first
// once SAM has transformed the template: those its properties and DependsOn
// name, except that an HttpApi event of a function makes the API need the
// function (SAM writes the function's ARN into the API's definition), not
// the function the API.
func dependencies(tpl *cfnTemplate) map[string][]string {
	deps := map[string]map[string]bool{}
	add := func(from, to string) {
		if _, ok := tpl.Resources[to]; !ok || from == to {
			return
		}
		if deps[from] == nil {
			deps[from] = map[string]bool{}
		}
		deps[from][to] = true
	}
	var refs func(from string, v any)
	refs = func(from string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if len(x) == 1 {
				for k, arg := range x {
					switch k {
					case "Ref":
						add(from, fmt.Sprint(arg))
						return
					case "Fn::GetAtt":
						if a, ok := arg.([]any); ok && len(a) > 0 {
							add(from, fmt.Sprint(a[0]))
						}
						return
					case "Fn::Sub":
						text, vars := arg, map[string]any{}
						if a, ok := arg.([]any); ok && len(a) == 2 {
							text = a[0]
							vars, _ = a[1].(map[string]any)
							refs(from, a[1])
						}
						for _, m := range subVar.FindAllStringSubmatch(fmt.Sprint(text), -1) {
							name, _, _ := strings.Cut(m[1], ".")
							if _, local := vars[name]; !local {
								add(from, name)
							}
						}
						return
					}
				}
			}
			for _, val := range x {
				refs(from, val)
			}
		case []any:
			for _, val := range x {
				refs(from, val)
			}
		}
	}
	for id, r := range tpl.Resources {
		props := maps.Clone(r.Properties)
		if r.Type == "AWS::Serverless::Function" {
			evs, _ := props["Events"].(map[string]any)
			for _, ev := range evs {
				p, _ := ev.(map[string]any)["Properties"].(map[string]any)
				if api, ok := p["ApiId"].(map[string]any); ok {
					add(fmt.Sprint(api["Ref"]), id)
				}
			}
			delete(props, "Events")
		}
		refs(id, props)
		for _, d := range strs(r.DependsOn) {
			add(id, d)
		}
	}
	out := map[string][]string{}
	for id, ds := range deps {
		out[id] = slices.Sorted(maps.Keys(ds))
	}
	return out
}

// cycle returns a dependency cycle (A, B, ..., A), or nil.
func cycle(deps map[string][]string) []string {
	const (
		unseen = iota
		open
		done
	)
	state := map[string]int{}
	var path []string
	var visit func(id string) []string
	visit = func(id string) []string {
		switch state[id] {
		case open:
			i := slices.Index(path, id)
			return append(slices.Clone(path[i:]), id)
		case done:
			return nil
		}
		state[id] = open
		path = append(path, id)
		for _, d := range deps[id] {
			if c := visit(d); c != nil {
				return c
			}
		}
		path = path[:len(path)-1]
		state[id] = done
		return nil
	}
	for _, id := range slices.Sorted(maps.Keys(deps)) {
		if c := visit(id); c != nil {
			return c
		}
	}
	return nil
}

// TestTemplateNoCycles: CloudFormation can order the resources. The cast
// API's CORS names the dashboard's distribution, the dashboard function
// names the API's URL and the API names the cast function, so the cast
// function cannot name the API (CAST_URL): the test proves it would catch
// that.
func TestTemplateNoCycles(t *testing.T) {
	tpl := loadTemplate(t, templatePath)
	deps := dependencies(tpl)
	if c := cycle(deps); c != nil {
		t.Errorf("circular dependency: %s", strings.Join(c, " -> "))
	}
	for _, want := range [][2]string{{"CastApi", "CastFunction"}, {"CastApi", "DashboardDistribution"}, {"DashboardFunction", "CastApi"}, {"CastFunction", "TokenKeySecret"}} {
		if !slices.Contains(deps[want[0]], want[1]) {
			t.Errorf("%s does not depend on %s; the dependency reading is wrong (%v)", want[0], want[1], deps[want[0]])
		}
	}

	// The cast function told the API's URL: a cycle.
	bad := loadTemplate(t, templatePath)
	fn := bad.Resources["CastFunction"]
	vars := fn.Properties["Environment"].(map[string]any)["Variables"].(map[string]any)
	vars["CAST_URL"] = map[string]any{"Fn::Sub": "https://${CastApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/"}
	if c := cycle(dependencies(bad)); len(c) == 0 || !slices.Contains(c, "CastApi") || !slices.Contains(c, "CastFunction") {
		t.Errorf("CAST_URL from CastApi on CastFunction: cycle %v, want CastApi -> CastFunction -> CastApi", c)
	}
}
