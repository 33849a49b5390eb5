package cast

import (
	"sync"
	"time"
)

// limiter counts each client address's unknown tokens per minute: beyond
// the limit its ballots are refused (429) until the minute is over, so
// nobody can try tokens at the API's full rate. (Guessing one at random is
// a 1 in 2^128 chance anyway; this keeps the database's lookups for voters.)
// In Lambda each instance counts its own clients.
type limiter struct {
	mu     sync.Mutex
	minute int64
	bad    map[string]int
}

// maxClients bounds the addresses remembered per minute.
const maxClients = 100_000

func (l *limiter) allowed(client string, perMinute int, now time.Time) bool {
	if perMinute <= 0 {
		perMinute = 30
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll(now)
	return l.bad[client] < perMinute
}

func (l *limiter) failed(client string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll(now)
	if len(l.bad) < maxClients {
		l.bad[client]++
	}
}

func (l *limiter) roll(now time.Time) {
	if m := now.Unix() / 60; m != l.minute || l.bad == nil {
		l.minute, l.bad = m, map[string]int{}
	}
}
