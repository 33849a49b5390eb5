// Package invoke reaches functions that run outside the harness's process,
// with the harness's delivery semantics unchanged: the Lambda Invoke API
// (APIInvoker: sam local start-lambda, a bootstrap under aws-lambda-rie) or
// AWS Lambda itself (AWSInvoker). A function error comes back as an error,
// and batches over Lambda's 6 MB request limit are split (LimitPayload).
package invoke
