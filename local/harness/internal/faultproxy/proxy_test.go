package faultproxy_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/votingpipe/voting/local/harness/internal/faultproxy"
	"github.com/votingpipe/voting/local/internal/testkit"
)

// through returns dsn with its host replaced by the proxy's.
func through(t *testing.T, dsn string, p *faultproxy.Proxy) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = p.Addr()
	return u.String()
}

func TestProxyFaults(t *testing.T) {
	dsn := testkit.NewDatabase(t)
	u, _ := url.Parse(dsn)
	p, err := faultproxy.Start(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, through(t, dsn, p))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE t (x int)`); err != nil {
		t.Fatal(err)
	}

	// A lost COMMIT acknowledgement: the client sees an error, the row is there.
	p.DropCommitAcks(1)
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO t VALUES (1)`)
		return err
	})
	if err == nil {
		t.Fatal("commit succeeded although its answer was dropped")
	}
	direct, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close(ctx)
	var n int
	if err := direct.QueryRow(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("rows after a lost commit ack: %d (%v), want 1", n, err)
	}
	if p.AcksDropped.Load() != 1 {
		t.Fatalf("acks dropped %d", p.AcksDropped.Load())
	}

	// Arming after a COMMIT went through does not catch that COMMIT again:
	// the next statement on the connection is answered.
	c1, err := pgx.Connect(ctx, through(t, dsn, p))
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close(ctx)
	if err := pgx.BeginFunc(ctx, c1, func(tx pgx.Tx) error { _, err := tx.Exec(ctx, `INSERT INTO t VALUES (2)`); return err }); err != nil {
		t.Fatal(err)
	}
	p.DropCommitAcks(1)
	if _, err := c1.Exec(ctx, `SELECT 1`); err != nil {
		t.Fatalf("a statement after an earlier COMMIT lost its answer: %v", err)
	}
	if err := pgx.BeginFunc(ctx, c1, func(tx pgx.Tx) error { _, err := tx.Exec(ctx, `INSERT INTO t VALUES (3)`); return err }); err == nil {
		t.Fatal("the armed COMMIT was answered")
	}

	// Down: open connections die, new ones are refused; Up: back to normal.
	c2, err := pgx.Connect(ctx, through(t, dsn, p))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close(ctx)
	p.Down()
	if err := c2.Ping(ctx); err == nil {
		t.Fatal("a connection survived Down")
	}
	if c, err := pgx.Connect(ctx, through(t, dsn, p)); err == nil {
		c.Close(ctx)
		t.Fatal("connected while down")
	}
	p.Up()
	c3, err := pgx.Connect(ctx, through(t, dsn, p))
	if err != nil {
		t.Fatalf("connect after Up: %v", err)
	}
	c3.Close(ctx)
	if p.Cut.Load() == 0 || p.Refused.Load() == 0 {
		t.Fatalf("cut %d refused %d", p.Cut.Load(), p.Refused.Load())
	}
}
