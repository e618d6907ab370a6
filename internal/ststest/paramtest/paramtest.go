// Package paramtest finds the request parameters a package reads, so a
// test can hold an endpoint's set of known parameters to them: a name the
// code reads but the set lacks would be ignored when repeated while the
// code read its first copy (RFC 6749 §3.2; docs/security.md T-06, T-225).
package paramtest

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

// Read is one parameter read: its name, where (file:line), and the type
// name of the receiver of the method it is in ("" outside a method).
type Read struct {
	Name, File, Pos, Recv string
}

// Reads walks the non-test Go files of dir and returns every parameter
// read from a url.Values held by one of vars (an identifier, or a
// selector ending in that name: form, req.form): X.Get(name), X.Has(name)
// and X[name]; and every call get(name). name is a string literal or a
// constant of the package.
func Reads(t testing.TB, dir string, vars ...string) []Read {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
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
	isVar := func(e ast.Expr) bool {
		var name string
		switch e := e.(type) {
		case *ast.Ident:
			name = e.Name
		case *ast.SelectorExpr:
			name = e.Sel.Name
		}
		for _, v := range vars {
			if name == v {
				return true
			}
		}
		return false
	}
	lit := func(e ast.Expr) (string, bool) {
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
	var out []Read
	for _, f := range files {
		recv := ""
		add := func(pos token.Pos, name string) {
			p := fset.Position(pos)
			out = append(out, Read{Name: name, File: filepath.Base(p.Filename), Pos: p.String(), Recv: recv})
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.FuncDecl:
				recv = ""
				if n.Recv != nil {
					t := n.Recv.List[0].Type
					if s, ok := t.(*ast.StarExpr); ok {
						t = s.X
					}
					if id, ok := t.(*ast.Ident); ok {
						recv = id.Name
					}
				}
			case *ast.CallExpr:
				if len(n.Args) != 1 {
					break
				}
				name, ok := lit(n.Args[0])
				if !ok {
					break
				}
				switch fn := n.Fun.(type) {
				case *ast.SelectorExpr:
					if (fn.Sel.Name == "Get" || fn.Sel.Name == "Has") && isVar(fn.X) {
						add(n.Pos(), name)
					}
				case *ast.Ident:
					if fn.Name == "get" {
						add(n.Pos(), name)
					}
				}
			case *ast.IndexExpr:
				if isVar(n.X) {
					if name, ok := lit(n.Index); ok {
						add(n.Pos(), name)
					}
				}
			}
			return true
		})
	}
	return out
}

// Known reports, as t's errors, every parameter read from the url.Values
// named form in dir's code that known lacks, since a repeated copy of it
// would be ignored; and fails t when the walk found fewer than atLeast
// reads, so a walk that missed the reads it guards cannot pass.
func Known(t testing.TB, dir string, known map[string]bool, atLeast int) {
	t.Helper()
	reads := Reads(t, dir, "form")
	for _, r := range reads {
		if !known[r.Name] {
			t.Errorf("%s reads %q, which Params lacks: a repeated copy would be ignored", r.Pos, r.Name)
		}
	}
	if len(reads) < atLeast {
		t.Fatalf("found %d reads, want at least %d: %v", len(reads), atLeast, reads)
	}
}
