package natsbridge

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Leases share a consumer group's partitions among the processes that
// consume it, as a Kafka group coordinator does: JetStream has no consumer
// groups, and a partition must have one consumer at a time to keep its
// order. They live in a key-value bucket whose entries expire: a process
// holds a partition while it renews the partition's entry, and announces
// itself with an entry of its own, so every member can count the members
// and take a fair share. A process that dies loses its partitions when its
// entries expire.
type Leases struct {
	kv    jetstream.KeyValue
	group string
	owner string
	ttl   time.Duration
}

// DefaultLeaseTTL is how long an entry lives without renewal.
const DefaultLeaseTTL = 6 * time.Second

// Leases opens (creating if needed) the lease bucket of the bridge's
// streams for one consumer group; owner identifies this process (unique
// among the members), ttl is how long a partition stays held without
// renewal (default DefaultLeaseTTL; renew at ttl/3 or more often).
func (b *Bridge) Leases(ctx context.Context, group, owner string, ttl time.Duration) (*Leases, error) {
	if ttl <= 0 {
		ttl = DefaultLeaseTTL
	}
	bucket := safeName(b.opts.Prefix + "voting_leases")
	cfg := jetstream.KeyValueConfig{Bucket: bucket, Description: "consumer group partition leases (voting pipeline)",
		TTL: ttl, History: 1, Storage: jetstream.FileStorage}
	var kv jetstream.KeyValue
	var err error
	for attempt := range 5 {
		if kv, err = b.js.CreateOrUpdateKeyValue(ctx, cfg); err == nil {
			break
		}
		// Another process creating it at the same moment: look again.
		time.Sleep(time.Duration(20*(attempt+1)) * time.Millisecond)
	}
	if err != nil {
		return nil, fmt.Errorf("lease bucket %s: %w", bucket, err)
	}
	return &Leases{kv: kv, group: safeKey(group), owner: safeKey(owner), ttl: ttl}, nil
}

// TTL is how long an entry lives without renewal.
func (l *Leases) TTL() time.Duration { return l.ttl }

// Owner is this process's name among the members.
func (l *Leases) Owner() string { return l.owner }

func (l *Leases) memberKey(owner string) string { return "m." + l.group + "." + owner }

func (l *Leases) partKey(topic string, p int32) string {
	return "p." + l.group + "." + safeKey(topic) + "." + strconv.Itoa(int(p))
}

// Announce renews this process's membership of the group.
func (l *Leases) Announce(ctx context.Context) error {
	_, err := l.kv.Put(ctx, l.memberKey(l.owner), []byte(time.Now().UTC().Format(time.RFC3339)))
	return err
}

// Leave withdraws this process from the group.
func (l *Leases) Leave(ctx context.Context) error {
	return l.kv.Delete(ctx, l.memberKey(l.owner))
}

// Members counts the group's live members (at least 1: this one).
func (l *Leases) Members(ctx context.Context) (int, error) {
	keys, err := l.kv.ListKeys(ctx)
	if err != nil {
		return 0, err
	}
	prefix := "m." + l.group + "."
	n := 0
	self := false
	for k := range keys.Keys() {
		if strings.HasPrefix(k, prefix) {
			n++
			self = self || k == l.memberKey(l.owner)
		}
	}
	if !self {
		n++
	}
	return n, nil
}

// Acquire takes a partition if nobody holds it, returning the entry's
// revision (for Renew and Release); ok is false, with the holder's name,
// when another member holds it.
func (l *Leases) Acquire(ctx context.Context, topic string, p int32) (rev uint64, ok bool, holder string, err error) {
	rev, err = l.kv.Create(ctx, l.partKey(topic, p), []byte(l.owner))
	if err == nil {
		return rev, true, "", nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return 0, false, "", err
	}
	e, gerr := l.kv.Get(ctx, l.partKey(topic, p))
	if gerr != nil {
		return 0, false, "", nil // expired meanwhile: try again later
	}
	if string(e.Value()) == l.owner {
		// Ours from before a restart of this trigger: take it back.
		if rev, err := l.kv.Update(ctx, l.partKey(topic, p), []byte(l.owner), e.Revision()); err == nil {
			return rev, true, "", nil
		}
	}
	return 0, false, string(e.Value()), nil
}

// Renew extends a held partition; an error means it is no longer ours (it
// expired and another member took it): stop consuming it.
func (l *Leases) Renew(ctx context.Context, topic string, p int32, rev uint64) (uint64, error) {
	return l.kv.Update(ctx, l.partKey(topic, p), []byte(l.owner), rev)
}

// Release gives a partition up, once its consumer has stopped and its
// records are acknowledged.
func (l *Leases) Release(ctx context.Context, topic string, p int32, rev uint64) error {
	return l.kv.Delete(ctx, l.partKey(topic, p), jetstream.LastRevision(rev))
}

// safeKey keeps the characters a key-value key may hold.
func safeKey(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '=':
			return r
		}
		return '_'
	}, s)
}
