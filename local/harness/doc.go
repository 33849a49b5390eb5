// Package harness runs the pipeline's functions on one machine the way AWS
// runs them behind MSK event-source mappings: for each Kafka-triggered
// function it consumes the function's topics in the function's own stable
// consumer group, turns each partition's records into the events.KafkaEvent
// JSON Lambda would deliver, invokes the handler through the Lambda runtime's
// own path (lambda.NewHandler(...).Invoke) or any other Invoker, commits
// offsets only after success, retries failures with backoff and honours
// partial batch responses.
//
// The same delivery semantics run on NATS JetStream (NATSTrigger) and
// against functions that run elsewhere: the Lambda Invoke API (APIInvoker:
// sam local start-lambda, aws-lambda-rie) or AWS Lambda itself (AWSInvoker).
// Run, Audit and Bench drive whole elections.
package harness
