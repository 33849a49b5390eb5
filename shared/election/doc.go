// Package election is the domain of the pipeline: voters, candidates, votes
// and ballots as they travel on Kafka, the rules that decide which candidate a
// simulated voter picks, and the reasons a ballot can be rejected.
//
// The JSON shapes are those of the original Python demo (main.py / voting.py),
// so records produced by either system are interchangeable.
package election
