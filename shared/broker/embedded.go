package broker

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Embedded is an in-process Kafka-compatible broker (franz-go's kfake).
type Embedded struct {
	Cluster *kfake.Cluster
}

// EmbeddedOptions configure StartEmbedded.
type EmbeddedOptions struct {
	// Topics are created at start with their partition counts.
	Topics []TopicSpec
	// DataDir, when set, persists records, groups and committed offsets so a
	// restarted harness resumes, and keeps memory bounded (records live on
	// disk, not in the heap). Empty keeps everything in memory (tests).
	DataDir string
	// Port is the listening port on 127.0.0.1; 0 picks a free one.
	Port int
	// Extra options, e.g. kfake.EnableSASL for tests.
	Extra []kfake.Opt
}

// StartEmbedded starts a single-broker cluster listening on 127.0.0.1.
//
// Every new cluster gets a cluster ID of its own (a cluster restarted on
// its DataDir keeps the one it was created with), so that an election
// recorded as carried by it is recognised, and one carried by another
// cluster is not mistaken for it.
func StartEmbedded(o EmbeddedOptions) (*Embedded, error) {
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, err
	}
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(o.Port), kfake.ClusterID("embedded-" + hex.EncodeToString(id[:]))}
	for _, t := range o.Topics {
		opts = append(opts, kfake.SeedTopics(t.Partitions, t.Name))
	}
	if o.DataDir != "" {
		opts = append(opts, kfake.DataDir(o.DataDir))
	}
	opts = append(opts, o.Extra...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	return &Embedded{Cluster: c}, nil
}

// Addrs returns the broker addresses, for KAFKA_BROKERS.
func (e *Embedded) Addrs() []string { return e.Cluster.ListenAddrs() }

// Close stops the broker, persisting its state when it has a DataDir.
func (e *Embedded) Close() { e.Cluster.Close() }
