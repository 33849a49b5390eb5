// Package metrics writes CloudWatch metrics as CloudWatch embedded metric
// format (EMF) lines: one JSON object per line, which CloudWatch Logs turns
// into metrics when the line reaches a log group. In Lambda, write them to
// os.Stdout: each line becomes a log event of the function's log group. No
// AWS SDK, no API call, no extra permission.
//
// A line looks like this (fields always in this order):
//
//	{"_aws":{"Timestamp":1700000000000,"CloudWatchMetrics":[{"Namespace":"VotingPipeline",
//	"Dimensions":[["FunctionName"]],"Metrics":[{"Name":"VotesCounted","Unit":"Count"}]}]},
//	"FunctionName":"voting-TallyFunction-1A2B3C","VotesCounted":5000}
//
// (one line in the output). The emitter's dimensions are on every line; a
// line may add more (EmitWith), which makes a separate metric in CloudWatch,
// e.g. rejections by reason next to the total.
//
// Usage:
//
//	em, err := metrics.New(os.Stdout, "VotingPipeline",
//		map[string]string{"FunctionName": os.Getenv("AWS_LAMBDA_FUNCTION_NAME")})
//	...
//	em.Emit(
//		metrics.Metric{Name: "VotesCounted", Value: float64(counted), Unit: metrics.Count},
//		metrics.Metric{Name: "BatchSeconds", Value: time.Since(start).Seconds(), Unit: metrics.Seconds},
//	)
//	em.EmitWith([]metrics.Dimension{{Name: "Reason", Value: "duplicate"}},
//		metrics.Metric{Name: "VotesRejected", Value: 3, Unit: metrics.Count})
//
// An Emitter is safe for concurrent use; each line is written with a single
// Write. A nil *Emitter emits nothing, for local runs without CloudWatch.
//
// The format's limits are enforced (CloudWatch "Specification: Embedded
// metric format"): at most 30 dimensions per line and at most 100 metrics
// per line (Emit splits longer lists into several lines), non-empty metric
// and dimension names, dimension values of 1 to 1,024 characters, finite
// values, valid CloudWatch units. The package depends only on the standard
// library and writes its JSON by hand: emitting allocates nothing once the
// emitter's buffer has grown to the longest line.
package metrics
