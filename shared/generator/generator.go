package generator

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/brianvoe/gofakeit/v7"

	"github.com/votingpipe/voting/shared/election"
)

// ReferenceDate is the day ages are computed against. It is fixed, not
// time.Now(), so that a seed always yields the same voters.
var ReferenceDate = time.Date(2026, time.November, 3, 0, 0, 0, 0, time.UTC)

// Parties are the parties of the original demo, used in order for generated
// candidates; candidates beyond them get generated party names.
var Parties = []string{"Management Party", "Savior Party", "Tech Republic Party"}

// partyColors colour candidate photos by ballot position.
var partyColors = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"}

func faker(seed int64, stream string, i int) *gofakeit.Faker {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], uint64(seed))
	binary.LittleEndian.PutUint64(b[8:], uint64(i))
	h := fnv.New64a()
	h.Write(b[:])
	h.Write([]byte(stream))
	s := h.Sum64()
	return gofakeit.NewFaker(rand.NewPCG(s, s^0x9e3779b97f4a7c15), false)
}

// Candidates generates n candidates for the seed.
func Candidates(seed int64, n int) []election.Candidate {
	out := make([]election.Candidate, n)
	for i := range out {
		f := faker(seed, "candidate", i)
		name := f.FirstName() + " " + f.LastName()
		party := ""
		if i < len(Parties) {
			party = Parties[i]
		} else {
			party = titleCase(f.AdjectiveDescriptive()) + " " + titleCase(f.NounAbstract()) + " Party"
		}
		out[i] = election.Candidate{
			CandidateID:      f.UUID(),
			CandidateName:    name,
			PartyAffiliation: party,
			Biography:        fmt.Sprintf("%s is %s from %s, %s.", name, article(strings.ToLower(f.JobTitle())), f.City(), f.State()),
			CampaignPlatform: strings.TrimRight(f.Slogan(), ".") + ".",
			PhotoURL:         Avatar(name, partyColors[i%len(partyColors)], 128),
		}
	}
	return out
}

// CandidateSpec is a candidate given by the caller rather than generated.
// Empty fields are filled in: the ID from the seed and name, the photo as an
// inline avatar.
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
			f := faker(seed, "candidate:"+s.CandidateName+"/"+s.PartyAffiliation, i)
			s.CandidateID = f.UUID()
		}
		if s.PhotoURL == "" {
			s.PhotoURL = Avatar(s.CandidateName, partyColors[i%len(partyColors)], 128)
		}
		if s.Weight == 0 {
			s.Weight = 1
		}
		out[i] = s
	}
	return out
}

// Voter generates voter number i (0-based) of the election with this seed.
// It depends on nothing else, so ranges can be generated in any order.
func Voter(seed int64, i int) election.Voter {
	f := faker(seed, "voter", i)
	gender := f.Gender()
	first := f.FirstName()
	last := f.LastName()
	age := 18 + int(f.IntN(83)) // 18..100
	dob := ReferenceDate.AddDate(-age, 0, -f.IntN(365))
	name := first + " " + last
	id := f.UUID()
	return election.Voter{
		VoterID:            id,
		VoterName:          name,
		DateOfBirth:        dob.Format(election.DateLayout),
		Gender:             gender,
		Nationality:        "US",
		RegistrationNumber: f.Numerify("VR##########"),
		Address: election.Address{
			Street:   f.Street(),
			City:     f.City(),
			State:    f.State(),
			Country:  "United States",
			Postcode: f.Zip(),
		},
		Email:         strings.ToLower(emailPart(first)+"."+emailPart(last)) + strconv.Itoa(f.IntN(1000)) + "@" + f.DomainName(),
		PhoneNumber:   f.PhoneFormatted(),
		CellNumber:    f.PhoneFormatted(),
		Picture:       Avatar(name, partyColors[int(f.IntN(len(partyColors)))], 64),
		RegisteredAge: age,
	}
}

// Avatar returns an inline SVG data URL showing the initials of name on a
// coloured disc: a picture that renders anywhere with no download.
func Avatar(name, color string, size int) string {
	initials := ""
	for _, w := range strings.Fields(name) {
		r := []rune(w)
		if len(r) > 0 && len([]rune(initials)) < 2 {
			initials += strings.ToUpper(string(r[0]))
		}
	}
	svg := fmt.Sprintf(`<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' viewBox='0 0 64 64'>`+
		`<circle cx='32' cy='32' r='32' fill='%s'/>`+
		`<text x='32' y='41' font-family='sans-serif' font-size='24' fill='#fff' text-anchor='middle'>%s</text></svg>`,
		size, size, color, xmlEscape(initials))
	// Minimal percent-encoding keeps the URL short: only the characters that
	// are unsafe in a data URL inside HTML attributes and CSS are escaped.
	return "data:image/svg+xml," + dataURLEscaper.Replace(svg)
}

var dataURLEscaper = strings.NewReplacer("%", "%25", "#", "%23", "<", "%3C", ">", "%3E", `"`, "%22", "\n", "%0A")

var xmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;")

func xmlEscape(s string) string {
	return xmlEscaper.Replace(s)
}

func emailPart(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
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
