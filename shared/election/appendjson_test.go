package election_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/votingpipe/voting/shared/election"
	"github.com/votingpipe/voting/shared/generator"
)

func TestAppendVoterJSONIsJSONMarshal(t *testing.T) {
	odd := []string{"", `"quoted" \back\slash`, "<b>&amp;</b>", "tab\tnl\nfeed\fbs\bcr\r\x00\x1f\x7f",
		"caf\u00e9 \u2028 \u2029 \U0001F5F3", "bad \xff utf8 \xe2\x82", "é\xc3"}
	voters := []election.Voter{generator.Voter(42, 0), generator.Voter(7, 123456)}
	for _, s := range odd {
		voters = append(voters, election.Voter{VoterID: s, VoterName: s, DateOfBirth: s, Gender: s, Nationality: s,
			RegistrationNumber: s, Address: election.Address{Street: s, City: s, State: s, Country: s, Postcode: s},
			Email: s, PhoneNumber: s, CellNumber: s, Picture: s, RegisteredAge: -len(s)})
	}
	for _, v := range voters {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if got := election.AppendVoterJSON(nil, &v); !bytes.Equal(got, want) {
			t.Errorf("AppendVoterJSON(%q)\n got %s\nwant %s", v.VoterName, got, want)
		}
	}
}

func FuzzAppendVoterJSON(f *testing.F) {
	f.Add("Ada Lovelace", "<&>\u2028", 42)
	f.Add("\xff\x00\"", "", -1)
	f.Fuzz(func(t *testing.T, a, b string, age int) {
		v := election.Voter{VoterID: a, VoterName: b, Email: a + b, Picture: b + a, RegisteredAge: age}
		want, _ := json.Marshal(v)
		if got := election.AppendVoterJSON(nil, &v); !bytes.Equal(got, want) {
			t.Fatalf("got %s want %s", got, want)
		}
	})
}

func BenchmarkAppendVoterJSON(b *testing.B) {
	v := generator.Voter(42, 1)
	var buf []byte
	for b.Loop() {
		buf = election.AppendVoterJSON(buf[:0], &v)
	}
}

func BenchmarkJSONMarshalVoter(b *testing.B) {
	v := generator.Voter(42, 1)
	for b.Loop() {
		json.Marshal(v) //nolint:errcheck
	}
}
