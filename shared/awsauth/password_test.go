package awsauth_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/votingpipe/voting/shared/awsauth"
	"github.com/votingpipe/voting/shared/config"
	"github.com/votingpipe/voting/shared/store"
)

// passwordServer is a Postgres server that asks for a password and refuses
// it. With echo set it is hostile: its error message quotes the password it
// was sent, so only the pipeline's own redaction keeps it out of errors.
type passwordServer struct {
	ln   net.Listener
	echo bool
	wg   sync.WaitGroup
	mu   sync.Mutex
	got  []string // passwords received
}

func startPasswordServer(t *testing.T, echo bool) *passwordServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &passwordServer{ln: ln, echo: echo}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() { defer s.wg.Done(); s.serve(c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *passwordServer) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	be := pgproto3.NewBackend(c, c)
	var user string
	for user == "" {
		msg, err := be.ReceiveStartupMessage()
		if err != nil {
			return
		}
		switch m := msg.(type) {
		case *pgproto3.SSLRequest, *pgproto3.GSSEncRequest:
			if _, err := c.Write([]byte("N")); err != nil {
				return
			}
		case *pgproto3.StartupMessage:
			user = m.Parameters["user"]
		default:
			return
		}
	}
	be.Send(&pgproto3.AuthenticationCleartextPassword{})
	if err := be.Flush(); err != nil {
		return
	}
	if err := be.SetAuthType(pgproto3.AuthTypeCleartextPassword); err != nil {
		return
	}
	msg, err := be.Receive()
	if err != nil {
		return
	}
	pw, ok := msg.(*pgproto3.PasswordMessage)
	if !ok {
		return
	}
	s.mu.Lock()
	s.got = append(s.got, pw.Password)
	s.mu.Unlock()
	text := fmt.Sprintf("password authentication failed for user %q", user)
	if s.echo {
		text += fmt.Sprintf(" (it sent %q, raw: %s)", pw.Password, pw.Password)
	}
	be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", Code: "28P01", Message: text})
	be.Flush() //nolint:errcheck
}

func (s *passwordServer) passwords() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}

// leaks returns the forms of pw found in text: the password itself, its
// URL encodings, and every run of it of 4 or more characters between
// spaces (a password with a space must not leak half).
func leaks(text, pw string) []string {
	forms := []string{pw, url.QueryEscape(pw), url.PathEscape(pw), url.UserPassword("u", pw).String()[2:]}
	for _, w := range strings.Fields(pw) {
		if len(w) >= 4 {
			forms = append(forms, w)
		}
	}
	var out []string
	for _, f := range forms {
		if strings.Contains(text, f) {
			out = append(out, f)
		}
	}
	return out
}

// TestDatabasePasswordNeverLeaks opens the database with a wrong password,
// given in a URL or as a keyword, through store.Open (with and without
// creating the database) and awsauth.OpenStore (logging its failure as a
// function's main does), against a server that refuses it politely and one that
// quotes it back: neither the error nor any log line may carry it.
func TestDatabasePasswordNeverLeaks(t *testing.T) {
	const pw = "Wr0ng-Pa55w0rd/with:chars&more%"
	const spaced = "Wr0ngPa55 w0rdWith Spaces"
	for _, echo := range []bool{false, true} {
		srv := startPasswordServer(t, echo)
		host, port, _ := net.SplitHostPort(srv.ln.Addr().String())
		dsns := map[string]struct{ dsn, pw string }{
			"url":     {"postgres://" + url.UserPassword("voter", pw).String() + "@" + srv.ln.Addr().String() + "/voting?sslmode=disable&connect_timeout=5", pw},
			"keyword": {fmt.Sprintf("host=%s port=%s user=voter password='%s' dbname=voting sslmode=prefer connect_timeout=5", host, port, spaced), spaced},
		}
		for form, d := range dsns {
			name := fmt.Sprintf("%s DSN, %s server", form, map[bool]string{false: "polite", true: "hostile"}[echo])
			t.Run(name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				var logs strings.Builder
				var mu sync.Mutex
				log := slog.New(slog.NewJSONHandler(writerFunc(func(p []byte) (int, error) {
					mu.Lock()
					defer mu.Unlock()
					return logs.Write(p)
				}), &slog.HandlerOptions{Level: slog.LevelDebug}))

				var errs []error
				for _, create := range []bool{false, true} {
					_, err := store.Open(ctx, d.dsn, store.Options{CreateDatabase: create})
					errs = append(errs, err)
				}
				cfg, err := config.LoadFrom[config.Config](map[string]string{"DATABASE_URL": d.dsn, "KAFKA_BROKERS": "127.0.0.1:1"}, config.Lambda)
				if err != nil {
					t.Fatalf("a valid configuration was refused: %v", err)
				}
				_, err = awsauth.OpenStore(ctx, cfg.Database, config.AWS{})
				log.Error("start", "error", err) // what a function's main reports
				errs = append(errs, err)

				for i, err := range errs {
					if err == nil {
						t.Fatalf("open %d succeeded with a wrong password", i)
					}
					if l := leaks(err.Error(), d.pw); len(l) > 0 {
						t.Errorf("error leaks the password as %q: %v", l, err)
					}
					if !strings.Contains(err.Error(), "password authentication failed") {
						t.Errorf("the error does not say what went wrong: %v", err)
					}
				}
				if l := leaks(logs.String(), d.pw); len(l) > 0 {
					t.Errorf("logs leak the password as %q:\n%s", l, logs.String())
				}
				if got := srv.passwords(); len(got) == 0 || got[len(got)-1] != d.pw {
					t.Fatalf("the server did not receive the password (got %q): the test checks nothing", got)
				}
			})
		}
	}
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
