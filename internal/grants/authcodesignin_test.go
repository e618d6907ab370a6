package grants

import (
	"net/http"
	"testing"
	"time"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
)

// TestAuthorizationCodeRefreshNeedsRecentSignIn (docs/security.md T-140):
// a code brings a refresh token only when its person signed in less than
// SignInWithin (2 h by default) before it was issued; a code of an older
// sign-in, or of one the authorization endpoint could not tell, brings
// the access token alone.
func TestAuthorizationCodeRefreshNeedsRecentSignIn(t *testing.T) {
	m := newMatrixEnv(t)
	var g *AuthorizationCode
	for _, gr := range m.handler.Grants {
		if ac, ok := gr.(*AuthorizationCode); ok {
			g = ac
		}
	}
	c, sec := m.client(t, storage.Client{OrgID: "acme", GrantTypes: []string{oauth2.GrantTypeAuthorizationCode, oauth2.GrantTypeRefreshToken},
		Scopes: []string{"read"}, Audiences: []string{stsIssuer}})
	now := time.Now()
	for _, tc := range []struct {
		name     string
		within   time.Duration
		signedIn time.Time
		refresh  bool
	}{
		{"Recent", 0, now.Add(-time.Hour), true},
		{"OlderThanTheDefault", 0, now.Add(-3 * time.Hour), false},
		{"Unknown", 0, time.Time{}, false},
		{"WithinTheConfiguredBound", 4 * time.Hour, now.Add(-3 * time.Hour), true},
		{"OlderThanTheConfiguredBound", 30 * time.Minute, now.Add(-time.Hour), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g.SignInWithin = tc.within
			status, body := m.postAs(t, c.ID, sec, m.authCodeSignedIn(t, c, "ada", "read", tc.signedIn))
			if status != http.StatusOK || body["access_token"] == nil {
				t.Fatalf("redemption = %d %v, want 200 and an access token", status, body)
			}
			if got := body["refresh_token"] != nil; got != tc.refresh {
				t.Errorf("refresh token %t, want %t", got, tc.refresh)
			}
		})
	}
}
