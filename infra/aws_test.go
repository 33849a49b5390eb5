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
