package pools_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/opensts/sts/internal/pools"
	"github.com/opensts/sts/internal/storage"
)

// jwksDoc is an uploaded JWKS document of one fresh P-256 key.
func jwksDoc(t *testing.T) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// revocationOf returns the row id holds and whether there is one.
func revocationOf(t *testing.T, s storage.Store, id string) (storage.Revocation, bool) {
	t.Helper()
	r, err := s.GetRevocation(t.Context(), id)
	if errors.Is(err, storage.ErrNotFound) {
		return r, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return r, true
}

// TestUpdateEndsEarlierTokensOnlyWhenTrustChanges: an update of a pool or
// provider stores the row a deletion leaves exactly when it changes a
// trust-deciding field (docs/security.md A-62), kept as long as a
// deletion's, and its audit event says so; every other change ends
// nothing. Before, no update stored a row.
func TestUpdateEndsEarlierTokensOnlyWhenTrustChanges(t *testing.T) {
	ctx := t.Context()
	svc, st := acmeService(t, pools.Limits{})
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	svc.Now = func() time.Time { return now }
	caller := pools.Caller{Actor: "admin"}
	if err := st.CreateOrganization(ctx, storage.Organization{ID: "globex", Name: "Globex"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"sa", "bot"} {
		if err := st.CreatePrincipal(ctx, storage.Principal{ID: id, OrgID: "acme", Kind: storage.PrincipalServiceAccount, Name: id}); err != nil {
			t.Fatal(err)
		}
	}
	str := func(s string) *string { return &s }
	list := func(s ...string) *[]string { return &s }
	off, lifetime, doc := false, time.Hour, jwksDoc(t)
	n := 0
	// fresh is a new pool with one provider, both with every leniency on.
	fresh := func(principal string) string {
		t.Helper()
		n++
		id := "p" + string(rune('a'+n))
		if _, err := svc.CreatePool(ctx, caller, storage.Pool{ID: id, OrgID: "acme", Condition: "true", Scopes: []string{"read"},
			PrincipalID: principal, Mapping: storage.Mapping{Attributes: map[string]string{"repo": "assertion.repository"}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.CreateProvider(ctx, caller, storage.Provider{PoolID: id, ID: "gh", Issuer: "https://issuer.example",
			JWKSURI: "https://issuer.example/jwks", Audiences: []string{"sts", "old"}, AllowMissingKID: true, AllowMultipleAudiences: true}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	for _, tc := range []struct {
		name      string
		principal string
		pool      *pools.PoolUpdate
		provider  *pools.ProviderUpdate
		ends      string // the event's detail suffix; "" ends nothing
	}{
		{name: "condition", pool: &pools.PoolUpdate{Condition: str(`assertion.repository_owner == "acme"`)}, ends: "(condition)"},
		{name: "identity claim", pool: &pools.PoolUpdate{IdentityClaim: str("assertion.repository")}, ends: "(identity_claim)"},
		{name: "subject mapping", pool: &pools.PoolUpdate{Subject: str(`"gh:" + assertion.sub`)}, ends: "(mapping.subject)"},
		{name: "groups mapping", pool: &pools.PoolUpdate{Groups: str(`["ci"]`)}, ends: "(mapping.groups)"},
		{name: "attribute removed", pool: &pools.PoolUpdate{AttributeEdits: map[string]string{"repo": ""}}, ends: "(mapping.attributes)"},
		{name: "principal rebound", principal: "sa", pool: &pools.PoolUpdate{PrincipalID: str("bot")}, ends: "(principal_id)"},
		{name: "principal unbound", principal: "sa", pool: &pools.PoolUpdate{PrincipalID: str("")}, ends: "(principal_id)"},
		{name: "organization moved", pool: &pools.PoolUpdate{OrgID: str("globex")}, ends: "(organization_id)"},
		{name: "principal bound", pool: &pools.PoolUpdate{PrincipalID: str("bot")}},
		{name: "display name", pool: &pools.PoolUpdate{DisplayName: str("Release pipelines")}},
		{name: "scopes and lifetime", pool: &pools.PoolUpdate{Scopes: list("read", "write"), MaxTokenLifetime: &lifetime}},
		{name: "pool audiences added", pool: &pools.PoolUpdate{Audiences: list("https://api.example")}},
		{name: "pool disabled", pool: &pools.PoolUpdate{Disabled: new(true)}},
		{name: "issuer", provider: &pools.ProviderUpdate{Issuer: str("https://elsewhere.example")}, ends: "(issuer)"},
		{name: "jwks_uri", provider: &pools.ProviderUpdate{JWKSURI: str("https://keys.example/jwks")}, ends: "(jwks_uri)"},
		{name: "audience removed", provider: &pools.ProviderUpdate{Audiences: list("sts", "new")}, ends: "(audiences)"},
		{name: "missing kid refused", provider: &pools.ProviderUpdate{AllowMissingKID: &off}, ends: "(allow_missing_kid)"},
		{name: "several audiences refused", provider: &pools.ProviderUpdate{AllowMultipleAudiences: &off}, ends: "(allow_multiple_audiences)"},
		{name: "audience added", provider: &pools.ProviderUpdate{Audiences: list("sts", "old", "new")}},
		{name: "jwks uploaded", provider: &pools.ProviderUpdate{JWKS: &doc}},
		{name: "algorithms", provider: &pools.ProviderUpdate{Algorithms: list("ES256")}},
		{name: "provider disabled", provider: &pools.ProviderUpdate{Disabled: new(true)}},
	} {
		id := fresh(tc.principal)
		var err error
		row, target := storage.RevocationIDPool(id), "pool:"+id
		if tc.pool != nil {
			_, err = svc.UpdatePool(ctx, caller, id, *tc.pool)
		} else {
			row, target = storage.RevocationIDProvider(id, "gh"), "provider:"+id+"/gh"
			_, err = svc.UpdateProvider(ctx, caller, id, "gh", *tc.provider)
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		r, stored := revocationOf(t, st, row)
		evs, err := st.ListAudit(ctx, storage.AuditFilter{Target: target})
		if err != nil || len(evs) == 0 {
			t.Fatalf("%s: events = %v, %v", tc.name, evs, err)
		}
		detail := evs[0].Detail
		for _, e := range evs {
			if e.Action == pools.ActionPoolUpdate || e.Action == pools.ActionProviderUpdate {
				detail = e.Detail
			}
		}
		if tc.ends == "" {
			if stored {
				t.Errorf("%s: stored %+v; want no row", tc.name, r)
			}
			continue
		}
		keep := 24*time.Hour + time.Minute // the longest family (federation.DefaultMaxTokenAge) plus the default leeway
		if !stored || !r.IssuedBefore.Equal(now) || !r.ExpiresAt.Equal(now.Add(keep)) {
			t.Errorf("%s: row %s = %+v, %v; want one ending what was issued up to %v, kept %v", tc.name, row, r, stored, now, keep)
		}
		if want := "; earlier tokens ended " + tc.ends; len(detail) < len(want) || detail[len(detail)-len(want):] != want {
			t.Errorf("%s: event detail %q, want it to end in %q", tc.name, detail, want)
		}
	}
	// The other provider rows are untouched by a pool's change, and the
	// reverse: "condition" (pb) stored no provider row.
	if _, stored := revocationOf(t, st, storage.RevocationIDProvider("pb", "gh")); stored {
		t.Error("a pool's change stored its provider's row")
	}
}

// TestPoolMoveAuditedInBothOrganizations: an instance administrator's
// move of a pool to another organization ends its tokens and was
// recorded only under the new organization, so the old organization's
// administrators saw the pool created and never saw it leave. The move is
// recorded in both, with the same detail, in the update's transaction
// (docs/design.md#audit).
func TestPoolMoveAuditedInBothOrganizations(t *testing.T) {
	ctx := t.Context()
	svc, st := acmeService(t, pools.Limits{})
	caller := pools.Caller{Actor: "admin"}
	if err := st.CreateOrganization(ctx, storage.Organization{ID: "globex", Name: "Globex"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreatePool(ctx, caller, storage.Pool{ID: "mv", OrgID: "acme", Condition: "true", Scopes: []string{"read"}}); err != nil {
		t.Fatal(err)
	}
	globex := "globex"
	if _, err := svc.UpdatePool(ctx, caller, "mv", pools.PoolUpdate{OrgID: &globex}); err != nil {
		t.Fatal(err)
	}
	updates := func(org string) []storage.AuditEvent {
		evs, err := st.ListAudit(ctx, storage.AuditFilter{OrgID: org, Action: pools.ActionPoolUpdate, Target: "pool:mv"})
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
	old, moved := updates("acme"), updates("globex")
	if len(old) != 1 || len(moved) != 1 {
		t.Fatalf("pool.update events: acme %d, globex %d; want one in each", len(old), len(moved))
	}
	if old[0].Detail != moved[0].Detail || !strings.Contains(old[0].Detail, "organization_id") {
		t.Errorf("details: acme %q, globex %q; want the same, naming organization_id", old[0].Detail, moved[0].Detail)
	}
	// An update that moves nothing is recorded once.
	name := "Moved"
	if _, err := svc.UpdatePool(ctx, caller, "mv", pools.PoolUpdate{DisplayName: &name}); err != nil {
		t.Fatal(err)
	}
	if n, m := len(updates("acme")), len(updates("globex")); n != 1 || m != 2 {
		t.Errorf("after a rename: acme %d, globex %d pool.update events; want 1 and 2", n, m)
	}
}
