package archtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checkptrOff is the -gcflags of the test command: the race detector's
// pointer checks (checkptr, which -race turns on) are left off for the
// modernc.org modules only, SQLite transpiled from C, whose pointer
// arithmetic they checked on every statement: a quarter of internal/app's
// CPU under -race and a third of internal/storage/sqlstore's (README.md). Every sts package keeps them, and every
// package, modernc's included, stays instrumented for races.
const checkptrOff = `-gcflags='modernc.org/...=-d=checkptr=0'`

// TestCITestCommandIsREADMEs: .ci/run runs the README's test command, the
// line after its "Keep this line identical" comment, and that command
// leaves checkptr off for modernc.org/... and nothing else.
func TestCITestCommandIsREADMEs(t *testing.T) {
	root, _ := repoFiles(t)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	ci, err := os.ReadFile(filepath.Join(root, ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "Run the tests:\n\n```sh\n")
	if !ok {
		t.Fatal("README.md: no ```sh block after \"Run the tests:\"")
	}
	want, _, _ := strings.Cut(after, "\n")
	_, after, ok = strings.Cut(string(ci), "# Keep this line identical to the test command in README.md.\n")
	if !ok {
		t.Fatal(".ci/run: no \"Keep this line identical\" comment")
	}
	got, _, _ := strings.Cut(after, "\n")
	if got != want {
		t.Errorf(".ci/run runs\n\t%s\nREADME.md says\n\t%s", got, want)
	}
	if !strings.HasPrefix(want, "go test -p 6 -race ") || !strings.Contains(want, " "+checkptrOff+" ") {
		t.Errorf("README.md's test command %q: want go test -p 6 -race with %s", want, checkptrOff)
	}
	if !strings.Contains(want, " -ldflags=-w ") || strings.Count(want, "-ldflags") != 1 {
		t.Errorf("README.md's test command %q: want -ldflags=-w (test binaries linked without DWARF) and no other -ldflags", want)
	}
	if strings.Count(want, "-gcflags") != 1 {
		t.Errorf("README.md's test command %q: want one -gcflags, %s", want, checkptrOff)
	}
}
