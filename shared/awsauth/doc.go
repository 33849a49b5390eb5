// Package awsauth is what the deployed functions need from AWS and nothing
// else does: AWS_MSK_IAM authentication for the Kafka client (franz-go's
// sasl/aws, signing with the execution role's credentials that Lambda puts
// in the environment), the database credentials from a Secrets Manager
// secret (DATABASE_SECRET_ARN, in the JSON shape RDS writes), and the
// SASL/SCRAM credentials from a secret (KAFKA_SASL_SECRET_ARN, in the shape
// MSK's SCRAM secrets have). Only the functions' mains import it, so the
// local harness and the tests never link or call AWS.
package awsauth
