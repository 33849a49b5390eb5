// Package testkit sets up real parts for the harness's tests: a fresh
// Postgres database per test and a pool for a test's own checks (those of
// storetest), and headless Chromium. Only tests import it.
package testkit

import "github.com/votingpipe/voting/shared/store/storetest"

// Server, NewDatabase and Pool are storetest's.
var (
	Server      = storetest.Server
	NewDatabase = storetest.NewDatabase
	Pool        = storetest.Pool
)
