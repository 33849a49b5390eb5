package metrics_test

import (
	"os"
	"time"

	"github.com/votingpipe/voting/shared/metrics"
)

// The tally, after a batch: what it counted and how long it took, then its
// rejections by reason (each reason its own metric under FunctionName and
// Reason; the total alongside under FunctionName alone, which is what the
// template's rejections alarm watches).
func Example() {
	em, err := metrics.New(os.Stdout, "VotingPipeline",
		map[string]string{"FunctionName": "voting-TallyFunction-1A2B"},
		metrics.WithClock(func() time.Time { return time.UnixMilli(1700000000000) }))
	if err != nil {
		panic(err)
	}
	rejected := map[string]int{"already_voted": 2}
	total := 0
	for _, n := range rejected {
		total += n
	}
	em.Emit(
		metrics.Metric{Name: "VotesCounted", Value: 4998, Unit: metrics.Count},
		metrics.Metric{Name: "VotesRejected", Value: float64(total), Unit: metrics.Count},
		metrics.Metric{Name: "BatchSeconds", Value: 0.071, Unit: metrics.Seconds},
	)
	for reason, n := range rejected {
		em.EmitWith([]metrics.Dimension{{Name: "Reason", Value: reason}},
			metrics.Metric{Name: "VotesRejected", Value: float64(n), Unit: metrics.Count})
	}

	// A nil emitter (local runs) writes nothing.
	var off *metrics.Emitter
	off.Emit(metrics.Metric{Name: "VotesCounted", Value: 1, Unit: metrics.Count})
	// Output:
	// {"_aws":{"Timestamp":1700000000000,"CloudWatchMetrics":[{"Namespace":"VotingPipeline","Dimensions":[["FunctionName"]],"Metrics":[{"Name":"VotesCounted","Unit":"Count"},{"Name":"VotesRejected","Unit":"Count"},{"Name":"BatchSeconds","Unit":"Seconds"}]}]},"FunctionName":"voting-TallyFunction-1A2B","VotesCounted":4998,"VotesRejected":2,"BatchSeconds":0.071}
	// {"_aws":{"Timestamp":1700000000000,"CloudWatchMetrics":[{"Namespace":"VotingPipeline","Dimensions":[["FunctionName","Reason"]],"Metrics":[{"Name":"VotesRejected","Unit":"Count"}]}]},"FunctionName":"voting-TallyFunction-1A2B","Reason":"already_voted","VotesRejected":2}
}
