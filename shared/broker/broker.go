// Package broker connects the pipeline to Kafka: franz-go client options from
// the configuration (TLS, SASL/PLAIN, SCRAM, AWS MSK IAM), topic creation, a
// Publisher for the processors, and an embedded in-process broker (kfake) so
// the pipeline runs and is tested with no Kafka installed.
package broker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/votingpipe/voting/shared/config"
	"github.com/votingpipe/voting/shared/election"
)

// IAMAuth returns a SASL mechanism for AWS_MSK_IAM. It is set by the AWS
// build of the functions (see package awsauth); nil means unsupported.
var IAMAuth func(region string) (kgo.Opt, error)

// ClientOptions returns the franz-go options that reach the configured
// brokers, with the project's producer defaults: idempotent writes, snappy
// compression (franz-go's default) and a short linger so batches fill.
func ClientOptions(k config.Kafka) ([]kgo.Opt, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(k.Brokers...),
		kgo.ClientID(k.ClientID),
		kgo.ProducerLinger(5 * time.Millisecond),
		kgo.MaxBufferedRecords(20_000),
		kgo.RecordRetries(20),
		kgo.RetryTimeout(30 * time.Second),
	}
	if k.TLS {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: k.TLSServerName}
		if k.TLSCAFile != "" {
			pem, err := os.ReadFile(k.TLSCAFile)
			if err != nil {
				return nil, fmt.Errorf("KAFKA_TLS_CA_FILE: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("KAFKA_TLS_CA_FILE %s holds no PEM certificate", k.TLSCAFile)
			}
			tc.RootCAs = pool
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	switch strings.ToUpper(k.SASLMechanism) {
	case "":
	case "PLAIN":
		opts = append(opts, kgo.SASL(plain.Auth{User: k.SASLUsername, Pass: k.SASLPassword}.AsMechanism()))
	case "SCRAM-SHA-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: k.SASLUsername, Pass: k.SASLPassword}.AsSha256Mechanism()))
	case "SCRAM-SHA-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: k.SASLUsername, Pass: k.SASLPassword}.AsSha512Mechanism()))
	case "AWS_MSK_IAM":
		if IAMAuth == nil {
			return nil, errors.New("KAFKA_SASL_MECHANISM=AWS_MSK_IAM is not available in this build")
		}
		o, err := IAMAuth(k.AWSRegion)
		if err != nil {
			return nil, fmt.Errorf("AWS_MSK_IAM: %w", err)
		}
		opts = append(opts, o)
	default:
		return nil, fmt.Errorf("KAFKA_SASL_MECHANISM %q is not supported", k.SASLMechanism)
	}
	return opts, nil
}

// NewClient returns a client for the configured brokers plus extra options.
func NewClient(k config.Kafka, extra ...kgo.Opt) (*kgo.Client, error) {
	opts, err := ClientOptions(k)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return cl, nil
}

// TopicSpec is a topic to create.
type TopicSpec struct {
	Name       string
	Partitions int32
	// Compacted topics keep the latest record per key (aggregated totals).
	Compacted bool
}

// Topics returns the pipeline's topics with partitions each; the aggregated
// totals are compacted so a new consumer reads only the latest per key.
func Topics(t config.Topics, partitions int) []TopicSpec {
	p := int32(partitions)
	return []TopicSpec{
		{Name: t.Voters, Partitions: p},
		{Name: t.Votes, Partitions: p},
		{Name: t.CandidateTotals, Partitions: p, Compacted: true},
		{Name: t.TurnoutTotals, Partitions: p, Compacted: true},
		{Name: t.VotesDLQ, Partitions: p},
		{Name: t.VotersDLQ, Partitions: p},
	}
}

// EnsureTopics creates the topics that do not exist yet; it is safe to call
// on every start and from several processes at once.
func EnsureTopics(ctx context.Context, cl *kgo.Client, specs []TopicSpec) error {
	adm := kadm.NewClient(cl)
	var errs []error
	for _, s := range specs {
		var cfgs map[string]*string
		if s.Compacted {
			policy := "compact"
			cfgs = map[string]*string{"cleanup.policy": &policy}
		}
		resp, err := adm.CreateTopic(ctx, s.Partitions, -1, cfgs, s.Name)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("create topic %s: %w", s.Name, err))
		}
	}
	return errors.Join(errs...)
}

// Publisher produces records and waits until the brokers have them.
type Publisher struct {
	Client *kgo.Client
}

// Publish produces recs synchronously and returns the first failure.
func (p Publisher) Publish(ctx context.Context, recs ...*kgo.Record) error {
	if len(recs) == 0 {
		return nil
	}
	if err := p.Client.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("produce to %s: %w", recs[0].Topic, err)
	}
	return nil
}

// Positions reads where a Kafka cluster's topics end and which cluster it
// is (register records both when an election begins).
type Positions struct {
	Client *kgo.Client
}

// Carrier returns "kafka" and the cluster's ID.
func (p Positions) Carrier(ctx context.Context) (election.Carrier, error) {
	m, err := kadm.NewClient(p.Client).BrokerMetadata(ctx)
	if err != nil {
		return election.Carrier{}, err
	}
	return election.Carrier{Transport: "kafka", Broker: "cluster " + m.Cluster}, nil
}

// Ends returns the end offset of each partition of topic.
func (p Positions) Ends(ctx context.Context, topic string) (map[int32]int64, error) {
	return TopicEnds(ctx, p.Client, topic)
}

// TopicEnds returns the end offset of each partition of topic.
func TopicEnds(ctx context.Context, cl *kgo.Client, topic string) (map[int32]int64, error) {
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	var lerr error
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			lerr = fmt.Errorf("%s/%d: %w", topic, o.Partition, o.Err)
		}
		out[o.Partition] = o.Offset
	})
	if lerr == nil && len(out) == 0 {
		lerr = fmt.Errorf("topic %s has no partitions (does it exist?)", topic)
	}
	return out, lerr
}

// FreePort returns a TCP port that is free on 127.0.0.1 right now.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
