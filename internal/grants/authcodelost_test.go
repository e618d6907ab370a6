package grants

import (
	"slices"
	"testing"
	"time"

	xoauth2 "golang.org/x/oauth2"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
)

// TestAuthorizationCodeFamilyWithinTheClientsAudiences (docs/security.md
// T-190): a code covering [api files] is redeemed for api after the client
// lost files. The redemption checked only the narrowed aud, and the family
// began covering both, so its first refresh was refused invalid_target.
// The family now covers what the code covers that the client still has;
// a code of which the client has nothing left is refused invalid_target.
func TestAuthorizationCodeFamilyWithinTheClientsAudiences(t *testing.T) {
	const api, files = "https://api.example", "https://files.example"
	m := newMatrixEnv(t)
	c, sec := m.client(t, storage.Client{OrgID: "acme", GrantTypes: []string{oauth2.GrantTypeAuthorizationCode, oauth2.GrantTypeRefreshToken},
		Scopes: []string{"read"}, Audiences: []string{api, files}})
	verifier, now := "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv", storage.Now(time.Now())
	code := func(resources ...string) string {
		raw := secret.PrefixAuthCode.Generate()
		if err := m.store.CreateAuthCode(t.Context(), storage.AuthCode{ID: storage.NewID(), Digest: secret.Digest(m.pepper, raw), ClientID: c.ID,
			OrgID: "acme", PrincipalID: "ada", RedirectURI: "https://app.example/cb", Challenge: S256(verifier), Scopes: []string{"read"},
			Resources: resources, CreatedAt: now, ExpiresAt: now.Add(time.Minute), AuthTime: now.Add(-time.Minute)}); err != nil {
			t.Fatal(err)
		}
		return raw
	}
	raw, lost := code(api, files), code(files)
	if err := m.store.UpdateClient(t.Context(), c.ID, func(old storage.Client) (storage.Client, error) {
		old.Audiences = []string{api}
		return old, nil
	}); err != nil {
		t.Fatal(err)
	}
	conf := xoauth2.Config{ClientID: c.ID, ClientSecret: sec, RedirectURL: "https://app.example/cb",
		Endpoint: xoauth2.Endpoint{TokenURL: m.srv.URL + PathToken, AuthStyle: xoauth2.AuthStyleInHeader}}
	// A code whose every resource the client lost: invalid_target.
	if tok, err := conf.Exchange(t.Context(), lost, xoauth2.VerifierOption(verifier)); !targetRefused(err, ReasonAudienceNotAllowed) {
		t.Errorf("code covering only the lost %s: %v %v, want invalid_target %s", files, tok, err, ReasonAudienceNotAllowed)
	}
	tok, err := conf.Exchange(t.Context(), raw, xoauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("redeeming a code covering %s and the lost %s: %v", api, files, err)
	}
	if aud := []string(accessPayload(t, tok.AccessToken).Audience); !slices.Equal(aud, []string{api}) || tok.RefreshToken == "" {
		t.Fatalf("aud %v, refresh token %t; want [%s] and a refresh token", aud, tok.RefreshToken != "", api)
	}
	refreshed, err := conf.TokenSource(t.Context(), &xoauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("the family's first refresh: %v", err)
	}
	if aud := []string(accessPayload(t, refreshed.AccessToken).Audience); !slices.Equal(aud, []string{api}) {
		t.Errorf("refreshed aud %v, want [%s]", aud, api)
	}
}
