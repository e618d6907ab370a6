package app

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/logbuf"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
)

// TestConfiguredInstanceAdminsWarned (docs/security.md A-76): the
// configuration's instance_admins makes a principal an instance
// administrator with no grant that could refuse, so the start warns for
// each listed principal someone else may hold a credential of (here a
// PAT an organization administrator minted for it), and for an ID that
// names no principal; a principal whose PAT the operator minted (the CLI)
// is not named.
func TestConfiguredInstanceAdminsWarned(t *testing.T) {
	ctx := t.Context()
	st := sqlitetest.NewStore(t)
	now := time.Now()
	if err := st.CreateOrganization(ctx, storage.Organization{ID: "acme", Name: "Acme", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"ops", "own"} {
		if err := st.CreatePrincipal(ctx, storage.Principal{ID: id, OrgID: "acme", Kind: storage.PrincipalUser, Name: id, CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	mint := func(patID, owner, actor string) {
		t.Helper()
		if err := st.CreatePAT(ctx, storage.PAT{ID: patID, OrgID: "acme", OwnerID: owner, Scopes: []string{"*", "sts:admin"},
			Digest: []byte(patID), CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if err := st.AppendAudit(ctx, storage.AuditEvent{ID: storage.NewID(), Time: now, OrgID: "acme", Actor: actor,
			Action: pat.ActionPATCreate, Target: pat.Target(patID), Outcome: "success"}); err != nil {
			t.Fatal(err)
		}
	}
	mint("pat-by-org-admin", "ops", "principal:acme-admin")
	mint("pat-by-cli", "own", "cli")

	var logs logbuf.Buffer
	warnConfiguredInstanceAdmins(ctx, st, []string{"ops", "own", "nobody"}, slog.New(slog.NewTextHandler(&logs, nil)))
	out := logs.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("warnings:\n%s\nwant two: ops's PAT and the unknown ID", out)
	}
	if !strings.Contains(lines[0], "principal=ops") || !strings.Contains(lines[0], "pat-by-org-admin") || !strings.Contains(lines[0], "level=WARN") {
		t.Errorf("first warning %q, want principal ops naming pat-by-org-admin", lines[0])
	}
	if !strings.Contains(lines[1], "principal=nobody") || !strings.Contains(lines[1], "not found") {
		t.Errorf("second warning %q, want the unknown principal", lines[1])
	}
	if strings.Contains(out, "pat-by-cli") {
		t.Errorf("a PAT the operator minted was named:\n%s", out)
	}
}
