// Package harness runs the pipeline's functions on one machine the way AWS
// runs them: it opens the environment (Postgres, the embedded Kafka broker
// or KAFKA_BROKERS, or NATS JetStream through the bridge), builds each
// function's handler as its main does, feeds the Kafka-triggered ones
// through their event-source mappings (package trigger, with the settings
// of infra.Triggers) or invokes them elsewhere (package invoke), and drives
// whole elections: Run, Audit, Reset, InvokeFile.
package harness
