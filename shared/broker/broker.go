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
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/votingpipe/voting/shared/config"
	"github.com/votingpipe/voting/shared/election"
	"github.com/votingpipe/voting/shared/stream"
)

// ClientOptions returns the franz-go options that reach the configured
// brokers, with the project's producer defaults: idempotent writes, snappy
// compression (franz-go's default) and a short linger so batches fill. iam
// is the AWS_MSK_IAM mechanism (awsauth.IAMMechanism in the deployed
// functions; nil where IAM is not available, as in the local harness).
func ClientOptions(k config.Kafka, iam sasl.Mechanism) ([]kgo.Opt, error) {
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
		if iam == nil {
			return nil, errors.New("KAFKA_SASL_MECHANISM=AWS_MSK_IAM is available in the deployed functions only")
		}
		opts = append(opts, kgo.SASL(iam))
	default:
		return nil, fmt.Errorf("KAFKA_SASL_MECHANISM %q is not supported", k.SASLMechanism)
	}
	return opts, nil
}

// NewClient returns a client for the configured brokers plus extra options.
func NewClient(k config.Kafka, iam sasl.Mechanism, extra ...kgo.Opt) (*kgo.Client, error) {
	opts, err := ClientOptions(k, iam)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return cl, nil
}

// Connect returns a client for the configured brokers and checks it reaches
// them, so that wrong brokers, TLS or SASL settings fail the start (a Lambda
// init error naming them) rather than the first batch.
func Connect(ctx context.Context, k config.Kafka, iam sasl.Mechanism, extra ...kgo.Opt) (*kgo.Client, error) {
	cl, err := NewClient(k, iam, extra...)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("connect to Kafka at %s: %w", strings.Join(k.Brokers, ","), err)
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
	var out []TopicSpec
	for _, tp := range t.List() {
		out = append(out, TopicSpec{Name: tp.Name, Partitions: int32(partitions), Compacted: tp.Compacted})
	}
	return out
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

// Publisher produces records and waits until the brokers have them; it
// is the stream.Publisher of Kafka.
type Publisher struct {
	Client *kgo.Client
}

var _ stream.Publisher = Publisher{}

// Publish produces recs synchronously and returns the first failure. On
// success each record's Partition and Offset say where it was stored.
func (p Publisher) Publish(ctx context.Context, recs ...*stream.Record) error {
	if len(recs) == 0 {
		return nil
	}
	krs := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		krs[i] = ToKgo(r)
	}
	if err := p.Client.ProduceSync(ctx, krs...).FirstErr(); err != nil {
		return fmt.Errorf("produce to %s: %w", recs[0].Topic, err)
	}
	for i, kr := range krs {
		recs[i].Partition, recs[i].Offset = kr.Partition, kr.Offset
	}
	return nil
}

// Producer produces records asynchronously; it is the stream.Producer of
// Kafka.
type Producer struct {
	Client *kgo.Client
}

var _ stream.Producer = Producer{}

// Produce sends r; promise gets the record with its partition and offset
// once the brokers have it, or the error.
func (p Producer) Produce(ctx context.Context, r *stream.Record, promise func(*stream.Record, error)) {
	p.Client.Produce(ctx, ToKgo(r), func(kr *kgo.Record, err error) {
		r.Partition, r.Offset = kr.Partition, kr.Offset
		if promise != nil {
			promise(r, err)
		}
	})
}

// Flush waits until every record produced so far is acknowledged.
func (p Producer) Flush(ctx context.Context) error { return p.Client.Flush(ctx) }

// ToKgo returns r as a franz-go record.
func ToKgo(r *stream.Record) *kgo.Record {
	kr := &kgo.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp}
	if len(r.Headers) > 0 {
		kr.Headers = make([]kgo.RecordHeader, len(r.Headers))
		for i, h := range r.Headers {
			kr.Headers[i] = kgo.RecordHeader{Key: h.Key, Value: h.Value}
		}
	}
	return kr
}

// FromKgo returns a franz-go record as a stream record.
func FromKgo(kr *kgo.Record) *stream.Record {
	r := &stream.Record{Topic: kr.Topic, Partition: kr.Partition, Offset: kr.Offset, Key: kr.Key, Value: kr.Value,
		Timestamp: kr.Timestamp, LogAppendTime: kr.Attrs.TimestampType() == 1}
	if len(kr.Headers) > 0 {
		r.Headers = make([]stream.Header, len(kr.Headers))
		for i, h := range kr.Headers {
			r.Headers[i] = stream.Header{Key: h.Key, Value: h.Value}
		}
	}
	return r
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
