package election

import (
	"bytes"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/valyala/fastjson"
)

// DefaultMaxRecordBytes is the largest voter or vote record accepted when the
// caller sets no limit. A generated vote is about 1.3 KB.
const DefaultMaxRecordBytes = 64 << 10

// parsers are reused across records: fastjson validates and indexes a record
// in one pass without allocating per field, several times faster than
// encoding/json on the ~1 KB records every stage reads.
var parsers fastjson.ParserPool

// DecodeVoter parses and validates a voter record. Every error it returns is a
// *Rejection: a record that fails here fails forever.
func DecodeVoter(b []byte, maxBytes int) (Voter, error) {
	var v Voter
	obj, put, err := parseObject(b, maxBytes)
	if err != nil {
		return v, err
	}
	defer put()
	f := fields{obj: obj}
	v.VoterID = f.str("voter_id")
	v.VoterName = f.str("voter_name")
	v.DateOfBirth = f.str("date_of_birth")
	v.Gender = f.str("gender")
	v.Nationality = f.str("nationality")
	v.RegistrationNumber = f.str("registration_number")
	if a := obj.Get("address"); a != nil && a.Type() != fastjson.TypeNull {
		if a.Type() != fastjson.TypeObject {
			f.typeErr("address", "object")
		} else {
			af := fields{obj: a, prefix: "address."}
			v.Address = Address{Street: af.str("street"), City: af.str("city"), State: af.str("state"),
				Country: af.str("country"), Postcode: af.str("postcode")}
			f.errs = append(f.errs, af.errs...)
		}
	}
	v.Email = f.str("email")
	v.PhoneNumber = f.str("phone_number")
	v.CellNumber = f.str("cell_number")
	v.Picture = f.str("picture")
	v.RegisteredAge = f.int("registered_age")
	if err := f.err(); err != nil {
		return v, err
	}
	for _, k := range []string{"candidate_id", "voting_time", "vote"} {
		if obj.Exists(k) {
			// The ballot stage appends these to the voter record to make the
			// vote; a voter record must not bring its own.
			return v, Reject(ReasonMalformed, "a voter record must not carry candidate_id, voting_time or vote")
		}
	}
	var missing []string
	for _, m := range []struct{ name, val string }{
		{"voter_id", v.VoterID},
		{"voter_name", v.VoterName},
		{"gender", v.Gender},
		{"address.state", v.Address.State},
		{"date_of_birth", v.DateOfBirth},
	} {
		if strings.TrimSpace(m.val) == "" {
			missing = append(missing, m.name)
		}
	}
	if len(missing) > 0 {
		return v, Reject(ReasonMalformed, "missing %s", strings.Join(missing, ", "))
	}
	if !validID(v.VoterID) {
		return v, Reject(ReasonMalformed, "voter_id must be valid UTF-8 without NUL, at most %d bytes", maxIDBytes)
	}
	if _, err := time.Parse(DateLayout, v.DateOfBirth); err != nil {
		return v, Reject(ReasonMalformed, "date_of_birth %q is not YYYY-MM-DD", v.DateOfBirth)
	}
	if v.RegisteredAge < 18 || v.RegisteredAge > 130 {
		return v, Reject(ReasonMalformed, "registered_age %d is outside 18-130", v.RegisteredAge)
	}
	return v, nil
}

// DecodeBallot parses the fields of a vote that the tally needs; the rest of
// the record is validated as JSON but not decoded. Every error it returns is
// a *Rejection.
func DecodeBallot(b []byte, maxBytes int) (Ballot, error) {
	obj, put, err := parseObject(b, maxBytes)
	if err != nil {
		return Ballot{}, err
	}
	defer put()
	f := fields{obj: obj}
	voter := f.str("voter_id")
	cand := f.str("candidate_id")
	at := f.str("voting_time")
	vote := f.int("vote")
	if err := f.err(); err != nil {
		return Ballot{}, err
	}
	var missing []string
	for _, m := range []struct {
		name    string
		present bool
	}{
		{"voter_id", strings.TrimSpace(voter) != ""},
		{"candidate_id", strings.TrimSpace(cand) != ""},
		{"voting_time", at != ""},
		{"vote", obj.Exists("vote")},
	} {
		if !m.present {
			missing = append(missing, m.name)
		}
	}
	if len(missing) > 0 {
		return Ballot{}, Reject(ReasonMalformed, "missing %s", strings.Join(missing, ", "))
	}
	// Postgres text cannot hold NUL or invalid UTF-8: a ballot whose IDs
	// carry them could be neither counted nor recorded as rejected.
	if !validID(voter) || !validID(cand) {
		return Ballot{}, Reject(ReasonMalformed, "voter_id and candidate_id must be valid UTF-8 without NUL, at most %d bytes", maxIDBytes)
	}
	if vote != 1 {
		return Ballot{}, Reject(ReasonMalformed, "vote is %d, want 1", vote)
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return Ballot{}, Reject(ReasonMalformed, "voting_time %q is not RFC 3339", Printable(at, 64))
	}
	return Ballot{VoterID: voter, CandidateID: cand, VotingTime: t}, nil
}

// maxIDBytes bounds voter and candidate IDs.
const maxIDBytes = 256

func validID(s string) bool {
	return len(s) <= maxIDBytes && utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// Printable returns s as safe text for logs, headers and text columns: valid
// UTF-8, no NUL or other control characters, at most n bytes.
func Printable(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if len(s) > n {
		cut := n
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// parseObject checks the size and parses b as one JSON object. put returns
// the parser to the pool once the caller is done with the values.
func parseObject(b []byte, maxBytes int) (*fastjson.Value, func(), error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxRecordBytes
	}
	if len(b) > maxBytes {
		return nil, nil, Reject(ReasonOversized, "record is %d bytes, limit %d", len(b), maxBytes)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, nil, Reject(ReasonMalformed, "empty record")
	}
	p := parsers.Get()
	v, err := p.ParseBytes(b)
	if err != nil {
		parsers.Put(p)
		return nil, nil, Reject(ReasonMalformed, "invalid JSON: %s", Printable(err.Error(), 200))
	}
	if v.Type() != fastjson.TypeObject {
		parsers.Put(p)
		return nil, nil, Reject(ReasonMalformed, "not a JSON object")
	}
	return v, func() { parsers.Put(p) }, nil
}

// fields reads typed fields of an object and collects type errors.
type fields struct {
	obj    *fastjson.Value
	prefix string
	errs   []string
}

func (f *fields) typeErr(name, want string) {
	f.errs = append(f.errs, fmt.Sprintf("field %s%s: want %s", f.prefix, name, want))
}

// str returns a string field, "" when absent or null.
func (f *fields) str(name string) string {
	v := f.obj.Get(name)
	if v == nil || v.Type() == fastjson.TypeNull {
		return ""
	}
	b, err := v.StringBytes()
	if err != nil {
		f.typeErr(name, "string")
		return ""
	}
	return string(b)
}

// int returns an integer field, 0 when absent or null.
func (f *fields) int(name string) int {
	v := f.obj.Get(name)
	if v == nil || v.Type() == fastjson.TypeNull {
		return 0
	}
	n, err := v.Int()
	if err != nil {
		f.typeErr(name, "integer")
		return 0
	}
	return n
}

func (f *fields) err() error {
	if len(f.errs) == 0 {
		return nil
	}
	return Reject(ReasonMalformed, "%s", strings.Join(f.errs, "; "))
}
