package broker_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/votingpipe/voting/shared/broker"
	"github.com/votingpipe/voting/shared/config"
)

// TestClientOptionsRefuseBadTLSAndSASL: options that cannot work are
// refused when the client is built, before any connection, naming what is
// wrong.
func TestClientOptionsRefuseBadTLSAndSASL(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		k    config.Kafka
		want string
	}{
		{"CA file missing", config.Kafka{TLS: true, TLSCAFile: filepath.Join(dir, "none.pem")}, "KAFKA_TLS_CA_FILE"},
		{"CA file without a certificate", config.Kafka{TLS: true, TLSCAFile: notPEM}, "holds no PEM certificate"},
		{"unknown SASL mechanism", config.Kafka{SASLMechanism: "GSSAPI"}, "KAFKA_SASL_MECHANISM"},
		{"IAM in a build without it", config.Kafka{TLS: true, SASLMechanism: "AWS_MSK_IAM"}, "AWS_MSK_IAM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.k.Brokers = []string{"127.0.0.1:9092"}
			if _, err := broker.ClientOptions(tt.k, nil); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error naming %s", err, tt.want)
			}
			if _, err := broker.NewClient(tt.k, nil); err == nil {
				t.Fatal("NewClient accepted it")
			}
		})
	}
}

// selfSigned writes a CA-signed certificate for name and 127.0.0.1 and
// returns the server's TLS config and the CA file.
func selfSigned(t *testing.T, name string) (*tls.Config, string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "drill CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}, caFile
}

// TestTLSAndSASLReachOnlyTheRightBroker connects through ClientOptions to
// a broker that requires TLS and SCRAM: the right CA, server name and
// credentials work; a wrong password, an untrusted certificate, a wrong
// server name or plaintext do not, and the password is in no error.
func TestTLSAndSASLReachOnlyTheRightBroker(t *testing.T) {
	const user, pass = "pipeline", "Kafka-S3cret-Pass"
	srvTLS, caFile := selfSigned(t, "kafka.test")
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0), kfake.TLS(srvTLS),
		kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", user, pass), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	good := config.Kafka{Brokers: c.ListenAddrs(), TLS: true, TLSCAFile: caFile, TLSServerName: "kafka.test",
		SASLMechanism: "SCRAM-SHA-512", SASLUsername: user, SASLPassword: pass, ClientID: "test"}

	ping := func(k config.Kafka) error {
		cl, err := broker.NewClient(k, nil, kgo.RetryTimeout(2*time.Second))
		if err != nil {
			return err
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if err := cl.Ping(ctx); err != nil {
			return err
		}
		return broker.EnsureTopics(ctx, cl, []broker.TopicSpec{{Name: "t", Partitions: 1}})
	}
	if err := ping(good); err != nil {
		t.Fatalf("the right TLS and SCRAM settings failed: %v", err)
	}
	bad := map[string]func(k *config.Kafka){
		"wrong password":    func(k *config.Kafka) { k.SASLPassword = pass + "x" },
		"wrong mechanism":   func(k *config.Kafka) { k.SASLMechanism = "SCRAM-SHA-256" },
		"untrusted CA":      func(k *config.Kafka) { k.TLSCAFile = "" },
		"wrong server name": func(k *config.Kafka) { k.TLSServerName = "other.test" },
		"plaintext":         func(k *config.Kafka) { k.TLS, k.TLSCAFile = false, "" },
		"no authentication": func(k *config.Kafka) { k.SASLMechanism = "" },
	}
	for name, change := range bad {
		t.Run(name, func(t *testing.T) {
			k := good
			change(&k)
			err := ping(k)
			if err == nil {
				t.Fatal("connected")
			}
			t.Log(err)
			if strings.Contains(err.Error(), pass) {
				t.Fatalf("the error carries the SASL password: %v", err)
			}
		})
	}
}
