// Package natsbridge carries the pipeline's Kafka-shaped records over NATS
// JetStream, so the same handlers run on either broker with no change.
//
// Mapping (P is NATS_STREAM_PREFIX, N the partition count, KAFKA_PARTITIONS):
//
//   - Each topic-partition is one stream, P+topic+"_"+p (dots in the topic
//     become underscores), holding one subject, P+topic+"."+p. A stream's
//     sequence is dense and starts at 1, so a record's Kafka offset is its
//     stream sequence - 1 and a partition's end offset is the stream's last
//     sequence: the same accounting the audit does on Kafka. (One stream per
//     topic with a subject per partition would interleave the partitions'
//     sequences.)
//   - A record goes to the partition Kafka's default partitioner picks for
//     its key (murmur2), so a voter's records keep their order; a keyless
//     record goes where its de-duplication id hashes.
//   - The key travels in the Voting-Key header, the record headers as NATS
//     headers (values NATS cannot carry verbatim are base64-wrapped in
//     Voting-Header), the timestamp is the time the stream stored it.
//   - Every publish carries a Nats-Msg-Id that is the same for the same
//     logical message (MsgID), so a publish retried within the stream's
//     duplicate window is stored once.
//   - A consumer group is one durable pull consumer per stream, named after
//     the group, acknowledging cumulatively (AckAll: an ack is a Kafka
//     commit). OpenConsumer rewinds a consumer that was left with
//     unacknowledged deliveries to its ack floor, as a Kafka group resumes
//     from its committed offset.
//
// Bridge implements stream.Publisher (synchronous) and stream.Producer
// (asynchronous with Flush), so the harness's NATS transport gives it to the
// functions in place of the Kafka client, and consumes with it. Only the
// harness uses it: the deployed functions speak Kafka.
package natsbridge
