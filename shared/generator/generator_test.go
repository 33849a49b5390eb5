package generator_test

import (
	"encoding/json"
	"os/exec"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/votingpipe/voting/shared/avatar"
	"github.com/votingpipe/voting/shared/election"
	"github.com/votingpipe/voting/shared/generator"
)

func TestVotersAreDeterministicAndValid(t *testing.T) {
	seen := map[string]bool{}
	states := map[string]bool{}
	for i := range 2000 {
		v := generator.Voter(42, i)
		if !reflect.DeepEqual(v, generator.Voter(42, i)) {
			t.Fatalf("voter %d differs between two generations", i)
		}
		if seen[v.VoterID] {
			t.Fatalf("voter %d repeats id %s", i, v.VoterID)
		}
		seen[v.VoterID] = true
		states[v.Address.State] = true
		b, _ := json.Marshal(v)
		if _, err := election.DecodeVoter(b, 0); err != nil {
			t.Fatalf("generated voter %d does not decode: %v\n%s", i, err, b)
		}
		if v.RegisteredAge < 18 || v.RegisteredAge > 100 {
			t.Fatalf("age %d", v.RegisteredAge)
		}
		if ini, color, ok := avatar.Parse(v.Picture); !ok || v.Picture != avatar.Ref(v.VoterName, color) || len(ini) != 2 {
			t.Fatalf("picture %q is not the avatar reference of %q", v.Picture, v.VoterName)
		}
		checkVoterFields(t, i, v)
	}
	if len(states) < 45 {
		t.Errorf("only %d states drawn in 2000 voters", len(states))
	}
	if generator.Voter(43, 0).VoterID == generator.Voter(42, 0).VoterID {
		t.Error("another seed gives the same voter")
	}
}

func TestCandidates(t *testing.T) {
	c := generator.Candidates(42, 5)
	if !reflect.DeepEqual(c, generator.Candidates(42, 5)) {
		t.Fatal("candidates are not deterministic")
	}
	for i, p := range generator.Parties {
		if c[i].PartyAffiliation != p {
			t.Errorf("candidate %d party %q, want the original's %q", i, c[i].PartyAffiliation, p)
		}
	}
	for _, x := range c {
		if x.CandidateID == "" || x.CandidateName == "" || x.PartyAffiliation == "" || x.PhotoURL == "" || x.Biography == "" {
			t.Errorf("incomplete candidate %+v", x)
		}
	}
}

func TestCompleteCandidates(t *testing.T) {
	in := []generator.CandidateSpec{
		{Candidate: election.Candidate{CandidateName: "Ada Lovelace", PartyAffiliation: "Analytical"}},
		{Candidate: election.Candidate{CandidateID: "x", CandidateName: "Bob", PartyAffiliation: "B", PhotoURL: "https://example.org/b.png"}, Weight: 3},
	}
	out := generator.CompleteCandidates(1, in)
	if out[0].CandidateID == "" || out[0].Weight != 1 || out[0].PhotoURL != "avatars/AL-1f77b4.svg" {
		t.Errorf("not completed: %+v", out[0])
	}
	if out[1].CandidateID != "x" || out[1].Weight != 3 || out[1].PhotoURL != "https://example.org/b.png" {
		t.Errorf("given fields changed: %+v", out[1])
	}
	if !reflect.DeepEqual(out, generator.CompleteCandidates(1, in)) {
		t.Error("not deterministic")
	}
}

// usStates are the 50 state names as gofakeit spells them, which the
// dashboard's map expects.
var usStates = []string{"Alabama", "Alaska", "Arizona", "Arkansas", "California", "Colorado", "Connecticut",
	"Delaware", "Florida", "Georgia", "Hawaii", "Idaho", "Illinois", "Indiana", "Iowa", "Kansas", "Kentucky",
	"Louisiana", "Maine", "Maryland", "Massachusetts", "Michigan", "Minnesota", "Mississippi", "Missouri",
	"Montana", "Nebraska", "Nevada", "New Hampshire", "New Jersey", "New Mexico", "New York", "North Carolina",
	"North Dakota", "Ohio", "Oklahoma", "Oregon", "Pennsylvania", "Rhode Island", "South Carolina",
	"South Dakota", "Tennessee", "Texas", "Utah", "Vermont", "Virginia", "Washington", "West Virginia",
	"Wisconsin", "Wyoming"}

var (
	uuidV4RE   = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	regNumRE   = regexp.MustCompile(`^VR[0-9]{10}$`)
	nameRE     = regexp.MustCompile(`^\S+ \S+$`)
	streetRE   = regexp.MustCompile(`^[1-9][0-9]{2,4} ((North|East|West|South|New|Lake|Port) )?[A-Z][A-Za-z]+[a-z]$`)
	cityRE     = regexp.MustCompile(`^[A-Z][A-Za-z.'/ -]+$`)
	postcodeRE = regexp.MustCompile(`^[1-9][0-9]{4}$`)
	emailRE    = regexp.MustCompile(`^[a-z0-9]+\.[a-z0-9]+[0-9]{1,3}@[a-z0-9-]+\.[a-z]+$`)
	phoneRE    = regexp.MustCompile(`^([1-9][0-9]{2}-[0-9]{3}-[0-9]{4}|\([0-9]{3}\)[0-9]{3}-[0-9]{4}|1-[0-9]{3}-[0-9]{3}-[0-9]{4}|[1-9][0-9]{2}\.[0-9]{3}\.[0-9]{4})$`)
)

// checkVoterFields checks that every field of v looks like the real thing.
func checkVoterFields(t *testing.T, i int, v election.Voter) {
	t.Helper()
	fail := func(field, val string) { t.Fatalf("voter %d: bad %s %q", i, field, val) }
	if !uuidV4RE.MatchString(v.VoterID) {
		fail("voter_id (not a UUID v4)", v.VoterID)
	}
	if !nameRE.MatchString(v.VoterName) {
		fail("voter_name", v.VoterName)
	}
	if v.Gender != "male" && v.Gender != "female" {
		fail("gender", v.Gender)
	}
	if v.Nationality != "US" || v.Address.Country != "United States" {
		fail("nationality/country", v.Nationality+"/"+v.Address.Country)
	}
	if !regNumRE.MatchString(v.RegistrationNumber) {
		fail("registration_number", v.RegistrationNumber)
	}
	if !streetRE.MatchString(v.Address.Street) {
		fail("address.street", v.Address.Street)
	}
	if !cityRE.MatchString(v.Address.City) {
		fail("address.city", v.Address.City)
	}
	if !slices.Contains(usStates, v.Address.State) {
		fail("address.state (not one of the 50 states)", v.Address.State)
	}
	if !postcodeRE.MatchString(v.Address.Postcode) {
		fail("address.postcode", v.Address.Postcode)
	}
	if !emailRE.MatchString(v.Email) {
		fail("email", v.Email)
	}
	if !phoneRE.MatchString(v.PhoneNumber) {
		fail("phone_number", v.PhoneNumber)
	}
	if !phoneRE.MatchString(v.CellNumber) {
		fail("cell_number", v.CellNumber)
	}
	dob, err := time.Parse(election.DateLayout, v.DateOfBirth)
	if err != nil {
		fail("date_of_birth", v.DateOfBirth)
	}
	// The age on ReferenceDate, as anyone would count it.
	ref := generator.ReferenceDate
	age := ref.Year() - dob.Year()
	if ref.Month() < dob.Month() || ref.Month() == dob.Month() && ref.Day() < dob.Day() {
		age--
	}
	if age != v.RegisteredAge || age < 18 || age > 100 {
		t.Fatalf("voter %d: born %s is %d on %s, registered_age %d", i, v.DateOfBirth, age,
			generator.ReferenceDate.Format(election.DateLayout), v.RegisteredAge)
	}
}

func TestVoterFieldsCoverTheLists(t *testing.T) {
	genders := map[string]int{}
	prefixed, phones := 0, map[string]bool{}
	ages := map[int]bool{}
	const n = 20000
	for i := range n {
		v := generator.Voter(7, i)
		genders[v.Gender]++
		if strings.Count(v.Address.Street, " ") > 1 {
			prefixed++
		}
		phones[phoneFormat(v.PhoneNumber)] = true
		ages[v.RegisteredAge] = true
	}
	if g := genders["male"]; g < n*45/100 || g > n*55/100 {
		t.Errorf("%d men in %d voters", g, n)
	}
	if prefixed < n*45/100 || prefixed > n*55/100 {
		t.Errorf("%d streets with a prefix in %d", prefixed, n)
	}
	if len(phones) != 4 { // every format drawn
		t.Errorf("phone formats drawn: %d", len(phones))
	}
	if len(ages) != 83 {
		t.Errorf("%d distinct ages, want all of 18..100", len(ages))
	}
}

// phoneFormat tells gofakeit's four phone formats apart.
func phoneFormat(p string) string {
	switch {
	case p[0] == '(':
		return "(###)###-####"
	case p[1] == '-':
		return "1-###-###-####"
	case p[3] == '.':
		return "###.###.####"
	}
	return "###-###-####"
}

func TestVoterConcurrent(t *testing.T) {
	want := make([]election.Voter, 200)
	for i := range want {
		want[i] = generator.Voter(99, i)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for k := range want {
				i := (k + g*25) % len(want)
				if v := generator.Voter(99, i); !reflect.DeepEqual(v, want[i]) {
					t.Errorf("voter %d differs when generated concurrently", i)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestCandidateFields(t *testing.T) {
	c := generator.Candidates(3, 40)
	seen := map[string]bool{}
	for i, x := range c {
		if !uuidV4RE.MatchString(x.CandidateID) || seen[x.CandidateID] {
			t.Errorf("candidate %d id %q", i, x.CandidateID)
		}
		seen[x.CandidateID] = true
		if !nameRE.MatchString(x.CandidateName) {
			t.Errorf("candidate %d name %q", i, x.CandidateName)
		}
		if i >= len(generator.Parties) && !regexp.MustCompile(`^[A-Z][a-z-]+ [A-Z][a-z-]+ Party$`).MatchString(x.PartyAffiliation) {
			t.Errorf("candidate %d party %q", i, x.PartyAffiliation)
		}
		if !strings.HasPrefix(x.Biography, x.CandidateName+" is a") || !strings.HasSuffix(x.Biography, ".") {
			t.Errorf("candidate %d biography %q", i, x.Biography)
		}
		state := x.Biography[strings.LastIndex(x.Biography, ", ")+2 : len(x.Biography)-1]
		if !slices.Contains(usStates, state) {
			t.Errorf("candidate %d biography state %q", i, state)
		}
		p := x.CampaignPlatform
		if len(p) < 4 || p[0] < 'A' || p[0] > 'Z' || !strings.HasSuffix(p, ".") || strings.HasSuffix(p, "..") || strings.ContainsAny(p, "{}") {
			t.Errorf("candidate %d platform %q", i, p)
		}
		if _, color, ok := avatar.Parse(x.PhotoURL); !ok || x.PhotoURL != avatar.Ref(x.CandidateName, color) {
			t.Errorf("candidate %d photo %q", i, x.PhotoURL)
		}
	}
	// The same candidates, however many are asked for.
	if !reflect.DeepEqual(generator.Candidates(3, 5), c[:5]) {
		t.Error("the first candidates depend on how many are generated")
	}
}

// TestNoGofakeitAtRunTime checks that the package does not link gofakeit,
// whose data would add megabytes to every binary that generates voters.
func TestNoGofakeitAtRunTime(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool:", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, exitStderr(err))
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, "github.com/votingpipe/voting/shared/generator") {
		t.Fatalf("go list -deps did not list the package itself:\n%s", out)
	}
	for _, d := range deps {
		if strings.HasPrefix(d, "github.com/brianvoe/gofakeit") {
			t.Errorf("package generator depends on %s at run time", d)
		}
	}
}

// TestWordsAreGenerated checks that words.txt is exactly what
// internal/mkwords writes from the gofakeit in go.mod.
func TestWordsAreGenerated(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool:", err)
	}
	if out, err := exec.Command(goTool, "run", "./internal/mkwords", "-check").CombinedOutput(); err != nil {
		t.Fatalf("go run ./internal/mkwords -check: %v\n%s", err, out)
	}
}

func exitStderr(err error) []byte {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.Stderr
	}
	return nil
}

func BenchmarkVoter(b *testing.B) {
	for i := 0; b.Loop(); i++ {
		generator.Voter(42, i)
	}
}
