package harness

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"golang.org/x/time/rate"

	"github.com/votingpipe/voting/infra"
	"github.com/votingpipe/voting/local/trigger"
	"github.com/votingpipe/voting/shared/tokens"
)

// TokensFile is where the harness hands the voters' ballot tokens out.
func (e *Env) TokensFile() string { return filepath.Join(e.StateDir, "tokens.csv") }

// TokenKey returns the key of the ballot tokens' hashes: TOKEN_KEY, or the
// one kept in <state-dir>/token.key (made, at random, the first time).
func (e *Env) TokenKey() (tokens.Key, error) {
	e.keyOnce.Do(func() {
		if e.Config.Tokens.Key != "" || e.Config.Tokens.KeySecretARN != "" {
			e.key, e.keyErr = tokens.LoadKey(context.Background(), e.Config.Tokens, nil)
			return
		}
		e.key, e.keyErr = stateKey(filepath.Join(e.StateDir, "token.key"))
	})
	return e.key, e.keyErr
}

// stateKey reads the key kept at path, or makes one there.
func stateKey(path string) (tokens.Key, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		k := make([]byte, tokens.MinKeyBytes)
		rand.Read(k) //nolint:errcheck // never fails
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			return stateKey(path) // another harness made it first
		}
		if err != nil {
			return nil, err
		}
		_, err = f.WriteString(hex.EncodeToString(k) + "\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("token key %s: %w", path, err)
		}
		return tokens.NewKey(k)
	}
	if err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	k, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("token key %s: not hex", path)
	}
	return tokens.NewKey(k)
}

// CastServer serves the cast function over HTTP as API Gateway's HTTP API
// does (and `sam local start-api`): each request becomes a payload 2.0
// event, the function is invoked through the Lambda handler path, and its
// response becomes the HTTP response. Routes other than infra.CastRoutes
// are 404 without an invocation, and beyond infra.CastThrottle requests are
// 429, as the deployed API's stage answers them.
type CastServer struct {
	// URL is where it listens (http://host:port/).
	URL string
	srv *http.Server
	ln  net.Listener
}

// maxGatewayBody is the most the emulated gateway reads of a body; the
// function itself refuses far less (CAST_MAX_BODY_BYTES).
const maxGatewayBody = 1 << 20

// ServeCast starts serving inv (the cast function) on addr.
func ServeCast(addr string, inv trigger.Invoker, log interface {
	Warn(string, ...any)
}) (*CastServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cast: listen on %s (CAST_ADDR): %w", addr, err)
	}
	limit := rate.NewLimiter(rate.Limit(infra.CastThrottle.RateLimit), infra.CastThrottle.BurstLimit)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !limit.Allow() {
			gatewayError(w, http.StatusTooManyRequests, "Too Many Requests")
			return
		}
		route, params, ok := castRoute(r.Method, r.URL.Path)
		if !ok {
			gatewayError(w, http.StatusNotFound, "Not Found")
			return
		}
		ev, err := castEvent(r, route, params)
		if err != nil {
			gatewayError(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
			return
		}
		payload, _ := json.Marshal(ev)
		out, err := inv.Invoke(r.Context(), payload)
		var resp events.APIGatewayV2HTTPResponse
		if err == nil {
			err = json.Unmarshal(out, &resp)
		}
		if err != nil {
			log.Warn("cast: the function failed", "error", err)
			gatewayError(w, http.StatusInternalServerError, "Internal Server Error")
			return
		}
		writeCastResponse(w, resp)
	})
	s := &CastServer{URL: "http://" + ln.Addr().String() + "/", ln: ln,
		srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}}
	go s.srv.Serve(ln) //nolint:errcheck // ends with Close
	return s, nil
}

// Close stops the server, letting requests in flight finish (for up to 5 s).
func (s *CastServer) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.srv.Shutdown(ctx) //nolint:errcheck
}

// castRoute matches a request with the HTTP API's routes: the route key and
// path parameters. Preflights (OPTIONS) reach the function, as the API's
// CORS configuration would answer them.
func castRoute(method, path string) (string, map[string]string, bool) {
	for _, rt := range infra.CastRoutes {
		if rt.Method != method && method != http.MethodOptions {
			continue
		}
		if pre, ok := strings.CutSuffix(rt.Path, "{name}"); ok {
			if name, ok := strings.CutPrefix(path, pre); ok && name != "" && !strings.Contains(name, "/") {
				return method + " " + rt.Path, map[string]string{"name": name}, true
			}
			continue
		}
		if rt.Path == path {
			return method + " " + rt.Path, nil, true
		}
	}
	return "", nil, false
}

// castEvent is the HTTP API's payload 2.0 event of r.
func castEvent(r *http.Request, route string, params map[string]string) (events.APIGatewayV2HTTPRequest, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxGatewayBody+1))
	if err != nil || len(body) > maxGatewayBody {
		return events.APIGatewayV2HTTPRequest{}, errors.New("body too large")
	}
	ev := events.APIGatewayV2HTTPRequest{Version: "2.0", RouteKey: route, RawPath: r.URL.Path, RawQueryString: r.URL.RawQuery,
		Headers: map[string]string{}, PathParameters: params}
	for k, v := range r.Header {
		ev.Headers[strings.ToLower(k)] = strings.Join(v, ",")
	}
	ev.Headers["host"] = r.Host
	if q := r.URL.Query(); len(q) > 0 {
		ev.QueryStringParameters = map[string]string{}
		for k, v := range q {
			ev.QueryStringParameters[k] = strings.Join(v, ",")
		}
	}
	if utf8.Valid(body) {
		ev.Body = string(body)
	} else {
		ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
	}
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	now := time.Now()
	rc := &ev.RequestContext
	rc.RouteKey, rc.Stage, rc.DomainName, rc.RequestID = route, "$default", r.Host, fmt.Sprintf("local-%d", now.UnixNano())
	rc.Time, rc.TimeEpoch = now.UTC().Format("02/Jan/2006:15:04:05 -0700"), now.UnixMilli()
	rc.HTTP = events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: r.Method, Path: r.URL.Path, Protocol: r.Proto,
		SourceIP: host, UserAgent: r.UserAgent()}
	return ev, nil
}

func writeCastResponse(w http.ResponseWriter, resp events.APIGatewayV2HTTPResponse) {
	for k, v := range resp.Headers {
		w.Header().Set(k, v)
	}
	for k, vs := range resp.MultiValueHeaders {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		if b, err := base64.StdEncoding.DecodeString(resp.Body); err == nil {
			body = b
		}
	}
	if resp.StatusCode == 0 {
		resp.StatusCode = http.StatusOK
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(body) //nolint:errcheck
}

// gatewayError answers as API Gateway does when it does not invoke.
func gatewayError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"message":%q}`, msg)
}
