package grants

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// TestRefreshNeedsTheGrantThatBeganTheFamily (docs/security.md A-98): an
// administrator takes token exchange from a client's grant types (the
// client should no longer turn workload tokens into ours), keeping
// refresh_token for its other families. A family the client began by
// token exchange kept refreshing for up to its lifetime, each refresh a
// fresh access token of the exchange the client may no longer make. The
// refresh is refused (unauthorized_client, client_grant_not_allowed) and
// the family left as it was: giving the grant back resumes it.
func TestRefreshNeedsTheGrantThatBeganTheFamily(t *testing.T) {
	const kafka = "https://kafka.example"
	m := newMatrixEnv(t)
	ctx := t.Context()
	familyPool(t, m, kafka)
	c, sec := m.client(t, storage.Client{OrgID: "acme", GrantTypes: []string{oauth2.GrantTypeTokenExchange, oauth2.GrantTypeRefreshToken},
		Pools: []string{"lf"}, Scopes: []string{"read", ScopeOfflineAccess}, Audiences: []string{kafka}})
	status, body := m.postAs(t, c.ID, sec, exchangeForm(m.subjectToken(t, "lf"), "pool", "lf", "scope", "read offline_access", "audience", kafka))
	rt, _ := body["refresh_token"].(string)
	if status != http.StatusOK || rt == "" {
		t.Fatalf("exchange = %d %v", status, body)
	}
	refresh := func() (int, map[string]any) {
		t.Helper()
		status, body := m.postAs(t, c.ID, sec, url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}})
		if next, _ := body["refresh_token"].(string); next != "" {
			rt = next // rotated at /oauth2/token
		}
		return status, body
	}
	setGrants := func(grants ...string) {
		t.Helper()
		if err := m.store.UpdateClient(ctx, c.ID, func(o storage.Client) (storage.Client, error) { o.GrantTypes = grants; return o, nil }); err != nil {
			t.Fatal(err)
		}
	}
	if status, body := refresh(); status != http.StatusOK {
		t.Fatalf("refresh with the grants intact = %d %v", status, body)
	}

	setGrants(oauth2.GrantTypeRefreshToken, oauth2.GrantTypeClientCredentials)
	status, body = refresh()
	if status != http.StatusBadRequest || body["error"] != oauth2.ErrorUnauthorizedClient || body["reason"] != ReasonGrantNotAllowed || body["access_token"] != nil {
		t.Errorf("refresh after token exchange was taken from the client = %d %v, want 400 unauthorized_client %s and no token", status, body, ReasonGrantNotAllowed)
	}

	// Refused, not ended: the family is as it was, and given the grant
	// back the client refreshes it again.
	setGrants(oauth2.GrantTypeTokenExchange, oauth2.GrantTypeRefreshToken)
	if status, body := refresh(); status != http.StatusOK || body["access_token"] == nil {
		t.Errorf("refresh with the grant given back = %d %v, want 200", status, body)
	}
}

// TestRefreshJudgesAFamilyStoredWithoutItsGrant (docs/security.md A-98):
// a family stored before the grant that began it was recorded (no
// fam_grant) is judged by the grant its shape says began it: a person's
// family with no pool, PAT, source or actor by authorization_code, any
// other by token exchange or jwt-bearer, either held. A client that holds
// none of them refreshes neither, and is refused as for a recorded grant.
func TestRefreshJudgesAFamilyStoredWithoutItsGrant(t *testing.T) {
	const kafka = "https://kafka.example"
	m := newMatrixEnv(t)
	ctx := t.Context()
	familyPool(t, m, kafka)
	exchanged := tokens.AccessClaims{Subject: "repo:acme/app", OrgID: "acme", Pool: "lf", Provider: "p"}
	person := tokens.AccessClaims{Subject: "ada", OrgID: "acme", Principal: string(storage.PrincipalUser)}
	for _, tc := range []struct {
		name   string
		claims tokens.AccessClaims
		grants []string
		ok     bool
	}{
		{"exchanged, jwt-bearer held", exchanged, []string{oauth2.GrantTypeJWTBearer}, true},
		{"exchanged, token exchange held", exchanged, []string{oauth2.GrantTypeTokenExchange}, true},
		{"exchanged, neither held", exchanged, []string{oauth2.GrantTypeAuthorizationCode, oauth2.GrantTypeClientCredentials}, false},
		{"a person's, authorization_code held", person, []string{oauth2.GrantTypeAuthorizationCode}, true},
		{"a person's, authorization_code taken", person, []string{oauth2.GrantTypeTokenExchange, oauth2.GrantTypeJWTBearer}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, sec := m.client(t, storage.Client{OrgID: "acme", GrantTypes: append(tc.grants, oauth2.GrantTypeRefreshToken),
				Pools: []string{"lf"}, Scopes: []string{"read", ScopeOfflineAccess}, Audiences: []string{kafka, stsIssuer}})
			claims := tc.claims
			claims.ClientID = c.ID
			// "" records no grant: a family as stored before A-98.
			rt, err := m.ref.issueFamily(ctx, storage.NewID(), "", &c, claims, []string{"read", ScopeOfflineAccess}, []string{kafka}, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			status, body := m.postAs(t, c.ID, sec, url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}})
			switch {
			case tc.ok && status != http.StatusOK:
				t.Errorf("refresh = %d %v, want 200", status, body)
			case !tc.ok && (status != http.StatusBadRequest || body["error"] != oauth2.ErrorUnauthorizedClient || body["reason"] != ReasonGrantNotAllowed || body["access_token"] != nil):
				t.Errorf("refresh = %d %v, want 400 unauthorized_client %s and no token", status, body, ReasonGrantNotAllowed)
			}
		})
	}
}

// familyPool is the pool "lf" (scopes read and offline_access, audience
// aud) with its provider "p" trusting m's issuer, loaded: where the
// families of these tests begin.
func familyPool(t *testing.T, m *matrixEnv, aud string) {
	t.Helper()
	if err := m.store.CreatePool(t.Context(), storage.Pool{ID: "lf", OrgID: "acme", Condition: "true",
		Scopes: []string{"read", ScopeOfflineAccess}, Audiences: []string{aud}}); err != nil {
		t.Fatal(err)
	}
	if err := m.store.CreateProvider(t.Context(), storage.Provider{PoolID: "lf", ID: "p", Issuer: m.issuer.URL, Audiences: []string{"lf"}}); err != nil {
		t.Fatal(err)
	}
	reload(t, m)
}
