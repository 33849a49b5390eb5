// Command local runs the voting pipeline on one machine: an embedded Kafka
// broker (or KAFKA_BROKERS, or NATS JetStream), Postgres from DATABASE_URL,
// and every function triggered as AWS Lambda would trigger it.
//
//	go run ./local [--voters N] [--until-done] ...   run the pipeline
//	go run ./local invoke FUNCTION -e EVENT.json     invoke one function once
//	go run ./local audit                             recount and check the tallies
//	go run ./local reset --yes                       start over
//	go run ./local bench                             measure against this machine's ceiling
//
// go run ./local --help describes every command and flag. Configuration
// comes from environment variables (see README.md), parsed once here.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

func main() {
	// The harness runs every function in one process: a soft memory limit
	// keeps it bounded, and under it the collector may run half as often as
	// by default. The heap peaks near 100 MiB in a 200,000-voter election
	// (records hold picture references, events decode with no syntax tree),
	// so 320 MiB leaves the collector room: measured, 256-360 MiB run as fast
	// as 768 MiB, with a peak RSS of 290-395 MiB instead of 560-800 MiB.
	// GOMEMLIMIT and GOGC override.
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(320 << 20)
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(200)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRoot().ExecuteContext(ctx); err != nil {
		var exit exitCode
		if errors.As(err, &exit) {
			os.Exit(int(exit))
		}
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// exitCode ends the program with a status and no further message (the
// command has said what went wrong).
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit %d", int(e)) }
