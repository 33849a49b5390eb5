// Package awsauth is what the deployed functions need from AWS and nothing
// else does: AWS_MSK_IAM authentication for the Kafka client (franz-go's
// sasl/aws, with credentials from the default AWS chain, which in Lambda is
// the function's execution role), the database credentials from a Secrets
// Manager secret (DATABASE_SECRET_ARN, in the JSON shape RDS writes), and the
// SASL/SCRAM credentials from a secret (KAFKA_SASL_SECRET_ARN, in the shape
// MSK's SCRAM secrets have).
//
// The Lambda main installs these as hooks (broker.IAMAuth,
// pipeline.ResolveDatabaseURL) before it reads the configuration, so the local
// harness and the tests never link or call AWS.
package awsauth
