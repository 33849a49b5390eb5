package broker

import (
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
func StartEmbedded(o EmbeddedOptions) (*Embedded, error) {
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(o.Port)}
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
