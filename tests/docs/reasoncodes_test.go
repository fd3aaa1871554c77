// Package docs_test checks that the documentation names what the sources define.
package docs_test

import (
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
)

// root is the repository, from this package's directory.
const root = "../.."

// doc is the one list of reason codes.
const doc = "docs/reason-codes.md"

// notCodes are packages whose Reason* constants are not reason codes of an application: the
// audit chain's verifier names why a stored record breaks the chain ("wrong hash"), which an
// operator reads in the verifier's report, not in any event.
var notCodes = []string{"services/audit/internal/chain"}

// codeConstants returns every string constant of the sources whose name starts with one of
// prefixes, by value, with where it is defined. Tests are left out: they define no codes.
func codeConstants(t *testing.T, dirs []string, prefixes ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	fset := token.NewFileSet()
	for _, dir := range dirs {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && slices.ContainsFunc(notCodes, func(n string) bool { return path == filepath.Join(root, n) }) {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			for _, decl := range f.Decls {
				g, ok := decl.(*ast.GenDecl)
				if !ok || g.Tok != token.CONST {
					continue
				}
				for _, spec := range g.Specs {
					v := spec.(*ast.ValueSpec)
					for i, name := range v.Names {
						if !slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(name.Name, p) }) || i >= len(v.Values) {
							continue
						}
						lit, ok := v.Values[i].(*ast.BasicLit)
						if !ok || lit.Kind != token.STRING {
							t.Errorf("%s: %s is not a string literal: the test cannot read its code", fset.Position(name.Pos()), name.Name)
							continue
						}
						s, _ := strconv.Unquote(lit.Value)
						out[s] = fset.Position(name.Pos()).String() + " " + name.Name
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// documented returns the codes in the first column of the doc's tables.
func documented(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, doc))
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\|\\s*`([A-Za-z_]+)`\\s*\\|")
	out := map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		out[m[1]] = true
	}
	return out
}

// TestEveryReasonCodeIsDocumented: every Reason* constant (scoring's, offer assembly's, the
// console's, the failure reasons of loan.application.failed.v1) and every self-check code has
// its row in docs/reason-codes.md, and the doc lists nothing the sources no longer define.
func TestEveryReasonCodeIsDocumented(t *testing.T) {
	consts := codeConstants(t, []string{"services", "contracts", "pkg"}, "Reason")
	for code, check := range codeConstants(t, []string{"services/offers/internal/catalog"}, "Check") {
		consts[code] = check
	}
	// The codes the review named must be among them: the walk must not miss a package.
	for _, code := range []string{"STOP_LIST", "PRODUCT_NOT_SUPPORTED", "NO_MATCHING_PRODUCT", "OFFERS_FAILED_CHECK",
		"OFFICER_APPROVED", "OFFICER_REJECTED", "UNDERWRITING_FALLBACK", "psk_above_cap", "poison"} {
		if _, ok := consts[code]; !ok {
			t.Errorf("the sources define no %s: the walk missed it", code)
		}
	}
	docs := documented(t)
	for code, where := range consts {
		if !docs[code] {
			t.Errorf("%s (%s) is not in %s", code, where, doc)
		}
	}
	for code := range docs {
		if _, ok := consts[code]; !ok {
			t.Errorf("%s lists %s, which no constant of the sources defines", doc, code)
		}
	}
}
