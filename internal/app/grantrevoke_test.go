package app

import (
	"encoding/json"
	"net/url"
	"testing"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/tokens"
)

// TestRevokedRefreshFamilyEndsItsAccessTokens: the access tokens a
// refresh-token family minted end with it (RFC 7009 §2.1: revoking a
// refresh token SHOULD also invalidate the access tokens of the same
// grant; docs/security.md A-32), whether the client revokes the family at
// /oauth2/revoke or a reused refresh token revokes it (RFC 9700 §4.14.2).
// Introspection then says inactive at once; another family's tokens, and
// the client's own client_credentials token, stay active.
func TestRevokedRefreshFamilyEndsItsAccessTokens(t *testing.T) {
	t.Parallel()
	e := newOAuthEnv(t)
	issue := func() string { return e.issueRefresh(t) }
	// refresh rotates rt and returns the new access and refresh tokens.
	refresh := func(rt string) (string, string) {
		t.Helper()
		status, _, body := e.post(t, "/oauth2/token", url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}}, e.a.ID, e.secA)
		var m struct {
			AccessToken  string `json:"access_token"`
			RefreshToken string `json:"refresh_token"`
		}
		json.Unmarshal([]byte(body), &m)
		if status != 200 || m.AccessToken == "" || m.RefreshToken == "" {
			t.Fatalf("refresh = %d %s", status, body)
		}
		return m.AccessToken, m.RefreshToken
	}
	active := func(tok string) bool {
		t.Helper()
		return e.introspect(t, tok)["active"] == true
	}

	t.Run("revoked by its client", func(t *testing.T) {
		at1, rt1 := refresh(issue())
		at2, rt2 := refresh(rt1)
		otherAT, _ := refresh(issue())
		cc := e.ccToken(t, e.a, e.secA)
		for _, tok := range []string{at1, at2, otherAT, cc} {
			if !active(tok) {
				t.Fatal("a fresh access token is inactive before any revocation")
			}
		}
		if status, _, body := e.post(t, "/oauth2/revoke", url.Values{"token": {rt2}}, e.a.ID, e.secA); status != 200 {
			t.Fatalf("revoke = %d %s", status, body)
		}
		if active(at1) || active(at2) {
			t.Error("an access token of the revoked family is still active")
		}
		if !active(otherAT) || !active(cc) {
			t.Error("revoking one family ended tokens of another grant")
		}
		e.wantGrantRowKept(t, rt2)
	})

	t.Run("revoked by reuse", func(t *testing.T) {
		rt0 := issue()
		at1, rt1 := refresh(rt0)
		at2, _ := refresh(rt1) // rt1's successor is now in use
		status, _, body := e.post(t, "/oauth2/token", url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt0}}, e.a.ID, e.secA)
		if status != 400 {
			t.Fatalf("reuse of a rotated token = %d %s, want 400", status, body)
		}
		if active(at1) || active(at2) {
			t.Error("an access token of the family a reuse revoked is still active")
		}
		e.wantGrantRowKept(t, rt0)
	})
}

// issueRefresh begins a refresh-token family of client a for its service
// account and returns the refresh token.
func (e *oauthEnv) issueRefresh(t *testing.T) string {
	t.Helper()
	rt, err := e.parts.Refresh.Issue(t.Context(), oauth2.GrantTypeTokenExchange, &e.a, tokens.AccessClaims{Subject: e.a.PrincipalID, OrgID: "org", Principal: "SERVICE_ACCOUNT"}, []string{"read"}, []string{"https://a.example"})
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

// wantGrantRowKept checks that the revocation of rt's family is kept for
// keys.max_token_lifetime plus the leeway: a row gone earlier would let
// the longest-lived of its tokens work again.
func (e *oauthEnv) wantGrantRowKept(t *testing.T, rt string) {
	t.Helper()
	row, err := e.store.GetRefreshTokenByDigest(t.Context(), secret.Digest(e.pepper, rt))
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.store.GetRevocation(t.Context(), tokens.RevocationIDGrant(row.FamilyID))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.ExpiresAt.Sub(r.CreatedAt), testRevocationKeep; got != want {
		t.Errorf("grant revocation kept %v, want keys.max_token_lifetime + leeway = %v", got, want)
	}
}
