package register_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/votingpipe/voting/shared/register"
)

// An invalid request is refused before anything is written, with one error
// that names every field at fault.
func TestNormalizeNamesEveryProblem(t *testing.T) {
	tests := []struct {
		payload string
		want    []string
	}{
		{`{"voters": 10, "candidate_list": [{"candidate_name": "A\u0000B", "party_affiliation": "P"}]}`,
			[]string{"candidate_list[0]: candidate_name contains a NUL character"}},
		{`{"voters": 10, "name": "x\u0000", "candidate_list": [{"candidate_id": "c\u0000", "candidate_name": "A", "party_affiliation": "P", "photo_url": "\u0000"}]}`,
			[]string{"name contains a NUL", "candidate_list[0]: candidate_id contains a NUL", "candidate_list[0]: photo_url contains a NUL"}},
		{`{"voters": -5, "rate": -1, "candidate_list": [{"candidate_name": "A", "party_affiliation": "P", "weight": -1}, {"candidate_name": " ", "party_affiliation": ""}]}`,
			[]string{"voters is -5", "rate is -1", "candidate_list[0]: weight is -1", "candidate_list[1]: candidate_name is required", "candidate_list[1]: party_affiliation is required"}},
	}
	for _, tt := range tests {
		var r register.Request
		if err := json.Unmarshal([]byte(tt.payload), &r); err != nil {
			t.Fatal(err)
		}
		err := r.Normalize()
		if err == nil {
			t.Errorf("%s: accepted", tt.payload)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: the error does not say %q:\n%v", tt.payload, w, err)
			}
		}
	}
}
