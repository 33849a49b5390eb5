package generator

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math/bits"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/votingpipe/voting/shared/avatar"
	"github.com/votingpipe/voting/shared/election"
)

// ReferenceDate is the day ages are computed against. It is fixed, not
// time.Now(), so that a seed always yields the same voters.
var ReferenceDate = time.Date(2026, time.November, 3, 0, 0, 0, 0, time.UTC)

// Parties are the parties of the original demo, used in order for generated
// candidates; candidates beyond them get generated party names.
var Parties = []string{"Management Party", "Savior Party", "Tech Republic Party"}

// partyColors colour candidate photos by ballot position (and voters'
// pictures at random).
var partyColors = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"}

// rng is the random stream of one record: a PCG generator seeded from the
// election seed, the kind of record (stream) and its index.
type rng struct {
	pcg rand.PCG
}

func newRNG(seed int64, stream string, i int) rng {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], uint64(seed))
	binary.LittleEndian.PutUint64(b[8:], uint64(i))
	h := fnv.New64a()
	h.Write(b[:])
	h.Write([]byte(stream))
	s := h.Sum64()
	var r rng
	r.pcg.Seed(s, s^0x9e3779b97f4a7c15)
	return r
}

func (r *rng) uint64() uint64 { return r.pcg.Uint64() }

// intN returns a uniform int in [0, n), n > 0, by Lemire's multiply-shift
// method with rejection (no modulo bias).
func (r *rng) intN(n int) int {
	un := uint64(n)
	hi, lo := bits.Mul64(r.pcg.Uint64(), un)
	if lo < un {
		thresh := -un % un
		for lo < thresh {
			hi, lo = bits.Mul64(r.pcg.Uint64(), un)
		}
	}
	return int(hi)
}

// pick returns a uniformly drawn item of list.
func (r *rng) pick(list []string) string { return list[r.intN(len(list))] }

// Candidates generates n candidates for the seed.
func Candidates(seed int64, n int) []election.Candidate {
	w := words()
	out := make([]election.Candidate, n)
	for i := range out {
		r := newRNG(seed, "candidate", i)
		name := r.pick(w.first) + " " + r.pick(w.last)
		party := ""
		if i < len(Parties) {
			party = Parties[i]
		} else {
			party = titleCase(r.pick(w.adjective)) + " " + titleCase(r.pick(w.nounAbstr)) + " Party"
		}
		id := string(appendUUID(nil, &r))
		job := r.pick(w.jobTitle)
		city := r.pick(w.city)
		state := r.pick(w.state)
		out[i] = election.Candidate{
			CandidateID:      id,
			CandidateName:    name,
			PartyAffiliation: party,
			Biography:        fmt.Sprintf("%s is %s from %s, %s.", name, article(job), city, state),
			CampaignPlatform: strings.TrimRight(slogan(&r, w), ".") + ".",
			PhotoURL:         avatar.Ref(name, partyColors[i%len(partyColors)]),
		}
	}
	return out
}

// CandidateSpec is a candidate given by the caller rather than generated.
// Empty fields are filled in: the ID from the seed and name, the photo as an
// avatar reference (see package avatar).
type CandidateSpec struct {
	election.Candidate
	// Weight is the candidate's relative share of simulated ballots (default 1).
	Weight float64 `json:"weight,omitempty"`
}

// CompleteCandidates fills in what the caller left out of an explicit list.
func CompleteCandidates(seed int64, specs []CandidateSpec) []CandidateSpec {
	out := make([]CandidateSpec, len(specs))
	for i, s := range specs {
		if s.CandidateID == "" {
			r := newRNG(seed, "candidate:"+s.CandidateName+"/"+s.PartyAffiliation, i)
			s.CandidateID = string(appendUUID(nil, &r))
		}
		if s.PhotoURL == "" {
			s.PhotoURL = avatar.Ref(s.CandidateName, partyColors[i%len(partyColors)])
		}
		if s.Weight == 0 {
			s.Weight = 1
		}
		out[i] = s
	}
	return out
}

// Voter generates voter number i (0-based) of the election with this seed.
// It depends on nothing else, so ranges can be generated in any order, and
// it is safe to call from many goroutines at once.
func Voter(seed int64, i int) election.Voter {
	w := words()
	r := newRNG(seed, "voter", i)
	gender := "female"
	if r.intN(2) == 1 {
		gender = "male"
	}
	first := r.pick(w.first)
	last := r.pick(w.last)
	age := 18 + r.intN(83) // 18..100
	// Up to 364 days before the age-th birthday: exactly age years old on
	// ReferenceDate.
	dob := ReferenceDate.AddDate(-age, 0, -r.intN(365))

	// The generated strings are written one after the other into one
	// buffer and cut out of one string: one allocation for all of them.
	var (
		buf [384]byte
		at  [10]int
	)
	b := buf[:0]
	b = append(append(append(b, first...), ' '), last...)
	at[0] = len(b)
	b = dob.AppendFormat(b, election.DateLayout)
	at[1] = len(b)
	b = appendUUID(b, &r)
	at[2] = len(b)
	b = appendNumerify(b, &r, "VR##########")
	at[3] = len(b)
	b = appendStreet(b, &r, w)
	at[4] = len(b)
	city := r.pick(w.city)
	state := r.pick(w.state)
	b = appendNumerify(b, &r, r.pick(w.zip))
	at[5] = len(b)
	b = appendEmailPart(b, first)
	b = append(b, '.')
	b = appendEmailPart(b, last)
	b = strconv.AppendInt(b, int64(r.intN(1000)), 10)
	b = append(b, '@')
	b = append(b, r.pick(w.domainDescriptor)...)
	b = append(b, r.pick(w.domainBS)...)
	b = append(b, '.')
	b = append(b, r.pick(w.domainSuffix)...)
	at[6] = len(b)
	b = appendNumerify(b, &r, r.pick(w.phone))
	at[7] = len(b)
	b = appendNumerify(b, &r, r.pick(w.phone))
	at[8] = len(b)
	// The name is copied to the stack (it does not escape AppendRef).
	b = avatar.AppendRef(b, string(b[:at[0]]), partyColors[r.intN(len(partyColors))])
	at[9] = len(b)
	s := string(b)
	name := s[:at[0]]

	return election.Voter{
		VoterID:            s[at[1]:at[2]],
		VoterName:          name,
		DateOfBirth:        s[at[0]:at[1]],
		Gender:             gender,
		Nationality:        "US",
		RegistrationNumber: s[at[2]:at[3]],
		Address: election.Address{
			Street:   s[at[3]:at[4]],
			City:     city,
			State:    state,
			Country:  "United States",
			Postcode: s[at[4]:at[5]],
		},
		Email:         s[at[5]:at[6]],
		PhoneNumber:   s[at[6]:at[7]],
		CellNumber:    s[at[7]:at[8]],
		Picture:       s[at[8]:at[9]],
		RegisteredAge: age,
	}
}

// appendUUID appends a random version 4 UUID (RFC 9562: version nibble 4,
// variant bits 10), lower-case hex with dashes.
func appendUUID(b []byte, r *rng) []byte {
	var u [16]byte
	binary.LittleEndian.PutUint64(u[:8], r.uint64())
	binary.LittleEndian.PutUint64(u[8:], r.uint64())
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	const hex = "0123456789abcdef"
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, hex[c>>4], hex[c&0x0f])
	}
	return b
}

// appendNumerify appends format with every '#' replaced by a random digit;
// if that makes the first character a '0', it becomes a random digit 1-9, so
// that numbers never start with a zero (as gofakeit's formats mean it).
func appendNumerify(b []byte, r *rng, format string) []byte {
	start := len(b)
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c == '#' {
			c = '0' + byte(r.intN(10))
		}
		b = append(b, c)
	}
	if len(b) > start && b[start] == '0' {
		b[start] = '1' + byte(r.intN(9))
	}
	return b
}

// appendStreet appends a street address as gofakeit's Street makes them:
// a number, half the time a prefix ("North"), and a name with a suffix
// ("Bridgeville").
func appendStreet(b []byte, r *rng, w *wordLists) []byte {
	b = appendNumerify(b, r, r.pick(w.streetNumber))
	b = append(b, ' ')
	if r.intN(2) == 1 {
		b = append(b, r.pick(w.streetPrefix)...)
		b = append(b, ' ')
	}
	b = append(b, r.pick(w.streetName)...)
	return append(b, r.pick(w.streetSuffix)...)
}

// appendEmailPart appends the ASCII letters and digits of s, lower-cased.
func appendEmailPart(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z' || c >= '0' && c <= '9':
			b = append(b, c)
		case c >= 'A' && c <= 'Z':
			b = append(b, c+('a'-'A'))
		}
	}
	return b
}

// slogan fills a random slogan template as gofakeit's Slogan does: each
// {token} becomes an item of its list, then the whole is lower-cased and
// each sentence capitalised.
func slogan(r *rng, w *wordLists) string {
	var b []byte
	for _, p := range w.slogans[r.intN(len(w.slogans))] {
		if p.list != nil {
			b = append(b, r.pick(p.list)...)
		} else {
			b = append(b, p.lit...)
		}
	}
	b = []byte(strings.ToLower(string(b)))
	capNext := true
	for i, c := range b {
		switch {
		case c == '.' || c == '!' || c == '?':
			capNext = true
		case c == ' ':
			// keep looking for the start of the sentence
		default:
			if capNext && c >= 'a' && c <= 'z' {
				b[i] = c - ('a' - 'A')
			}
			capNext = false
		}
	}
	return string(b)
}

func titleCase(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// article prefixes a noun with "a" or "an".
func article(noun string) string {
	if noun != "" && strings.ContainsRune("aeiou", rune(noun[0])) {
		return "an " + noun
	}
	return "a " + noun
}
