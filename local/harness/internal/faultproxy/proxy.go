// Package faultproxy is a TCP proxy for fault drills: it forwards
// connections to a target (Postgres in the drills) and, on demand, cuts
// every connection and refuses new ones for a while, or lets a Postgres
// COMMIT reach the server but swallows the server's answer and drops the
// connection, so the client cannot know whether its transaction committed.
package faultproxy

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"
)

// Proxy forwards TCP connections to a target address.
type Proxy struct {
	target string
	ln     net.Listener

	mu    sync.Mutex
	conns map[*pair]struct{}
	down  bool

	dropAcks atomic.Int64 // COMMIT acknowledgements still to swallow
	wg       sync.WaitGroup

	// Accepted, Refused, Cut and AcksDropped count what the proxy did.
	Accepted, Refused, Cut, AcksDropped atomic.Int64
}

// Start listens on a free port of 127.0.0.1 and forwards to target.
func Start(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{target: target, ln: ln, conns: map[*pair]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the host:port clients connect to.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Down cuts every open connection and refuses new ones (accepting and
// closing them at once) until Up.
func (p *Proxy) Down() {
	p.mu.Lock()
	p.down = true
	conns := p.conns
	p.conns = map[*pair]struct{}{}
	p.mu.Unlock()
	for c := range conns {
		c.close()
		p.Cut.Add(1)
	}
}

// Up accepts connections again.
func (p *Proxy) Up() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// DropCommitAcks makes the next n COMMITs (Postgres simple-query "commit",
// as pgx sends it) reach the server, then swallows the server's answer and
// closes that connection: the transaction commits, the client sees an error.
func (p *Proxy) DropCommitAcks(n int) { p.dropAcks.Add(int64(n)) }

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() {
	p.ln.Close()
	p.Down()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			p.Refused.Add(1)
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		pr := &pair{client: c, server: s}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			p.Refused.Add(1)
			pr.close()
			continue
		}
		p.conns[pr] = struct{}{}
		p.mu.Unlock()
		p.Accepted.Add(1)
		p.wg.Add(2)
		go func() { defer p.wg.Done(); p.clientToServer(pr) }()
		go func() { defer p.wg.Done(); p.serverToClient(pr) }()
	}
}

type pair struct {
	client, server net.Conn
	// swallow is set once a COMMIT whose answer must be lost went to the server.
	swallow atomic.Bool
	once    sync.Once
}

func (c *pair) close() {
	c.once.Do(func() {
		c.client.Close()
		c.server.Close()
	})
}

func (p *Proxy) forget(c *pair) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.close()
}

// commitMsg is the simple-query message pgx sends to commit: 'Q', length
// 11 (itself and "commit\x00"), "commit\x00".
var commitMsg = []byte("Q\x00\x00\x00\x0bcommit\x00")

func (p *Proxy) clientToServer(c *pair) {
	defer p.forget(c)
	buf := make([]byte, 32<<10)
	// tail is the end of the previous read, one byte short of a whole
	// message, so a COMMIT split across reads is seen once.
	var tail []byte
	for {
		n, err := c.client.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			window := append(tail, chunk...)
			if p.dropAcks.Load() > 0 && bytes.Contains(window, commitMsg) && p.takeAck() {
				c.swallow.Store(true)
			}
			tail = append(tail[:0], window[max(0, len(window)-len(commitMsg)+1):]...)
			if _, werr := c.server.Write(chunk); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *Proxy) takeAck() bool {
	for {
		n := p.dropAcks.Load()
		if n <= 0 {
			return false
		}
		if p.dropAcks.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

func (p *Proxy) serverToClient(c *pair) {
	defer p.forget(c)
	buf := make([]byte, 32<<10)
	for {
		n, err := c.server.Read(buf)
		if n > 0 {
			if c.swallow.Load() {
				// The server answered the COMMIT: it is durable. The client
				// never hears of it.
				p.AcksDropped.Add(1)
				return
			}
			if _, werr := c.client.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
