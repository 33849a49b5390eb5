package infra_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

const infraPath = "aws/network-msk-rds.yaml"

// TestInfraTemplate checks infra/aws/network-msk-rds.yaml: its outputs are
// the parameters template.yaml needs, the database password is managed by
// RDS in Secrets Manager, and nothing is reachable from the internet.
func TestInfraTemplate(t *testing.T) {
	infra := loadTemplate(t, infraPath)
	app := loadTemplate(t, templatePath)
	e := newEvaluator(t, infra, nil)
	res := e.resources(t)

	for _, p := range []string{"VpcId", "SubnetIds", "SecurityGroupIds", "MskClusterArn", "DatabaseUrl", "DatabaseSecretArn"} {
		if _, ok := app.Parameters[p]; !ok {
			t.Errorf("template.yaml has no parameter %s", p)
		}
		if _, ok := infra.Outputs[p]; !ok {
			t.Errorf("%s has no output %s for template.yaml's parameter", infraPath, p)
		}
	}
	if got := fmt.Sprint(e.eval(t, infra.Outputs["DatabaseSecretArn"].Value)); got != "getatt:Database.MasterUserSecret.SecretArn" {
		t.Errorf("DatabaseSecretArn output %s, want the RDS-managed secret", got)
	}
	url := fmt.Sprint(e.eval(t, infra.Outputs["DatabaseUrl"].Value))
	if credentialsInURL.MatchString(url) || !strings.HasSuffix(url, "/voting?sslmode=require") {
		t.Errorf("DatabaseUrl output %s", url)
	}
	if got := fmt.Sprint(e.eval(t, infra.Outputs["SubnetIds"].Value)); got != "ref:SubnetA,ref:SubnetB" {
		t.Errorf("SubnetIds output %s, want both subnets", got)
	}

	db := res["Database"].Properties
	if db["ManageMasterUserPassword"] != true || db["MasterUserPassword"] != nil {
		t.Error("the database password must be generated and kept by RDS (ManageMasterUserPassword), not written here")
	}
	if db["PubliclyAccessible"] != false || db["StorageEncrypted"] != true {
		t.Errorf("database PubliclyAccessible=%v StorageEncrypted=%v", db["PubliclyAccessible"], db["StorageEncrypted"])
	}
	msk := res["KafkaCluster"].Properties
	auth := msk["ClientAuthentication"].(map[string]any)
	if auth["Sasl"].(map[string]any)["Iam"].(map[string]any)["Enabled"] != true {
		t.Error("MSK IAM authentication is off; template.yaml's default KafkaAuth is IAM")
	}
	if auth["Unauthenticated"].(map[string]any)["Enabled"] != false {
		t.Error("MSK allows unauthenticated clients")
	}
	if enc := msk["EncryptionInfo"].(map[string]any)["EncryptionInTransit"].(map[string]any); enc["ClientBroker"] != "TLS" {
		t.Errorf("MSK client-broker encryption %v, want TLS", enc["ClientBroker"])
	}
	var types []string
	for id, r := range res {
		types = append(types, r.Type)
		if r.Type == "AWS::EC2::SecurityGroup" {
			for _, in := range toList(r.Properties["SecurityGroupIngress"]) {
				if cidr := fmt.Sprint(in.(map[string]any)["CidrIp"]); cidr == "0.0.0.0/0" {
					t.Errorf("%s is open to the internet", id)
				}
			}
		}
	}
	for _, forbidden := range []string{"AWS::EC2::InternetGateway", "AWS::EC2::NatGateway", "AWS::EC2::EIP"} {
		if slices.Contains(types, forbidden) {
			t.Errorf("%s creates a %s; the subnets are private", infraPath, forbidden)
		}
	}
	var endpoints []string
	for _, r := range res {
		if r.Type == "AWS::EC2::VPCEndpoint" {
			name := fmt.Sprint(r.Properties["ServiceName"])
			endpoints = append(endpoints, name[strings.LastIndex(name, ".")+1:])
		}
	}
	slices.Sort(endpoints)
	if want := []string{"lambda", "s3", "secretsmanager", "sqs", "sts"}; !slices.Equal(endpoints, want) {
		t.Errorf("VPC endpoints %v, want %v", endpoints, want)
	}
}

func toList(v any) []any {
	l, _ := v.([]any)
	return l
}

// TestInfraSizesAnElection checks the parameters infra/CAPACITY.md sets for a
// national election: with three replicas a write waits for two of them, the
// brokers and the database take the sizes given, and the defaults stay a
// small two-broker test cluster.
func TestInfraSizesAnElection(t *testing.T) {
	infra := loadTemplate(t, infraPath)
	for _, tc := range []struct {
		name             string
		values           map[string]any
		brokers, storage any
		props            string
		multiAZ          any
	}{
		{"defaults", nil, 2, 20, "default.replication.factor=2\nmin.insync.replicas=1\n", "false"},
		{"national election", map[string]any{"BrokerNodes": 4, "ReplicationFactor": 3, "DatabaseStorageGiB": 400, "DatabaseMultiAz": "true"},
			4, 400, "default.replication.factor=3\nmin.insync.replicas=2\n", "true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := newEvaluator(t, infra, tc.values).resources(t)
			if got := res["KafkaCluster"].Properties["NumberOfBrokerNodes"]; fmt.Sprint(got) != fmt.Sprint(tc.brokers) {
				t.Errorf("NumberOfBrokerNodes %v, want %v", got, tc.brokers)
			}
			if got := fmt.Sprint(res["KafkaConfiguration"].Properties["ServerProperties"]); !strings.Contains(got, tc.props) {
				t.Errorf("ServerProperties\n%s\nwant them to hold\n%s", got, tc.props)
			}
			db := res["Database"].Properties
			if fmt.Sprint(db["AllocatedStorage"]) != fmt.Sprint(tc.storage) || fmt.Sprint(db["MultiAZ"]) != fmt.Sprint(tc.multiAZ) {
				t.Errorf("database AllocatedStorage %v MultiAZ %v, want %v %v", db["AllocatedStorage"], db["MultiAZ"], tc.storage, tc.multiAZ)
			}
		})
	}
	for _, tc := range []struct {
		values map[string]any
		refuse bool
	}{
		{map[string]any{"BrokerNodes": 2, "ReplicationFactor": 3}, true},
		{map[string]any{"BrokerNodes": 4, "ReplicationFactor": 3}, false},
		{map[string]any{"BrokerNodes": 2, "ReplicationFactor": 2}, false},
	} {
		if got := newEvaluator(t, infra, tc.values).refused(t); (len(got) > 0) != tc.refuse {
			t.Errorf("%v: rules refuse %q, want refused %v", tc.values, got, tc.refuse)
		}
	}
}
