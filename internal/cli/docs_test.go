package cli

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// docFiles are the documents whose shell blocks an operator copies.
func docFiles(t *testing.T) []string {
	t.Helper()
	files := []string{"../../README.md"}
	for _, pattern := range []string{"../../docs/*.md", "../../docs/guides/*.md"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	return files
}

// stsLines returns the sts command lines of data's fenced code blocks,
// with their line numbers: a line that starts with "sts " or "go run
// ./cmd/sts " (after an optional "$ " prompt or environment assignments),
// continuation lines
// joined, the trailing comment dropped.
func stsLines(data string) map[int]string {
	out := map[int]string{}
	lines := strings.Split(data, "\n")
	in := false
	lead := regexp.MustCompile(`^(\$ )?([A-Z_]+=\S+ )*(sts|/sts|\./sts|go run \./cmd/sts) `)
	for i := 0; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		if strings.HasPrefix(l, "```") {
			in = !in
			continue
		}
		m := lead.FindStringSubmatch(l)
		if !in || m == nil {
			continue
		}
		start := i
		cmd := strings.TrimPrefix(l, m[0])
		for strings.HasSuffix(cmd, `\`) && i+1 < len(lines) {
			i++
			cmd = strings.TrimSuffix(cmd, `\`) + " " + strings.TrimSpace(lines[i])
		}
		if j := strings.Index(cmd, " #"); j >= 0 {
			cmd = cmd[:j]
		}
		for _, sep := range []string{" | ", " > ", " < ", " && ", " 2>"} {
			cmd, _, _ = strings.Cut(cmd, sep)
		}
		out[start+1] = cmd
	}
	return out
}

// TestDocsCommandsExist: every sts command line in the documentation's
// code blocks names a command that exists, with flags it has. A renamed
// command or flag fails here rather than in an operator's shell.
func TestDocsCommandsExist(t *testing.T) {
	t.Parallel()
	root := newRoot(io.Discard, io.Discard)
	root.InitDefaultCompletionCmd() // cobra adds it when the command runs
	subst := regexp.MustCompile(`\$\([^)]*\)`)
	flag := regexp.MustCompile(`^--?([a-zA-Z][a-zA-Z0-9-]*)`)
	n := 0
	for _, file := range docFiles(t) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(file, "../../")
		for line, cmdline := range stsLines(string(data)) {
			n++
			args := strings.Fields(subst.ReplaceAllString(cmdline, "X"))
			cmd, rest, err := root.Find(args)
			if err != nil || cmd == root && (len(rest) == 0 || !strings.HasPrefix(rest[0], "-")) { // "sts --help" is a line
				t.Errorf("%s:%d: %q names no sts command", name, line, cmdline)
				continue
			}
			// A group (keys, pat, …) runs to print its help, so it is Runnable;
			// a word after it is a subcommand that does not exist.
			if cmd.HasSubCommands() && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
				t.Errorf("%s:%d: %q: %s has no subcommand %q", name, line, cmdline, cmd.CommandPath(), rest[0])
				continue
			}
			for _, a := range rest {
				if a == "--" {
					break
				}
				m := flag.FindStringSubmatch(a)
				if m == nil {
					continue
				}
				if !hasFlag(cmd, m[1], !strings.HasPrefix(a, "--")) {
					t.Errorf("%s:%d: %q: %s has no flag %s", name, line, cmdline, cmd.CommandPath(), m[0])
				}
			}
		}
	}
	if n < 50 {
		t.Fatalf("found %d sts command lines in the docs; the parser lost them", n)
	}
}

func hasFlag(cmd *cobra.Command, name string, short bool) bool {
	if name == "h" || name == "help" {
		return true
	}
	fs := cmd.Flags()
	if short {
		return len(name) == 1 && fs.ShorthandLookup(name) != nil
	}
	return fs.Lookup(name) != nil
}

// TestCLIDocCommandTable: docs/cli.md's "Commands and modes" table names
// every command of the tree, and only commands that exist. "`host-token …`"
// or a bare noun ("`migrate`") stands for the noun and its subcommands.
func TestCLIDocCommandTable(t *testing.T) {
	t.Parallel()
	root := newRoot(io.Discard, io.Discard)
	root.InitDefaultCompletionCmd()
	data, err := os.ReadFile("../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, _ := strings.Cut(string(data), "## Commands and modes\n")
	table, _, _ = strings.Cut(table, "\n## ")
	code := regexp.MustCompile("`([^`]*)`")
	covered := map[string]bool{}
	for _, row := range strings.Split(table, "\n") {
		cells := strings.Split(strings.ReplaceAll(row, `\|`, "/"), "|")
		if len(cells) < 3 {
			continue
		}
		for _, m := range code.FindAllStringSubmatch(cells[1]+cells[2], -1) {
			words := strings.Fields(strings.TrimSuffix(m[1], " …"))
			if len(words) == 0 || strings.HasPrefix(words[0], "-") {
				continue
			}
			noun, _, err := root.Find(words[:1])
			if err != nil || noun == root {
				if strings.Contains(cells[1], m[0]) {
					t.Errorf("docs/cli.md names %q, which is no sts command", m[1])
				}
				continue
			}
			if len(words) == 1 {
				covered[noun.Name()] = true
				continue
			}
			for sub := range strings.SplitSeq(words[1], "/") {
				c, _, err := root.Find([]string{words[0], sub})
				if err != nil || c == noun {
					t.Errorf("docs/cli.md names %q, which is no sts command", words[0]+" "+sub)
					continue
				}
				covered[noun.Name()+" "+sub] = true
			}
		}
	}
	for _, noun := range root.Commands() {
		if noun.Name() == "help" || covered[noun.Name()] {
			continue
		}
		if !noun.HasSubCommands() {
			t.Errorf("docs/cli.md's command table lacks sts %s", noun.Name())
		}
		for _, sub := range noun.Commands() {
			if !covered[noun.Name()+" "+sub.Name()] {
				t.Errorf("docs/cli.md's command table lacks sts %s %s", noun.Name(), sub.Name())
			}
		}
	}
}

// TestOperationsDocRestoreActions: the loop docs/operations.md gives for
// step 5 of a restore looks for exactly the actions sts restore prints.
func TestOperationsDocRestoreActions(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)for a in (.*?); do`).FindSubmatch(data)
	if m == nil {
		t.Fatal("docs/operations.md has no `for a in …; do` loop over the restore's actions")
	}
	got := strings.Fields(strings.ReplaceAll(string(m[1]), `\`, " "))
	if strings.Join(got, " ") != strings.Join(restoreActions, " ") {
		t.Errorf("docs/operations.md's loop looks for\n%v\nsts restore prints\n%v", got, restoreActions)
	}
}
