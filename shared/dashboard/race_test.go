//go:build race

package dashboard_test

// raceEnabled: timings mean nothing under the race detector.
const raceEnabled = true
