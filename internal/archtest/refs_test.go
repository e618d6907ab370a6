package archtest

import (
	"fmt"
	"go/scanner"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// outsideRef matches a citation of a document that is not in the
// repository: the background notes the project started from, their case
// numbers, and issue or seed numbers of a tracker nobody who clones the
// repository can read. Comments and docs explain the why in words or point
// into docs/ instead (docs/security.md for case ids).
var outsideRef = regexp.MustCompile(strings.Join([]string{
	`\bDESIGN(\.md)?\s*§`,
	`\bSECURITY(\.md)?:?\s+(b\.|c\.[0-9]|d\.[0-9]|F[0-9]|§)`,
	`\bSTYLE(\.md)?\s*§`,
	`\bDEPENDENCIES(\.md)?\b`,
	`\b[Ii]ssues?\s+#?[0-9]+`,
	`(^|[\s(\[,;])#[0-9]+\b`,
	`\bseeds?\s+0[0-9][0-9]`,
	`\.\./shared\b`,
	`\bb\.[0-9]+\b`,
	`\bc\.1\s*\(`,
	`(^|[^\w-])F[0-9]{1,2}\b`,
}, "|"))

// outsideRefLines is outsideRef over a text of several lines: ^ matches
// at the start of each. Whatever outsideRef finds in a line, this finds in
// a text holding that line.
var outsideRefLines = regexp.MustCompile("(?m)" + outsideRef.String())

// mayCiteOutside reports whether text holds a piece every alternative of
// outsideRef needs (a literal, or F and a digit): a string search, so
// that the regular expression runs only on the few texts that may match.
func mayCiteOutside(text string) bool {
	for _, lit := range []string{"§", "SECURITY", "DEPENDENCIES", "ssue", "#", "eed", "../shared", "b.", "c.1"} {
		if strings.Contains(text, lit) {
			return true
		}
	}
	for i := strings.IndexByte(text, 'F'); i >= 0 && i+1 < len(text); {
		if c := text[i+1]; c >= '0' && c <= '9' {
			return true
		}
		j := strings.IndexByte(text[i+1:], 'F')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return false
}

// caseIDs is caseID.FindAllStringIndex(text, -1), run only when text
// holds a hyphen before a digit (every id does).
func caseIDs(text string) [][]int {
	for i := strings.IndexByte(text, '-'); i >= 0 && i+1 < len(text); {
		if c := text[i+1]; c >= '0' && c <= '9' {
			return caseID.FindAllStringIndex(text, -1)
		}
		j := strings.IndexByte(text[i+1:], '-')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return nil
}

// findAllIf is re.FindAllStringSubmatchIndex(text, -1) when text contains
// lit, which every match of re does; nil otherwise.
func findAllIf(text, lit string, re *regexp.Regexp) [][]int {
	if !strings.Contains(text, lit) {
		return nil
	}
	return re.FindAllStringSubmatchIndex(text, -1)
}

// caseID matches an id of the docs/security.md scheme.
var caseID = regexp.MustCompile(`\b[TFDA]-[0-9]{2,3}\b`)

// definedID matches the first cell of a table row that defines a case id.
var definedID = regexp.MustCompile(`(?m)^\|\s*\*{0,2}([TFDA]-[0-9]{2,3})\*{0,2}\s*\|`)

// citedTest matches a test function named in docs/security.md, in
// backquotes, possibly followed by a sub-test.
var citedTest = regexp.MustCompile("`((?:Test|Benchmark|Fuzz|Example)\\w*)[/`]")

// testFunc matches the declaration of a test function.
var testFunc = regexp.MustCompile(`(?m)^func ((?:Test|Benchmark|Fuzz|Example)\w*)\(`)

// docLink matches a reference into docs/ with an anchor; mdLink a
// relative Markdown link with an anchor.
var (
	docLink = regexp.MustCompile(`docs/([\w/-]+\.md)#([\w-]+)`)
	mdLink  = regexp.MustCompile(`\]\(((?:\.\./|\./)?[\w/-]+\.md)#([\w-]+)\)`)
)

func TestOutsideRefPattern(t *testing.T) {
	// Written as sums so that this file does not itself match the
	// repository-wide citation check it tests.
	bad := []string{
		"see DESIGN " + "§7", "(DESIGN.md §4)", "SECURITY " + "b.49", "SECURITY.md F16", "F16", "(F7–F11)",
		"STYLE " + "§2 rule 2", "DEPENDENCIES " + "§4", "issue" + " 4", "issues #12", "fixes #12", "(#70)",
		"seed 001", "../" + "shared/DESIGN.md", "b.55", "c.1(8)", "SECURITY.md §1", "SECURITY d.5",
	}
	good := []string{
		"docs/security.md T-49", "docs/design.md#limits", "F-16", "PKCS#8", "go-oidc#482 closed",
		"RFC 7518 §3.4", "a seed for maphash", "b.N iterations", "the issuer", "P-256",
		"report vulnerabilities as SECURITY.md says",
	}
	for _, s := range bad {
		if !outsideRef.MatchString(s) {
			t.Errorf("outsideRef misses %q", s)
		}
		if !mayCiteOutside(s) || !outsideRefLines.MatchString("a line before\n"+s) {
			t.Errorf("the whole-text search misses %q, which outsideRef finds", s)
		}
	}
	for _, s := range good {
		if m := outsideRef.FindString(s); m != "" {
			t.Errorf("outsideRef matches %q in %q", m, s)
		}
	}
	ids := definedIDs("| T-01 | x |\n| **F-02** | y |\n| not T-03 | z |\n")
	if !ids["T-01"] || !ids["F-02"] || ids["T-03"] {
		t.Errorf("definedIDs = %v, want T-01 and F-02 only", ids)
	}
	if got := slugs("# The model\n## Tokens: claims & lifetimes\n```\n# not a heading\n```\n"); !got["the-model"] || !got["tokens-claims--lifetimes"] || got["not-a-heading"] {
		t.Errorf("slugs = %v", got)
	}
}

// TestNoOutsideReferences: Go comments (outside internal/gen) and the
// Markdown of docs/ and README.md cite only what the repository holds.
// Case ids must be defined in docs/security.md, and anchors into docs/
// must exist.
func TestNoOutsideReferences(t *testing.T) {
	root, files := repoFiles(t)
	secText, err := os.ReadFile(filepath.Join(root, "docs", "security.md"))
	if err != nil {
		t.Fatalf("docs/security.md: %v", err)
	}
	defined := definedIDs(string(secText))
	if len(defined) == 0 {
		t.Fatal("docs/security.md defines no case ids")
	}
	anchors := map[string]map[string]bool{}
	checkAnchor := func(rel string, line int, target, anchor string) {
		s, ok := anchors[target]
		if !ok {
			if b, err := os.ReadFile(target); err == nil {
				s = slugs(string(b))
			}
			anchors[target] = s
		}
		shown, _ := filepath.Rel(root, target)
		if s == nil {
			t.Errorf("%s:%d: %s does not exist", rel, line, shown)
		} else if !s[anchor] {
			t.Errorf("%s:%d: %s has no heading for #%s", rel, line, shown, anchor)
		}
	}
	// check looks at text, which begins on line first of path and may span
	// several lines (a block comment, a whole Markdown file). Each pattern
	// runs once over the whole text, not once a line: the per-line
	// calls were most of this test's time under the race detector. A
	// match's line is counted from its offset; outsideRef, whose \s may
	// span a line break, is asked line by line only where the whole text
	// matches, so what it finds is what a line-by-line search finds.
	check := func(path string, first int, text string) {
		rel, _ := filepath.Rel(root, path)
		lineAt := func(off int) int { return first + strings.Count(text[:off], "\n") }
		if mayCiteOutside(text) && outsideRefLines.MatchString(text) {
			for i, l := range strings.Split(text, "\n") {
				for _, m := range outsideRef.FindAllString(l, -1) {
					t.Errorf("%s:%d: cites %q, a document outside the repository: explain in words or point into docs/", rel, first+i, strings.TrimSpace(m))
				}
			}
		}
		for _, ix := range caseIDs(text) {
			if id := text[ix[0]:ix[1]]; !defined[id] {
				t.Errorf("%s:%d: case id %s is not defined in docs/security.md", rel, lineAt(ix[0]), id)
			}
		}
		for _, m := range findAllIf(text, "docs/", docLink) {
			checkAnchor(rel, lineAt(m[0]), filepath.Join(root, "docs", filepath.FromSlash(text[m[2]:m[3]])), text[m[4]:m[5]])
		}
		if strings.HasSuffix(path, ".md") {
			for _, m := range findAllIf(text, ".md#", mdLink) {
				checkAnchor(rel, lineAt(m[0]), filepath.Join(filepath.Dir(path), filepath.FromSlash(text[m[2]:m[3]])), text[m[4]:m[5]])
			}
		}
	}

	var goFiles, mdFiles []string
	for _, rel := range files {
		path := filepath.Join(root, filepath.FromSlash(rel))
		switch {
		case strings.HasSuffix(rel, ".go"):
			goFiles = append(goFiles, path)
		case rel == "README.md", strings.HasPrefix(rel, "docs/") && strings.HasSuffix(rel, ".md"):
			mdFiles = append(mdFiles, path)
		}
	}
	if len(goFiles) < 50 || !slices.Contains(mdFiles, filepath.Join(root, "README.md")) {
		t.Fatalf("found %d Go files and %v: wrong root %s?", len(goFiles), mdFiles, root)
	}

	fset := token.NewFileSet()
	tests := map[string]bool{}
	for _, path := range goFiles {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(path, "_test.go") {
			for _, m := range testFunc.FindAllSubmatch(src, -1) {
				tests[string(m[1])] = true
			}
		}
		file := fset.AddFile(path, -1, len(src))
		var s scanner.Scanner
		s.Init(file, src, nil, scanner.ScanComments)
		for {
			pos, tok, lit := s.Scan()
			if tok == token.EOF {
				break
			}
			if tok == token.COMMENT {
				check(path, fset.Position(pos).Line, lit)
			}
		}
	}
	// Every test docs/security.md names as proof exists.
	for _, m := range citedTest.FindAllStringSubmatch(string(secText), -1) {
		if !tests[m[1]] {
			t.Errorf("docs/security.md cites %s, which is not a test function in the repository", m[1])
		}
	}
	for _, path := range mdFiles {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		check(path, 1, string(b))
	}
}

// repoFiles returns the repository's root and the slash-separated paths,
// relative to it, of its files outside dot directories, internal/gen
// (generated) and testdata (never built).
func repoFiles(t *testing.T) (root string, rels []string) {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || rel == "internal/gen" || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		rels = append(rels, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return root, rels
}

// definedIDs returns the case ids docs/security.md defines: the first cell
// of a table row.
func definedIDs(md string) map[string]bool {
	ids := map[string]bool{}
	for _, m := range definedID.FindAllStringSubmatch(md, -1) {
		ids[m[1]] = true
	}
	return ids
}

// slugs returns the anchors GitHub gives the headings of md (outside code
// fences): lower case, punctuation dropped, spaces as hyphens, and -1, -2
// for repeats.
func slugs(md string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	fence := false
	for _, l := range strings.Split(md, "\n") {
		if strings.HasPrefix(l, "```") {
			fence = !fence
			continue
		}
		if fence || !strings.HasPrefix(l, "#") {
			continue
		}
		h := strings.TrimSpace(strings.TrimLeft(l, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(h) {
			switch {
			case r == ' ':
				b.WriteByte('-')
			case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
				b.WriteRune(r)
			}
		}
		s := b.String()
		if n := seen[s]; n > 0 {
			out[fmt.Sprintf("%s-%d", s, n)] = true
		} else {
			out[s] = true
		}
		seen[s]++
	}
	return out
}
