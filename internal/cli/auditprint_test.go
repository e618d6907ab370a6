package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/storage"
)

// TestAuditTableKeepsOneEventPerLine: the audit table prints each event
// on one line whatever its fields hold. An external subject token's sub
// becomes the actor as its issuer wrote it, so an organization
// administrator with an issuer of its own could put a newline, a tab or a
// terminal escape there and forge or hide rows in an instance
// administrator's `sts audit list` (docs/security.md T-101). Control
// characters are printed escaped; the JSON output keeps the exact value.
func TestAuditTableKeepsOneEventPerLine(t *testing.T) {
	t.Parallel()
	forged := "external:https://idp.evil.example#x\n2026-01-02T03:04:06Z  org-a  principal:admin-a  client.delete"
	events := []storage.AuditEvent{
		{ID: "1", Time: time.Unix(1767225600, 0), OrgID: "org-b", Actor: forged, Action: "token.exchange",
			Target: "pool:ci\tshifted", Outcome: "success\x1b[2K\r", Detail: "a\u2028b"},
		{ID: "2", Time: time.Unix(1767225601, 0), OrgID: "org-b", Actor: "principal:p", Action: "client.create", Target: "client:c", Outcome: "success"},
	}
	var out bytes.Buffer
	cmd := &cobra.Command{}
	cmd.SetOut(&out)
	if err := printAudit(cmd, events, false); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	if lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n"); len(lines) != 1+len(events) {
		t.Errorf("%d lines for a header and %d events:\n%s", len(lines), len(events), text)
	}
	if strings.ContainsAny(text, "\x1b\r\t\u2028") {
		t.Errorf("a control character reached the terminal: %q", text)
	}
	if !strings.Contains(text, `\n2026-01-02T03:04:06Z`) {
		t.Errorf("the newline is not shown escaped: %q", text)
	}
}

// TestPrincipalTableKeepsOneRowEach: names and emails are set by an
// organization's administrators and listed by the instance's; a control
// character in them is printed escaped, as in the audit table.
func TestPrincipalTableKeepsOneRowEach(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	cmd := &cobra.Command{}
	cmd.SetOut(&out)
	list := []*stsv1.Principal{{Id: "p1", Name: "eve\nf00  USER  admin", Email: "e@x\x1b]0;owned\x07"}, {Id: "p2", Name: "bob"}}
	if err := printPrincipals(cmd, list, false, false); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	if lines := strings.Count(text, "\n"); lines != 1+len(list) || strings.ContainsAny(text, "\x1b\x07") {
		t.Errorf("the principal table has %d lines for %d principals, or a control character: %q", lines, len(list), text)
	}
}
