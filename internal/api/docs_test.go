package api

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// qualifiedProc matches a procedure named with its package and service
// ("sts.v1.KeyService/RotateSigningKey", "gitpod.v1.UserService/*").
var qualifiedProc = regexp.MustCompile(`\b((?:sts|gitpod)\.v1\.[A-Za-z]+)/([A-Za-z]+|\*)`)

// bareMethod matches a method named without its service.
var bareMethod = regexp.MustCompile(`^[A-Z][A-Za-z]+$`)

// authorizationDocProcedures reads the first column of docs/authorization.md's
// Procedures table: "`pkg.Service/Method`", further "`Method`"s of the same
// service, or "`pkg.Service/*`" for all of them. It returns the procedures
// and the services named whole, each with its line.
func authorizationDocProcedures(t *testing.T) (procs, whole map[string]int) {
	t.Helper()
	data, err := os.ReadFile("../../docs/authorization.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(data), "\n## Procedures\n")
	if !ok {
		t.Fatal(`docs/authorization.md has no "## Procedures" section`)
	}
	table, _, _ = strings.Cut(table, "\n## ")
	start := strings.Count(string(data[:strings.Index(string(data), "\n## Procedures\n")+1]), "\n") + 2
	code := regexp.MustCompile("`([^`]*)`")
	procs, whole = map[string]int{}, map[string]int{}
	for i, row := range strings.Split(table, "\n") {
		cells := strings.Split(row, "|")
		if !strings.HasPrefix(row, "| `") || len(cells) < 3 {
			continue
		}
		line, service := start+i, ""
		for _, m := range code.FindAllStringSubmatch(cells[1], -1) {
			if q := qualifiedProc.FindStringSubmatch(m[1]); q != nil && q[0] == m[1] {
				service = q[1]
				if q[2] == "*" {
					whole["/"+service] = line
				} else {
					procs["/"+service+"/"+q[2]] = line
				}
			} else if service != "" && bareMethod.MatchString(m[1]) {
				procs["/"+service+"/"+m[1]] = line
			}
		}
	}
	if len(procs) < 20 {
		t.Fatalf("found %d procedures in docs/authorization.md's Procedures table; the table's shape changed", len(procs))
	}
	return procs, whole
}

// TestProceduresDocumented: every procedure the server describes has its
// row in docs/authorization.md's Procedures table (itself, or its service
// as "Service/*") and is named in docs/api.md, and neither document names
// a procedure that does not exist. A new RPC without documentation, or a
// renamed one, fails here.
func TestProceduresDocumented(t *testing.T) {
	t.Parallel()
	described := describedProcedures()
	if len(described) < 40 {
		t.Fatalf("found %d procedures in the descriptors", len(described))
	}
	apiDoc, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	procs, whole := authorizationDocProcedures(t)
	services := map[string]bool{}
	for _, p := range described {
		service, method := p[:strings.LastIndex(p, "/")], p[strings.LastIndex(p, "/")+1:]
		services[service] = true
		if _, ok := procs[p]; !ok {
			if _, ok := whole[service]; !ok {
				t.Errorf("%s has no row in docs/authorization.md's Procedures table", p)
			}
		}
		if !regexp.MustCompile(`\b` + method + `\b`).Match(apiDoc) {
			t.Errorf("docs/api.md does not name %s", p)
		}
	}
	for p, line := range procs {
		if !slices.Contains(described, p) {
			t.Errorf("docs/authorization.md:%d names %s, which is no procedure", line, p)
		}
	}
	for s, line := range whole {
		if !services[s] {
			t.Errorf("docs/authorization.md:%d names %s/*, which is no service", line, s)
		}
	}
	for _, m := range qualifiedProc.FindAllSubmatch(apiDoc, -1) {
		p := "/" + string(m[1]) + "/" + string(m[2])
		if string(m[2]) != "*" && !slices.Contains(described, p) {
			t.Errorf("docs/api.md names %s, which is no procedure", p[1:])
		}
	}
}
