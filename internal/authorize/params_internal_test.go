package authorize

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestReadParametersAreKnown keeps knownParams and logoutParams the
// parameters the code reads: every name /oauth2/authorize or
// /oauth2/logout reads from its url.Values (v.Get, v.Has, v[…]) must be
// in its set, or a copy of it sent twice would be ignored while the
// code read the first (docs/security.md T-223, T-224). resource may be
// repeated (RFC 8707 §2); the consent form's own fields are taken out
// before the request is judged, and only our own form sends them.
func TestReadParametersAreKnown(t *testing.T) {
	fset := token.NewFileSet()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	consts := map[string]string{}
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, s := range g.Specs {
				vs := s.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i < len(vs.Values) {
						if l, ok := vs.Values[i].(*ast.BasicLit); ok && l.Kind == token.STRING {
							consts[n.Name], _ = strconv.Unquote(l.Value)
						}
					}
				}
			}
		}
	}
	name := func(e ast.Expr) (string, bool) {
		switch e := e.(type) {
		case *ast.BasicLit:
			if e.Kind == token.STRING {
				s, err := strconv.Unquote(e.Value)
				return s, err == nil
			}
		case *ast.Ident:
			s, ok := consts[e.Name]
			return s, ok
		}
		return "", false
	}
	exempt := map[string]bool{"resource": true, decisionField: true, csrfField: true}
	read := map[string]int{}
	for _, f := range files {
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Recv == nil || fn.Body == nil {
				continue
			}
			recv := fn.Recv.List[0].Type
			if s, ok := recv.(*ast.StarExpr); ok {
				recv = s.X
			}
			set, what := knownParams, "knownParams"
			if id, ok := recv.(*ast.Ident); ok && id.Name == "Logout" {
				set, what = logoutParams, "logoutParams"
			}
			check := func(pos token.Pos, p string) {
				read[what]++
				if !set[p] && !(what == "knownParams" && exempt[p]) {
					t.Errorf("%s: %s reads %q, which %s lacks: a repeated copy would be ignored", fset.Position(pos), fn.Name.Name, p, what)
				}
			}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.CallExpr:
					sel, ok := n.Fun.(*ast.SelectorExpr)
					if !ok {
						break
					}
					if x, isV := sel.X.(*ast.Ident); isV && x.Name == "v" && (sel.Sel.Name == "Get" || sel.Sel.Name == "Has") && len(n.Args) == 1 {
						if p, ok := name(n.Args[0]); ok {
							check(n.Pos(), p)
						}
					}
				case *ast.IndexExpr:
					if x, ok := n.X.(*ast.Ident); ok && x.Name == "v" {
						if p, ok := name(n.Index); ok {
							check(n.Pos(), p)
						}
					}
				}
				return true
			})
		}
	}
	// The walk itself must have found the reads it guards.
	if read["knownParams"] < 15 || read["logoutParams"] < 5 {
		t.Fatalf("found %v reads, want at least 15 of /oauth2/authorize and 5 of /oauth2/logout", read)
	}
}
