// Package embedded runs an in-process Kafka-compatible broker (franz-go's
// kfake) for the local harness and the tests, so the pipeline runs with no
// Kafka installed. The deployed functions never link it.
package embedded

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/votingpipe/voting/shared/broker"
)

// Broker is an in-process Kafka-compatible broker (franz-go's kfake).
type Broker struct {
	Cluster *kfake.Cluster
}

// Options configure Start.
type Options struct {
	// Topics are created at start with their partition counts.
	Topics []broker.TopicSpec
	// DataDir, when set, persists records, groups and committed offsets so a
	// restarted harness resumes, and keeps memory bounded (records live on
	// disk, not in the heap). Empty keeps everything in memory (tests).
	DataDir string
	// Port is the listening port on 127.0.0.1; 0 picks a free one.
	Port int
	// Extra options, e.g. kfake.EnableSASL for tests.
	Extra []kfake.Opt
}

// Start starts a single-broker cluster listening on 127.0.0.1.
//
// Every new cluster gets a cluster ID of its own (a cluster restarted on
// its DataDir keeps the one it was created with), so that an election
// recorded as carried by it is recognised, and one carried by another
// cluster is not mistaken for it.
func Start(o Options) (*Broker, error) {
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
	return &Broker{Cluster: c}, nil
}

// Addrs returns the broker addresses, for KAFKA_BROKERS.
func (e *Broker) Addrs() []string { return e.Cluster.ListenAddrs() }

// Close stops the broker, persisting its state when it has a DataDir.
func (e *Broker) Close() { e.Cluster.Close() }
