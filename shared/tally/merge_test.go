package tally

import (
	"reflect"
	"testing"

	"github.com/votingpipe/voting/shared/election"
)

// TestMergeTotalsAsksForEverythingAnyBatchAsks checks the request that one
// combined publish makes for the batches it serves.
func TestMergeTotalsAsksForEverythingAnyBatchAsks(t *testing.T) {
	for _, tc := range []struct {
		name string
		reqs []election.TotalsRequest
		want election.TotalsRequest
	}{
		{"alone", []election.TotalsRequest{{Candidates: []string{"b", "a"}, States: []string{"Ohio"}}},
			election.TotalsRequest{Candidates: []string{"b", "a"}, States: []string{"Ohio"}}},
		{"union, each key once", []election.TotalsRequest{
			{Candidates: []string{"a", "b"}, States: []string{"Ohio", "Utah"}},
			{Candidates: []string{"b", "c"}, States: []string{"Utah", "Iowa"}},
		}, election.TotalsRequest{Candidates: []string{"a", "b", "c"}, States: []string{"Ohio", "Utah", "Iowa"}}},
		{"all wins over a list", []election.TotalsRequest{
			{Candidates: []string{"a"}, States: []string{"Ohio"}},
			{AllCandidates: true},
		}, election.TotalsRequest{AllCandidates: true, States: []string{"Ohio"}}},
		{"a redelivered batch asks for everything", []election.TotalsRequest{
			{Candidates: []string{"a"}, States: []string{"Ohio"}},
			{AllCandidates: true, AllStates: true},
		}, election.TotalsRequest{AllCandidates: true, AllStates: true}},
		{"a candidate and a state of the same name stay apart", []election.TotalsRequest{
			{Candidates: []string{"x"}}, {States: []string{"x"}},
		}, election.TotalsRequest{Candidates: []string{"x"}, States: []string{"x"}}},
	} {
		if got := mergeTotals(tc.reqs); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
