package grants

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// TestRefreshRechecks: a refresh token keeps minting only while what its
// issuance checked still holds: the pool and provider exist and are
// enabled, and a pool's bound principal is enabled. A refused refresh
// leaves the family alone, so undoing the change resumes it.
func TestRefreshRechecks(t *testing.T) {
	m := newMatrixEnv(t)
	ctx := t.Context()
	st := m.store
	cases := []struct {
		name          string
		bound         bool
		change, undo  func(pool string) error
		wantRefusedAs string
	}{
		{"pool disabled", false,
			func(p string) error { return setPoolDisabled(ctx, st, p, true) },
			func(p string) error { return setPoolDisabled(ctx, st, p, false) }, "pool_disabled"},
		{"provider disabled", false,
			func(p string) error { return setProviderDisabled(ctx, st, p, true) },
			func(p string) error { return setProviderDisabled(ctx, st, p, false) }, "provider_disabled"},
		{"pool deleted", false,
			func(p string) error { return st.DeletePool(ctx, p) }, nil, "pool_unknown"},
		{"bound principal disabled", true,
			func(p string) error { return setPrincipalDisabled(ctx, st, "bound-"+p, true) },
			func(p string) error { return setPrincipalDisabled(ctx, st, "bound-"+p, false) }, ReasonPrincipalDisabled},
		{"pool bound to a principal since", false,
			func(p string) error {
				if err := st.CreatePrincipal(ctx, storage.Principal{ID: "late-" + p, OrgID: "acme", Kind: storage.PrincipalServiceAccount, Name: "late"}); err != nil {
					return err
				}
				return st.UpdatePool(ctx, p, func(old storage.Pool) (storage.Pool, error) { old.PrincipalID = "late-" + p; return old, nil })
			}, nil, ReasonPoolPrincipal},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pool := fmt.Sprintf("rc%d", i)
			p := storage.Pool{ID: pool, OrgID: "acme", Condition: "true", Scopes: []string{"read", ScopeOfflineAccess}}
			if tc.bound {
				p.PrincipalID = "bound-" + pool
				if err := st.CreatePrincipal(ctx, storage.Principal{ID: p.PrincipalID, OrgID: "acme", Kind: storage.PrincipalServiceAccount, Name: "bound"}); err != nil {
					t.Fatal(err)
				}
			}
			if err := st.CreatePool(ctx, p); err != nil {
				t.Fatal(err)
			}
			if err := st.CreateProvider(ctx, storage.Provider{PoolID: pool, ID: "p", Issuer: m.issuer.URL, Audiences: []string{pool}}); err != nil {
				t.Fatal(err)
			}
			reload(t, m)
			c, sec := m.client(t, storage.Client{OrgID: "acme", GrantTypes: []string{oauth2.GrantTypeTokenExchange, oauth2.GrantTypeRefreshToken},
				Pools: []string{pool}, Scopes: []string{"read", ScopeOfflineAccess}, Audiences: []string{stsIssuer}})
			status, body := m.postAs(t, c.ID, sec, exchangeForm(m.subjectToken(t, pool), "pool", pool, "scope", "read offline_access"))
			rt, _ := body["refresh_token"].(string)
			if status != http.StatusOK || rt == "" {
				t.Fatalf("exchange with offline_access = %d %v", status, body)
			}
			refresh := func() (int, map[string]any) {
				return m.postAs(t, c.ID, sec, url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}})
			}

			if err := tc.change(pool); err != nil {
				t.Fatal(err)
			}
			reload(t, m)
			status, body = refresh()
			if status != http.StatusBadRequest || body["error"] != oauth2.ErrorInvalidGrant || body["reason"] != tc.wantRefusedAs || body["access_token"] != nil {
				t.Fatalf("refresh after %s = %d %v, want invalid_grant/%s and no token", tc.name, status, body, tc.wantRefusedAs)
			}
			if tc.undo == nil {
				return
			}
			if err := tc.undo(pool); err != nil {
				t.Fatal(err)
			}
			reload(t, m)
			if status, body = refresh(); status != http.StatusOK || body["access_token"] == nil {
				t.Errorf("refresh after undoing %s = %d %v, want the family to resume", tc.name, status, body)
			}
		})
	}
}

// reload makes the trust registry read storage again (the server does so
// on every change it makes and on a timer).
func reload(t *testing.T, m *matrixEnv) {
	t.Helper()
	if err := m.grant.Trust.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func setPoolDisabled(ctx context.Context, st storage.Store, id string, off bool) error {
	return st.UpdatePool(ctx, id, func(old storage.Pool) (storage.Pool, error) { old.Disabled = off; return old, nil })
}

func setProviderDisabled(ctx context.Context, st storage.Store, pool string, off bool) error {
	return st.UpdateProvider(ctx, pool, "p", func(old storage.Provider) (storage.Provider, error) { old.Disabled = off; return old, nil })
}

func setPrincipalDisabled(ctx context.Context, st storage.Store, id string, off bool) error {
	return st.UpdatePrincipal(ctx, id, func(old storage.Principal) (storage.Principal, error) { old.Disabled = off; return old, nil })
}

// TestRefreshFamilyOfDeletedPAT: a refresh family whose template names a
// personal access token (a family begun from a token exchanged from a PAT)
// ends with the PAT: once the PAT is deleted the family mints nothing more
// (docs/design.md, "nothing outlives its source").
func TestRefreshFamilyOfDeletedPAT(t *testing.T) {
	m := newMatrixEnv(t)
	ctx := t.Context()
	owner := storage.Principal{ID: storage.NewID(), OrgID: "acme", Kind: storage.PrincipalUser, Name: "ada"}
	if err := m.store.CreatePrincipal(ctx, owner); err != nil {
		t.Fatal(err)
	}
	svc, err := pat.NewService(m.store, []byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	m.ref.Sources = &tokens.StoreSources{Store: m.store} // no cache: the deletion is seen at once
	rec, sec, err := svc.Create(ctx, pat.Caller{Actor: "test"}, pat.CreateInput{OwnerID: owner.ID, Description: "ci",
		Scopes: []string{pat.ScopeFull}, ExpiresAt: time.Now().Add(48 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	au, err := svc.Authenticate(ctx, sec)
	if err != nil {
		t.Fatal(err)
	}
	c, csec := m.client(t, storage.Client{OrgID: "acme", GrantTypes: []string{oauth2.GrantTypeTokenExchange, oauth2.GrantTypeRefreshToken},
		Scopes: []string{"identity:read"}, Audiences: []string{stsIssuer}})
	rt, err := m.ref.Issue(ctx, oauth2.GrantTypeTokenExchange, &c, tokens.AccessClaims{Subject: owner.ID, OrgID: "acme", Principal: string(storage.PrincipalUser),
		Audience: tokens.Audience{stsIssuer}, PATID: rec.ID, PATGeneration: au.Generation}, []string{"identity:read"}, []string{stsIssuer})
	if err != nil {
		t.Fatal(err)
	}
	refresh := url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}}
	status, body := m.postAs(t, c.ID, csec, refresh)
	if status != http.StatusOK {
		t.Fatalf("refresh while the PAT lives = %d %v", status, body)
	}
	refresh.Set("refresh_token", body["refresh_token"].(string))
	if err := svc.Delete(ctx, pat.Caller{Actor: "test"}, owner.ID, rec.ID); err != nil {
		t.Fatal(err)
	}
	status, body = m.postAs(t, c.ID, csec, refresh)
	if status != http.StatusBadRequest || body["error"] != oauth2.ErrorInvalidGrant || body["access_token"] != nil {
		t.Fatalf("refresh after the PAT was deleted = %d %v, want invalid_grant and no token", status, body)
	}
}

// TestRefreshFollowsThePoolsCeilings: a refresh issues no more than the
// family's pool allows now (docs/design.md#lifetimes): no scope taken from
// the pool since (invalid_scope; a narrower request still works), nothing
// once the pool no longer allows offline_access (invalid_grant), and no
// access token longer than the pool's maximum lifetime.
func TestRefreshFollowsThePoolsCeilings(t *testing.T) {
	m := newMatrixEnv(t)
	ctx := t.Context()
	const pool = "ceil"
	if err := m.store.CreatePool(ctx, storage.Pool{ID: pool, OrgID: "acme", Condition: "true", Scopes: []string{"read", "write", ScopeOfflineAccess}}); err != nil {
		t.Fatal(err)
	}
	if err := m.store.CreateProvider(ctx, storage.Provider{PoolID: pool, ID: "p", Issuer: m.issuer.URL, Audiences: []string{pool}}); err != nil {
		t.Fatal(err)
	}
	reload(t, m)
	c, sec := m.client(t, storage.Client{OrgID: "acme", GrantTypes: []string{oauth2.GrantTypeTokenExchange, oauth2.GrantTypeRefreshToken},
		Pools: []string{pool}, Scopes: []string{"read", "write", ScopeOfflineAccess}, Audiences: []string{stsIssuer}})
	status, body := m.postAs(t, c.ID, sec, exchangeForm(m.subjectToken(t, pool), "pool", pool, "scope", "read write offline_access"))
	rt, _ := body["refresh_token"].(string)
	if status != http.StatusOK || rt == "" {
		t.Fatalf("exchange with offline_access = %d %v", status, body)
	}
	refresh := func(scope string) (int, map[string]any) {
		t.Helper()
		form := url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}}
		if scope != "" {
			form.Set("scope", scope)
		}
		status, body := m.postAs(t, c.ID, sec, form)
		if next, _ := body["refresh_token"].(string); next != "" {
			rt = next
		}
		return status, body
	}
	setPool := func(f func(*storage.Pool)) {
		t.Helper()
		if err := m.store.UpdatePool(ctx, pool, func(old storage.Pool) (storage.Pool, error) { f(&old); return old, nil }); err != nil {
			t.Fatal(err)
		}
		reload(t, m)
	}

	setPool(func(p *storage.Pool) { p.MaxTokenLifetime = 2 * time.Minute })
	if status, body := refresh(""); status != http.StatusOK || body["expires_in"].(float64) > 120 {
		t.Errorf("refresh under a pool maximum of 2 min = %d %v, want at most 120 s", status, body)
	}
	setPool(func(p *storage.Pool) { p.Scopes = []string{"read", ScopeOfflineAccess} })
	if status, body := refresh(""); status != http.StatusBadRequest || body["error"] != oauth2.ErrorInvalidScope || body["reason"] != ReasonScopeExceedsPool {
		t.Errorf("refresh of a family holding a scope the pool lost = %d %v, want invalid_scope/%s", status, body, ReasonScopeExceedsPool)
	}
	if status, body := refresh("read offline_access"); status != http.StatusOK || body["scope"] != "read offline_access" {
		t.Errorf("refresh narrowed to what the pool still allows = %d %v, want 200", status, body)
	}
	setPool(func(p *storage.Pool) { p.Scopes = []string{"read", "write"} })
	if status, body := refresh("read"); status != http.StatusBadRequest || body["error"] != oauth2.ErrorInvalidGrant || body["reason"] != ReasonScopeExceedsPool {
		t.Errorf("refresh once the pool no longer allows offline_access = %d %v, want invalid_grant/%s", status, body, ReasonScopeExceedsPool)
	}
	setPool(func(p *storage.Pool) { p.Scopes = []string{"read", "write", ScopeOfflineAccess} })
	if status, body := refresh(""); status != http.StatusOK {
		t.Errorf("refresh once the pool allows it all again = %d %v, want the family to resume", status, body)
	}
}

// TestRefreshFollowsThePoolsAudiences: a family keeps its audience only
// while the exchange would still grant it: an audience taken from the
// family's pool ends the family (invalid_target, audience_not_allowed; a
// refresh cannot change audience), the server's own audiences stay
// allowed through every pool, and giving the audience back resumes the
// family (docs/security.md A-61).
func TestRefreshFollowsThePoolsAudiences(t *testing.T) {
	m := newMatrixEnv(t)
	ctx := t.Context()
	const pool, kafka = "aud", "https://kafka.example"
	if err := m.store.CreatePool(ctx, storage.Pool{ID: pool, OrgID: "acme", Condition: "true", Scopes: []string{"read", ScopeOfflineAccess},
		Audiences: []string{kafka}}); err != nil {
		t.Fatal(err)
	}
	if err := m.store.CreateProvider(ctx, storage.Provider{PoolID: pool, ID: "p", Issuer: m.issuer.URL, Audiences: []string{pool}}); err != nil {
		t.Fatal(err)
	}
	reload(t, m)
	c, sec := m.client(t, storage.Client{OrgID: "acme", GrantTypes: []string{oauth2.GrantTypeTokenExchange, oauth2.GrantTypeRefreshToken},
		Pools: []string{pool}, Scopes: []string{"read", ScopeOfflineAccess}, Audiences: []string{kafka, stsIssuer}})
	family := func(aud string) func() (int, map[string]any) {
		t.Helper()
		status, body := m.postAs(t, c.ID, sec, exchangeForm(m.subjectToken(t, pool), "pool", pool, "scope", "read offline_access", "audience", aud))
		rt, _ := body["refresh_token"].(string)
		if status != http.StatusOK || rt == "" {
			t.Fatalf("exchange for %s with offline_access = %d %v", aud, status, body)
		}
		return func() (int, map[string]any) {
			t.Helper()
			status, body := m.postAs(t, c.ID, sec, url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}})
			if next, _ := body["refresh_token"].(string); next != "" {
				rt = next
			}
			return status, body
		}
	}
	toKafka, toUs := family(kafka), family(stsIssuer)
	setAudiences := func(l ...string) {
		t.Helper()
		if err := m.store.UpdatePool(ctx, pool, func(old storage.Pool) (storage.Pool, error) { old.Audiences = l; return old, nil }); err != nil {
			t.Fatal(err)
		}
		reload(t, m)
	}

	setAudiences("https://elsewhere.example")
	if status, body := toKafka(); status != http.StatusBadRequest || body["error"] != oauth2.ErrorInvalidTarget || body["reason"] != ReasonAudienceNotAllowed || body["access_token"] != nil {
		t.Errorf("refresh of a family for an audience the pool lost = %d %v, want invalid_target/%s", status, body, ReasonAudienceNotAllowed)
	}
	if status, body := toUs(); status != http.StatusOK {
		t.Errorf("refresh of a family for the server's audience = %d %v, want 200", status, body)
	}
	setAudiences(kafka)
	if status, body := toKafka(); status != http.StatusOK {
		t.Errorf("refresh once the pool allows the audience again = %d %v, want the family to resume", status, body)
	}
}

// TestRefreshDelegationCapLowered: the delegation depth cap holds for a
// family's refreshes, not only for the exchange that began it. A family
// begun with a chain of the cap, refreshed after the operator lowered the
// cap, is refused (invalid_grant, delegation_too_deep) rather than minting
// access tokens with the whole chain; the family stays, so raising the cap
// again (to exactly the chain's length) resumes it (docs/security.md
// T-166).
func TestRefreshDelegationCapLowered(t *testing.T) {
	o := newOfflineEnv(t)
	e := o.env
	sc := e.issuer.claims(time.Now(), "u1")
	sc["aud"] = "offline"
	full := map[string]any{"sub": "a1"}
	for i := 2; i <= DefaultMaxDelegationDepth; i++ {
		full = map[string]any{"sub": fmt.Sprintf("a%d", i), "act": full}
	}
	sc["act"] = full
	resp, body := o.post(exchangeForm(e.issuer.mint(t, "RS256", sc), "pool", "offline", "scope", "read offline_access"), true)
	rt, _ := body["refresh_token"].(string)
	if resp.StatusCode != http.StatusOK || rt == "" {
		t.Fatalf("exchange with offline_access = %d %v", resp.StatusCode, body)
	}
	setCap := func(n int) { e.grant.MaxDelegationDepth, e.grant.Refresh.MaxDelegationDepth = n, n }
	refresh := func() (*http.Response, map[string]any) {
		return o.post(url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}}, true)
	}

	setCap(2) // the operator lowers the cap
	resp, body = refresh()
	if resp.StatusCode != http.StatusBadRequest || body["error"] != oauth2.ErrorInvalidGrant || body["reason"] != ReasonDelegationTooDeep || body["access_token"] != nil {
		n := 0
		if tok, ok := body["access_token"].(string); ok {
			for a := accessPayload(t, tok).Act; a != nil; a = a.Act {
				n++
			}
		}
		t.Fatalf("refresh under a cap of 2 = %d %v %v (a chain of %d actors), want 400 invalid_grant %s and no token", resp.StatusCode, body["error"], body["reason"], n, ReasonDelegationTooDeep)
	}

	setCap(DefaultMaxDelegationDepth) // raised again: exactly the chain
	resp, body = refresh()
	tok, _ := body["access_token"].(string)
	if resp.StatusCode != http.StatusOK || tok == "" {
		t.Fatalf("refresh after raising the cap = %d %v, want the family to resume", resp.StatusCode, body)
	}
	n := 0
	for a := accessPayload(t, tok).Act; a != nil; a = a.Act {
		n++
	}
	if n != DefaultMaxDelegationDepth {
		t.Errorf("refreshed token carries a chain of %d actors, want %d", n, DefaultMaxDelegationDepth)
	}
}
