package app_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	xoauth2 "golang.org/x/oauth2"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/clients"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
)

// TestUserInfoNamesTheActor: the UserInfo answer for a delegated token
// carries its act, as an ID token minted with it does (docs/design.md#id-tokens,
// docs/security.md T-159). A service's client re-exchanges a person's
// token (the browser flow's, with openid) with its own token as the actor:
// the result's sub is the person, its act the service account. UserInfo
// answered it as the person's own, the same answer as for the person's
// token, so a relying party reading it could not tell that a service
// account was acting; and the other way round (the service account as
// subject, the person as actor), as the service account's own.
func TestUserInfoNamesTheActor(t *testing.T) {
	t.Parallel()
	e := newCodeEnv(t)
	ctx := t.Context()
	provider, err := oidc.NewProvider(ctx, e.base)
	if err != nil {
		t.Fatal(err)
	}
	person := e.tokenFor(t, e.user, "openid", "email")
	// The service's client holds the person's token's audience too: a
	// re-exchange keeps the subject token's.
	now := storage.Now(time.Now())
	sa := storage.Principal{ID: storage.NewID(), OrgID: e.org, Kind: storage.PrincipalServiceAccount, Name: "bot", CreatedAt: now, UpdatedAt: now}
	if err := e.store.CreatePrincipal(ctx, sa); err != nil {
		t.Fatal(err)
	}
	svc, err := clients.NewService(e.store, e.pepper)
	if err != nil {
		t.Fatal(err)
	}
	c, sec, err := svc.Create(ctx, audit.Caller{Actor: "principal:test"}, clients.CreateInput{OrgID: e.org, PrincipalID: sa.ID,
		GrantTypes: []string{oauth2.GrantTypeClientCredentials, oauth2.GrantTypeTokenExchange}, Scopes: []string{"openid", "email"},
		Audiences: []string{e.base, e.conf.Audiences[0]}})
	if err != nil {
		t.Fatal(err)
	}
	id := c.ID
	st, m := e.token(t, url.Values{"grant_type": {oauth2.GrantTypeClientCredentials}, "scope": {"openid"}}, id, sec)
	own, _ := m["access_token"].(string)
	if st != http.StatusOK || own == "" {
		t.Fatalf("client_credentials = %d %v", st, m)
	}
	for _, tc := range []struct {
		name                  string
		subject, actor        string
		wantSub, wantActorSub string
	}{
		{"ServiceActingForThePerson", person.AccessToken, own, e.user.ID, sa.ID},
		{"PersonActingForTheService", own, person.AccessToken, sa.ID, e.user.ID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, m := e.token(t, url.Values{"grant_type": {oauth2.GrantTypeTokenExchange}, "scope": {"openid"},
				"subject_token": {tc.subject}, "subject_token_type": {oauth2.TokenTypeAccessToken},
				"actor_token": {tc.actor}, "actor_token_type": {oauth2.TokenTypeAccessToken}}, id, sec)
			delegated, _ := m["access_token"].(string)
			if st != http.StatusOK || delegated == "" {
				t.Fatalf("delegation = %d %v", st, m)
			}
			info, err := provider.UserInfo(ctx, xoauth2.StaticTokenSource(&xoauth2.Token{AccessToken: delegated, TokenType: "Bearer"}))
			if err != nil {
				t.Fatalf("go-oidc UserInfo: %v", err)
			}
			var claims struct {
				Act *struct {
					Sub string `json:"sub"`
				} `json:"act"`
			}
			if err := info.Claims(&claims); err != nil {
				t.Fatal(err)
			}
			if info.Subject != tc.wantSub {
				t.Errorf("sub = %q, want %q", info.Subject, tc.wantSub)
			}
			if claims.Act == nil || claims.Act.Sub != tc.wantActorSub {
				t.Errorf("act = %+v, want the actor %s: the answer reads as the subject's own", claims.Act, tc.wantActorSub)
			}
		})
	}
	// The person's own token still answers without act.
	info, err := provider.UserInfo(ctx, xoauth2.StaticTokenSource(person))
	if err != nil {
		t.Fatal(err)
	}
	var own2 map[string]any
	if err := info.Claims(&own2); err != nil {
		t.Fatal(err)
	}
	if _, ok := own2["act"]; ok || info.Subject != e.user.ID {
		t.Errorf("the person's own token: %v, want their sub and no act", own2)
	}
}
