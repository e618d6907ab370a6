package api

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
)

// syncAuditor stores each gitpod.v1 token event at once (audit.Writer's
// batching is tested in internal/audit), stamped as the writer stamps it.
type syncAuditor struct{ store storage.AuditStore }

func (s syncAuditor) Record(ev storage.AuditEvent) bool {
	return s.Commit(context.Background(), ev) == nil
}

func (s syncAuditor) Commit(ctx context.Context, ev storage.AuditEvent) error {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	if ev.ID == "" {
		ev.ID = storage.NewID()
	}
	return s.store.AppendAudit(ctx, ev)
}

// auditedRPCs names, for every procedure that changes state, discloses a
// secret or issues a token, the audit action its success leaves
// (docs/design.md#audit, docs/api.md). Every other procedure of the
// authorization matrix only reads and leaves no event.
var auditedRPCs = map[string]string{
	"/gitpod.v1.IdentityService/GetIDToken":                                       ActionTokenIDToken,
	"/gitpod.v1.IdentityService/ExchangeToken":                                    ActionTokenExchange,
	"/gitpod.v1.UserService/SetSuspended":                                         ActionPrincipalEnable,
	"/gitpod.v1.UserService/DeleteUser":                                           ActionPrincipalDelete,
	"/gitpod.v1.UserService/CreatePersonalAccessToken":                            "pat.create",
	"/gitpod.v1.UserService/UpdatePersonalAccessToken":                            "pat.update",
	"/gitpod.v1.UserService/RegeneratePersonalAccessToken":                        "pat.regenerate",
	"/gitpod.v1.UserService/DeletePersonalAccessToken":                            "pat.delete",
	"/gitpod.v1.RunnerConfigurationService/CreateHostAuthenticationToken":         "host_token.create",
	"/gitpod.v1.RunnerConfigurationService/UpdateHostAuthenticationToken":         "host_token.update",
	"/gitpod.v1.RunnerConfigurationService/DeleteHostAuthenticationToken":         "host_token.delete",
	"/gitpod.v1.RunnerConfigurationService/UpdateHostAuthenticationTokenMetadata": "host_token.update_metadata",
	"/gitpod.v1.RunnerInteractionService/GetHostAuthenticationTokenValue":         "host_token.read_value",
	"/sts.v1.RunnerKeyService/SetRunnerPublicKey":                                 "runner_key.set",
	"/sts.v1.OrganizationService/CreateOrganization":                              ActionOrganizationCreate,
	"/sts.v1.OrganizationService/UpdateOrganization":                              ActionOrganizationUpdate,
	"/sts.v1.OrganizationService/DeleteOrganization":                              ActionOrganizationDelete,
	"/sts.v1.RevocationService/RevokeSubject":                                     ActionSubjectRevoke,
	"/sts.v1.PrincipalService/CreatePrincipal":                                    ActionPrincipalCreate,
	"/sts.v1.PrincipalService/SetPrincipalDisabled":                               ActionPrincipalEnable,
	"/sts.v1.PrincipalService/DeletePrincipal":                                    ActionPrincipalDelete,
	"/sts.v1.PrincipalService/CreateExchangeToken":                                "exchange_token.create",
	"/sts.v1.ClientService/CreateClient":                                          "client.create",
	"/sts.v1.ClientService/UpdateClient":                                          "client.update",
	"/sts.v1.ClientService/RotateClientSecret":                                    "client.rotate_secret",
	"/sts.v1.ClientService/DeleteClient":                                          "client.delete",
	"/sts.v1.PoolService/CreatePool":                                              "pool.create",
	"/sts.v1.PoolService/UpdatePool":                                              "pool.update",
	"/sts.v1.PoolService/DeletePool":                                              "pool.delete",
	"/sts.v1.PoolService/CreateProvider":                                          "provider.create",
	"/sts.v1.PoolService/UpdateProvider":                                          "provider.update",
	"/sts.v1.PoolService/DeleteProvider":                                          "provider.delete",
	"/sts.v1.KeyService/RotateSigningKey":                                         "signing_key.rotate",
	"/sts.v1.KeyService/RevokeSigningKey":                                         "signing_key.revoke",
}

// TestEveryChangeIsAudited walks every procedure of the authorization
// matrix (so a new RPC cannot be missed: TestAuthorizationMatrixComplete)
// once, as a credential it allows: acme's administrator where one may,
// else the owner, the runner or the instance administrator. Each
// procedure in auditedRPCs leaves an event of its action naming the
// caller, in the organization it changed (acme, the organization itself,
// or none for the signing keys and a subject no principal has), with a
// target, an outcome, the client address and the user agent (docs/api.md
// sts.v1.AuditService; docs/security.md D-14, D-21), and an update's
// detail names the fields it changed; every other leaves none. No event
// carries a secret.
func TestEveryChangeIsAudited(t *testing.T) {
	t.Parallel()
	fx, creds := newMatrixFx(t, newSQLiteStore(t))
	store := fx.e.store
	fx.e.h.SetTokenAudit(syncAuditor{store}, false)
	byName := map[string]cred{}
	for _, c := range creds {
		byName[c.name] = c
	}
	prefer := []string{"org admin PAT (acme)", "PAT *", "runner PAT *", "instance admin PAT (evil)"}
	all := func() []storage.AuditEvent {
		evs, err := store.ListAudit(context.Background(), storage.AuditFilter{Limit: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
	for _, p := range describedProcedures() {
		r := matrix[p]
		var c cred
		for _, n := range prefer {
			if r.rule(byName[n]) == allowed {
				c = byName[n]
				break
			}
		}
		if c.name == "" {
			continue // no credential may call it (nothing is stored)
		}
		req := r.build(fx, c)
		before := len(all())
		if got, msg := fx.call(p, req, c.token); got != allowed {
			t.Errorf("%s as %s: %s %s", p, c.name, got, msg)
			continue
		}
		after := all()
		fresh := after[:len(after)-before] // newest first
		action, audited := auditedRPCs[p]
		if !audited {
			if len(fresh) != 0 {
				t.Errorf("%s only reads, yet left events %+v", p, fresh)
			}
			continue
		}
		checkAuditEvents(t, p, action, fx.acme.ID, "principal:"+c.principal, fresh)
	}
}

var auditKindRE = regexp.MustCompile(`^[a-z_]+$`)

// auditTargetForm reports whether target is kind:id. The ID is never
// another kind:id (pat:principal:<id> was), except a subject's, which is
// the issuer's own string (repo:acme/app:ref:…); a runner key's target
// names the key after a space (principal:<id> key:<fingerprint>).
func auditTargetForm(target string) bool {
	kind, id, ok := strings.Cut(target, ":")
	if !ok || !auditKindRE.MatchString(kind) || id == "" || strings.TrimSpace(id) != id {
		return false
	}
	if kind == "subject" {
		return true
	}
	id, key, hasKey := strings.Cut(id, " ")
	if hasKey && !strings.HasPrefix(key, "key:") {
		return false
	}
	return !strings.Contains(id, ":")
}

// checkAuditEvents checks the events one call of procedure p left.
func checkAuditEvents(t *testing.T, p, action, acme, actor string, fresh []storage.AuditEvent) {
	t.Helper()
	var actions []string
	for _, ev := range fresh {
		for _, pre := range secret.Prefixes {
			if strings.Contains(ev.Target+ev.Detail, string(pre)) {
				t.Errorf("%s: %s event carries a secret (%s…): %+v", p, ev.Action, pre, ev)
			}
		}
		actions = append(actions, ev.Action)
	}
	i := slices.IndexFunc(fresh, func(ev storage.AuditEvent) bool { return ev.Action == action })
	if i < 0 {
		t.Errorf("%s left no %s event (events: %v)", p, action, actions)
		return
	}
	ev := fresh[i]
	wantOrg := acme
	switch {
	case strings.HasPrefix(action, "signing_key."), action == ActionSubjectRevoke:
		wantOrg = "" // instance-level; the matrix revokes a subject that is no principal
	case strings.HasPrefix(action, "organization."):
		wantOrg = strings.TrimPrefix(ev.Target, "organization:")
	}
	if ev.OrgID != wantOrg {
		t.Errorf("%s: %s event in organization %q, want %q", p, action, ev.OrgID, wantOrg)
	}
	// ExchangeToken's actor is the principal the exchange token stands for.
	if ev.Actor != actor && action != ActionTokenExchange {
		t.Errorf("%s: %s event actor %q, want %q", p, action, ev.Actor, actor)
	}
	if ev.Target == "" || ev.Outcome == "" {
		t.Errorf("%s: %s event without target or outcome: %+v", p, action, ev)
	}
	// One form of target for every event: kind:id (docs/api.md
	// "sts.v1.AuditService"), never a bare ID nor pool/<id>.
	if !auditTargetForm(ev.Target) {
		t.Errorf("%s: %s event target %q, want kind:id", p, action, ev.Target)
	}
	// An update names what it changed, as client.update and pool.update
	// always did ("changed name,scopes"): the matrix sets one field each.
	if strings.Contains(action, ".update") && !strings.HasPrefix(ev.Detail, "changed ") {
		t.Errorf("%s: %s event detail %q does not name what changed", p, action, ev.Detail)
	}
	if ev.ClientIP == "" || ev.UserAgent == "" {
		t.Errorf("%s: %s event does not say where the call came from: client address %q, user agent %q", p, action, ev.ClientIP, ev.UserAgent)
	}
}
