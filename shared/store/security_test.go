package store_test

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/votingpipe/voting/shared/election"
)

// sqlArg says which argument of a database call is the SQL text.
var sqlArg = map[string]int{
	"Exec":     1, // (ctx, sql, args...) on pgx.Conn, pgx.Tx, pgxpool.Pool
	"Query":    1,
	"QueryRow": 1,
	"Prepare":  2, // (ctx, name, sql)
	"Queue":    0, // pgx.Batch.Queue(sql, args...)
}

// trustedSQL are the database calls whose SQL is not a Go constant, each
// with why it is safe. Keys are "path func".
var trustedSQL = map[string]string{
	"shared/store/migrate.go Migrate":          "the migration files embedded from infra/migrations",
	"shared/store/migrate.go Reset":            "infra/reset.sql, embedded",
	"shared/internal/testkit/testkit.go Count": "a test helper; every caller passes a constant",
	"shared/store/tally.go tallyBatch":         "tallySQL, or tallySQLWithoutResultsByState: tallySQL with a constant removed",
}

// sqlFormat matches a format string that builds SQL.
var sqlFormat = regexp.MustCompile(`(?is)^\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|TRUNCATE|WITH|COPY|GRANT)\b.*%`)

// TestSQLIsParameterised guards against SQL built from data: in every Go
// source file of the module (tests aside), the SQL text given to Exec,
// Query, QueryRow, Prepare and Batch.Queue must be a constant, a
// concatenation of constants and pgx.Identifier{...}.Sanitize() (quoted
// identifiers), or a variable that only ever holds such values (a range over
// a literal list, a parameter every caller passes a constant); values travel
// as $n parameters. fmt.Sprintf must not build SQL.
func TestSQLIsParameterised(t *testing.T) {
	root := moduleRoot(t)
	pkgs := map[string][]*ast.File{}
	paths := map[*ast.File]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		dir := filepath.Dir(rel)
		pkgs[dir] = append(pkgs[dir], f)
		paths[f] = filepath.ToSlash(rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	calls := 0
	for _, files := range pkgs {
		c := newSQLChecker(files)
		for _, f := range files {
			var fn string
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.FuncDecl:
					fn = n.Name.Name
				case *ast.CallExpr:
					sel, ok := n.Fun.(*ast.SelectorExpr)
					if !ok {
						return true
					}
					if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "fmt" && strings.HasPrefix(sel.Sel.Name, "Sprint") && len(n.Args) > 0 {
						if lit, ok := n.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							if s, _ := strconv.Unquote(lit.Value); sqlFormat.MatchString(s) {
								t.Errorf("%s: fmt.%s builds SQL: %.60q", fset.Position(n.Pos()), sel.Sel.Name, s)
							}
						}
					}
					i, ok := sqlArg[sel.Sel.Name]
					if !ok || len(n.Args) <= i || !looksLikeSQL(n.Args[i]) {
						return true
					}
					calls++
					if why, ok := trustedSQL[paths[f]+" "+fn]; ok && why != "" {
						return true
					}
					if !c.safe(n.Args[i], 0) {
						t.Errorf("%s: the SQL given to %s in %s is built from values that are not constants; pass values as $n parameters (or add the call to trustedSQL with why it is safe)",
							fset.Position(n.Args[i].Pos()), sel.Sel.Name, fn)
					}
				}
				return true
			})
		}
	}
	if calls < 20 {
		t.Fatalf("only %d database calls found: the guard is not looking at the code", calls)
	}
	t.Logf("%d database calls checked in %d packages", calls, len(pkgs))
}

// looksLikeSQL filters out calls that merely share a name with a database
// call: the argument must be an expression that can be a string.
func looksLikeSQL(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.BasicLit:
		return e.Kind == token.STRING
	case *ast.Ident, *ast.BinaryExpr, *ast.SelectorExpr, *ast.ParenExpr, *ast.CallExpr, *ast.IndexExpr:
		return true
	}
	return false
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test")
		}
		dir = parent
	}
}

// sqlChecker decides whether an expression can only hold constant SQL.
type sqlChecker struct {
	consts map[string]bool            // package-level constants
	funcs  map[string][]*ast.FuncDecl // functions and methods by name
	calls  map[string][]*ast.CallExpr // calls by callee name
	fields map[string][]ast.Expr      // values given to struct fields by name in composite literals
	assign map[*ast.Object][]ast.Expr // values assigned to local variables
}

func newSQLChecker(files []*ast.File) *sqlChecker {
	c := &sqlChecker{consts: map[string]bool{}, funcs: map[string][]*ast.FuncDecl{}, calls: map[string][]*ast.CallExpr{},
		fields: map[string][]ast.Expr{}, assign: map[*ast.Object][]ast.Expr{}}
	structs := map[string]*ast.StructType{}
	for _, f := range files {
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok {
				continue
			}
			for _, s := range g.Specs {
				switch s := s.(type) {
				case *ast.ValueSpec:
					if g.Tok == token.CONST {
						for _, n := range s.Names {
							c.consts[n.Name] = true
						}
					}
				case *ast.TypeSpec:
					if st, ok := s.Type.(*ast.StructType); ok {
						structs[s.Name.Name] = st
					}
				}
			}
		}
	}
	// fieldNames returns the field names, in order, of a struct type expression.
	fieldNames := func(e ast.Expr) []string {
		var st *ast.StructType
		switch e := e.(type) {
		case *ast.StructType:
			st = e
		case *ast.Ident:
			st = structs[e.Name]
		}
		if st == nil {
			return nil
		}
		var names []string
		for _, f := range st.Fields.List {
			for _, n := range f.Names {
				names = append(names, n.Name)
			}
			if len(f.Names) == 0 {
				names = append(names, "")
			}
		}
		return names
	}
	// positional records the values of a positional struct literal.
	positional := func(lit *ast.CompositeLit, names []string) {
		for j, el := range lit.Elts {
			if _, kv := el.(*ast.KeyValueExpr); kv || j >= len(names) {
				return
			}
			c.fields[names[j]] = append(c.fields[names[j]], el)
		}
	}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.FuncDecl:
				c.funcs[n.Name.Name] = append(c.funcs[n.Name.Name], n)
			case *ast.CallExpr:
				switch fn := n.Fun.(type) {
				case *ast.Ident:
					c.calls[fn.Name] = append(c.calls[fn.Name], n)
				case *ast.SelectorExpr:
					c.calls[fn.Sel.Name] = append(c.calls[fn.Sel.Name], n)
				}
			case *ast.CompositeLit:
				switch tt := n.Type.(type) {
				case *ast.ArrayType:
					if names := fieldNames(tt.Elt); names != nil {
						for _, el := range n.Elts {
							if e, ok := el.(*ast.CompositeLit); ok && e.Type == nil {
								positional(e, names)
							}
						}
					}
				case *ast.Ident, *ast.StructType:
					if names := fieldNames(tt); names != nil {
						positional(n, names)
					}
				}
			case *ast.KeyValueExpr:
				if k, ok := n.Key.(*ast.Ident); ok {
					c.fields[k.Name] = append(c.fields[k.Name], n.Value)
				}
			case *ast.AssignStmt:
				if len(n.Lhs) == len(n.Rhs) {
					for i, l := range n.Lhs {
						if id, ok := l.(*ast.Ident); ok && id.Obj != nil {
							c.assign[id.Obj] = append(c.assign[id.Obj], n.Rhs[i])
						}
					}
				}
			}
			return true
		})
	}
	return c
}

func (c *sqlChecker) safe(e ast.Expr, depth int) bool {
	if depth > 8 {
		return false
	}
	switch e := e.(type) {
	case *ast.BasicLit:
		return e.Kind == token.STRING
	case *ast.ParenExpr:
		return c.safe(e.X, depth+1)
	case *ast.BinaryExpr:
		return e.Op == token.ADD && c.safe(e.X, depth+1) && c.safe(e.Y, depth+1)
	case *ast.CallExpr:
		// pgx.Identifier{...}.Sanitize() quotes identifiers.
		if sel, ok := e.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Sanitize" {
			if lit, ok := sel.X.(*ast.CompositeLit); ok {
				if t, ok := lit.Type.(*ast.SelectorExpr); ok && t.Sel.Name == "Identifier" {
					return true
				}
			}
		}
		return false
	case *ast.SelectorExpr:
		// q.sql where q ranges over literals: every value any literal gives
		// the field must be safe.
		vals := c.fields[e.Sel.Name]
		if len(vals) == 0 {
			return false
		}
		for _, v := range vals {
			if !c.safe(v, depth+1) {
				return false
			}
		}
		return true
	case *ast.Ident:
		if e.Obj == nil {
			return c.consts[e.Name]
		}
		switch e.Obj.Kind {
		case ast.Con:
			return true
		case ast.Var:
		default:
			return false
		}
		switch d := e.Obj.Decl.(type) {
		case *ast.Field: // a parameter: every caller must pass safe SQL
			return c.safeParam(e.Name, d, depth)
		case *ast.AssignStmt:
			// for _, x := range <literal list>
			if len(d.Rhs) == 1 {
				if u, ok := d.Rhs[0].(*ast.UnaryExpr); ok && u.Op == token.RANGE {
					return c.safeElements(u.X, depth)
				}
			}
			// x := ...; x = ...: every value assigned must be safe.
			vals := c.assign[e.Obj]
			if len(vals) == 0 {
				return false
			}
			for _, v := range vals {
				if !c.safe(v, depth+1) {
					return false
				}
			}
			return true
		case *ast.ValueSpec:
			if len(d.Values) == 0 {
				return false
			}
			for _, v := range d.Values {
				if !c.safe(v, depth+1) {
					return false
				}
			}
			return true
		}
	}
	return false
}

// safeElements: a range over a literal list of safe values (or of struct
// literals, whose fields safe() checks where they are used).
func (c *sqlChecker) safeElements(x ast.Expr, depth int) bool {
	if id, ok := x.(*ast.Ident); ok && id.Obj != nil && id.Obj.Kind == ast.Var {
		if vs, ok := id.Obj.Decl.(*ast.ValueSpec); ok && len(vs.Values) == 1 {
			x = vs.Values[0]
		}
	}
	lit, ok := x.(*ast.CompositeLit)
	if !ok {
		return false
	}
	for _, el := range lit.Elts {
		if kv, ok := el.(*ast.KeyValueExpr); ok {
			el = kv.Value
		}
		if _, ok := el.(*ast.CompositeLit); ok {
			continue
		}
		if !c.safe(el, depth+1) {
			return false
		}
	}
	return true
}

// safeParam checks every call of the function declaring parameter name.
func (c *sqlChecker) safeParam(name string, field *ast.Field, depth int) bool {
	for _, fns := range c.funcs {
		for _, fn := range fns {
			idx := 0
			found := -1
			variadic := false
			for _, f := range fn.Type.Params.List {
				n := max(1, len(f.Names))
				if f == field {
					for j, nm := range f.Names {
						if nm.Name == name {
							found = idx + j
						}
					}
					_, variadic = f.Type.(*ast.Ellipsis)
				}
				idx += n
			}
			if found < 0 {
				continue
			}
			if variadic {
				return false
			}
			calls := c.calls[fn.Name.Name]
			if len(calls) == 0 {
				return false
			}
			for _, call := range calls {
				if found >= len(call.Args) || !c.safe(call.Args[found], depth+1) {
					return false
				}
			}
			return true
		}
	}
	return false
}

// hostile strings: SQL and format metacharacters, quotes of every kind,
// backslashes, comments, dollar quoting, placeholders, non-ASCII.
var hostile = []string{
	`Robert'); DROP TABLE votes; --`,
	`"; DELETE FROM voters WHERE ''=''; --`,
	`$1 $$ $tag$ \x27 \\' %s %v %%`,
	`O'Brien /* comment */ -- trailing`,
	"Zoë 🗳️ 選挙 ' \" ` \\ ; \t tab",
	`' OR 1=1 UNION SELECT password FROM pg_shadow --`,
}

// TestSQLMetacharactersRoundTrip registers candidates and voters whose IDs
// and names are made of SQL metacharacters, counts their votes and reads
// everything back: every string arrives unchanged and nothing else happens.
func TestSQLMetacharactersRoundTrip(t *testing.T) {
	st := open(t)
	ctx := context.Background()
	var cands []election.WeightedCandidate
	for i, h := range hostile {
		cands = append(cands, election.WeightedCandidate{Weight: 1, Candidate: election.Candidate{
			CandidateID: "c" + strconv.Itoa(i) + h, CandidateName: h, PartyAffiliation: h + " party",
			Biography: h, CampaignPlatform: h, PhotoURL: "https://example.org/" + h}})
	}
	if _, err := st.BeginElection(ctx, election.Election{Name: hostile[0], Seed: 1, Voters: int64(len(hostile)), Candidates: len(cands), Fingerprint: hostile[1]}, cands); err != nil {
		t.Fatal(err)
	}
	var voters []election.Voter
	for i, h := range hostile {
		voters = append(voters, election.Voter{VoterID: "v" + strconv.Itoa(i) + h, VoterName: h, DateOfBirth: "1970-01-01",
			Gender: h, Nationality: h, RegistrationNumber: h, Email: h, PhoneNumber: h, CellNumber: h, Picture: h,
			Address: election.Address{Street: h, City: h, State: h, Country: h, Postcode: h}, RegisteredAge: 40 + i})
	}
	if err := st.CopyVoters(ctx, election.RollChunk{Voters: voters, Voting: int64(len(voters))}); err != nil {
		t.Fatal(err)
	}
	if err := st.CompleteRoll(ctx); err != nil {
		t.Fatal(err)
	}
	var ballots []election.BallotAt
	for i, v := range voters {
		ballots = append(ballots, election.BallotAt{Offset: int64(i), Payload: []byte(v.VoterID), Ballot: election.Ballot{
			VoterID: v.VoterID, CandidateID: cands[(i+1)%len(cands)].CandidateID, VotingTime: time.Date(2026, 11, 3, 10, 0, i, 0, time.UTC)}})
	}
	// Unknown voters and candidates named with metacharacters are rejected, and kept verbatim.
	ballots = append(ballots,
		election.BallotAt{Offset: int64(len(voters)), Payload: []byte("x"), Ballot: election.Ballot{VoterID: hostile[5], CandidateID: cands[0].CandidateID, VotingTime: time.Now()}},
		election.BallotAt{Offset: int64(len(voters)) + 1, Payload: []byte("y"), Ballot: election.Ballot{VoterID: voters[0].VoterID, CandidateID: hostile[0], VotingTime: time.Now()}},
	)
	res, err := st.Tally(ctx, election.TallyBatch{Topic: topic, Partition: 0, Ballots: ballots})
	if err != nil {
		t.Fatal(err)
	}
	if res.Counted != len(voters) || len(res.Rejected) != 2 {
		t.Fatalf("counted %d, rejected %+v", res.Counted, res.Rejected)
	}

	got, err := st.Candidates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(cands, func(a, b election.WeightedCandidate) int { return strings.Compare(a.CandidateID, b.CandidateID) })
	if len(got) != len(cands) {
		t.Fatalf("%d candidates read back, want %d", len(got), len(cands))
	}
	for i := range got {
		if got[i] != cands[i] {
			t.Errorf("candidate changed on the way:\n got %+v\nwant %+v", got[i], cands[i])
		}
	}
	snap, err := st.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, c := range snap.Candidates {
		names[c.Name] = c.Votes == 1
	}
	for _, h := range hostile {
		if !names[h] {
			t.Errorf("snapshot lacks candidate %q with its one vote: %+v", h, snap.Candidates)
		}
	}
	for i, v := range voters {
		var name, state, cand string
		if err := st.Pool().QueryRow(ctx, `SELECT v.voter_name, v.address_state, x.candidate_id FROM voters v JOIN votes x USING (voter_id)
			WHERE voter_id = $1`, v.VoterID).Scan(&name, &state, &cand); err != nil {
			t.Fatalf("voter %q: %v", v.VoterID, err)
		}
		if name != v.VoterName || state != v.Address.State || cand != cands[slices.IndexFunc(cands, func(c election.WeightedCandidate) bool {
			return c.CandidateID == ballots[i].CandidateID
		})].CandidateID {
			t.Errorf("voter %q read back as %q %q %q", v.VoterID, name, state, cand)
		}
	}
	var rejectedVoter string
	if err := st.Pool().QueryRow(ctx, `SELECT voter_id FROM rejected_votes WHERE reason = 'unknown_voter'`).Scan(&rejectedVoter); err != nil || rejectedVoter != hostile[5] {
		t.Errorf("rejected voter_id %q (%v), want %q", rejectedVoter, err, hostile[5])
	}
	if rep := audit(t, st, map[int32]int64{0: int64(len(ballots))}); !rep.OK() || rep.Votes != int64(len(voters)) || rep.RegisteredVoters != int64(len(voters)) {
		t.Fatalf("audit after hostile names: %+v", rep)
	}
}
