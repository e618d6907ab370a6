package grants

import (
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
)

// TestRefreshNarrowsTarget (docs/security.md T-183): a refresh at
// /oauth2/token that names audience or resource values gets an access
// token for exactly those (RFC 8707 §2.2), each of which the family
// already covers; one it does not cover is invalid_target and leaves the
// refresh token as it was. The family itself is not narrowed: the next
// refresh without the parameters gets its whole audience again. Before,
// both parameters were ignored and every refresh got the family's whole
// audience, so a client asking for a token for one resource server to
// hand on handed on one good at every other too.
func TestRefreshNarrowsTarget(t *testing.T) {
	const kafka, other = "https://kafka.example", "https://elsewhere.example"
	m := newMatrixEnv(t)
	ctx := t.Context()
	if err := m.store.CreatePool(ctx, storage.Pool{ID: "lf", OrgID: "acme", Condition: "true", Scopes: []string{"read", ScopeOfflineAccess},
		Audiences: []string{kafka, other}}); err != nil {
		t.Fatal(err)
	}
	if err := m.store.CreateProvider(ctx, storage.Provider{PoolID: "lf", ID: "p", Issuer: m.issuer.URL, Audiences: []string{"lf"}}); err != nil {
		t.Fatal(err)
	}
	reload(t, m)
	c, sec := m.client(t, storage.Client{OrgID: "acme", GrantTypes: []string{oauth2.GrantTypeTokenExchange, oauth2.GrantTypeRefreshToken},
		Pools: []string{"lf"}, Scopes: []string{"read", ScopeOfflineAccess}, Audiences: []string{kafka, other, stsIssuer}})
	form := exchangeForm(m.subjectToken(t, "lf"), "pool", "lf", "scope", "read offline_access", "audience", kafka)
	form.Add("audience", other)
	status, body := m.postAs(t, c.ID, sec, form)
	rt, _ := body["refresh_token"].(string)
	if status != http.StatusOK || rt == "" {
		t.Fatalf("exchange = %d %v", status, body)
	}
	refresh := func(name string, kv ...string) (int, map[string]any) {
		t.Helper()
		v := url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return m.postAs(t, c.ID, sec, v)
	}
	issued := func(name string, status int, body map[string]any, want ...string) {
		t.Helper()
		if status != http.StatusOK {
			t.Fatalf("%s: %d %v", name, status, body)
		}
		if aud := accessPayload(t, body["access_token"].(string)).Audience; !slices.Equal([]string(aud), want) {
			t.Errorf("%s: aud %v, want %v", name, aud, want)
		}
		rt, _ = body["refresh_token"].(string)
	}
	refused := func(name string, status int, body map[string]any) {
		t.Helper()
		if status != http.StatusBadRequest || body["error"] != oauth2.ErrorInvalidTarget || body["reason"] != ReasonAudienceWidening {
			t.Errorf("%s: %d %v, want 400 invalid_target %s", name, status, body, ReasonAudienceWidening)
		}
		stored, err := m.store.GetRefreshTokenByDigest(ctx, secret.Digest(m.pepper, rt))
		if err != nil || !stored.RotatedAt.IsZero() || stored.Revoked {
			t.Errorf("%s: the refresh token was spent by a refusal (%v)", name, err)
		}
	}

	s, b := refresh("resource")
	issued("no target", s, b, kafka, other)
	s, b = refresh("resource", "resource", other)
	issued("resource of the family", s, b, other)
	s, b = refresh("no target after a narrowed one")
	issued("no target after a narrowed one", s, b, kafka, other)
	s, b = refresh("audience", "audience", kafka)
	issued("audience of the family", s, b, kafka)
	s, b = refresh("both", "audience", kafka, "resource", other)
	issued("audience and resource of the family", s, b, kafka, other)

	s, b = refresh("resource outside", "resource", "https://outside.example")
	refused("resource outside the family", s, b)
	s, b = refresh("audience of the client, not of the family", "audience", stsIssuer)
	refused("audience of the client, not of the family", s, b)
	s, b = refresh("one inside, one outside", "resource", other, "resource", "https://outside.example")
	refused("one inside, one outside", s, b)
	s, b = refresh("after the refusals")
	issued("after the refusals", s, b, kafka, other)
}
