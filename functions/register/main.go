// Command register is the register Lambda function, invoked directly with a register request.
// All of its code lives in shared/, so the local harness runs exactly what
// Lambda runs; see README.md for its configuration.
package main

import "github.com/votingpipe/voting/shared/pipeline"

func main() { pipeline.LambdaMain(pipeline.Register) }
