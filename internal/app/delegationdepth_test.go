package app_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/opensts/sts/internal/api"
	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/clients"
	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/grants"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
)

// TestDelegationDepthFromConfig: token_exchange.max_delegation_depth caps
// the act chain a served token exchange issues and a refresh family mints
// (docs/security.md T-166). With it at 2, a service's client re-exchanges
// its own token with a person's as the actor twice (chains of 1 and 2,
// each beginning a refresh family) and is refused a third
// (delegation_too_deep), below the built-in default of 5. A second
// server on the same database with the key lowered to 1 refuses that
// family's refresh (invalid_grant, delegation_too_deep); the first, at 2,
// still refreshes it.
func TestDelegationDepthFromConfig(t *testing.T) {
	t.Parallel()
	if config.DefaultMaxDelegationDepth != grants.DefaultMaxDelegationDepth {
		t.Fatalf("config's default cap %d, grants' %d: one default", config.DefaultMaxDelegationDepth, grants.DefaultMaxDelegationDepth)
	}
	if config.DefaultMaxDelegationDepth != api.DefaultMaxDelegationDepth {
		t.Fatalf("config's default cap %d, api's %d: one default (GetIDToken, docs/security.md T-250)", config.DefaultMaxDelegationDepth, api.DefaultMaxDelegationDepth)
	}
	var cfg config.Config
	e := newCodeEnv(t, func(c *config.Config) {
		c.TokenExchange.MaxDelegationDepth = 2
		c.Errors.Detail = config.ErrorDetailReason
		cfg = *c
	})
	ctx := t.Context()
	person := e.tokenFor(t, e.user, "openid")
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
		GrantTypes: []string{oauth2.GrantTypeClientCredentials, oauth2.GrantTypeTokenExchange, oauth2.GrantTypeRefreshToken}, Scopes: []string{"openid", "offline_access"},
		Audiences: []string{e.base, e.conf.Audiences[0]}})
	if err != nil {
		t.Fatal(err)
	}
	st, m := e.token(t, url.Values{"grant_type": {oauth2.GrantTypeClientCredentials}, "scope": {"openid offline_access"}}, c.ID, sec)
	own, _ := m["access_token"].(string)
	if st != http.StatusOK || own == "" {
		t.Fatalf("client_credentials = %d %v", st, m["error"])
	}
	subject, refresh := own, ""
	for depth := 1; depth <= 3; depth++ {
		scope := "openid offline_access" // re-exchange only narrows
		st, m := e.token(t, url.Values{"grant_type": {oauth2.GrantTypeTokenExchange}, "scope": {scope},
			"subject_token": {subject}, "subject_token_type": {oauth2.TokenTypeAccessToken},
			"actor_token": {person.AccessToken}, "actor_token_type": {oauth2.TokenTypeAccessToken}}, c.ID, sec)
		if depth <= 2 {
			next, _ := m["access_token"].(string)
			if st != http.StatusOK || next == "" {
				t.Fatalf("a chain of %d under a cap of 2 = %d %v %v, want issued", depth, st, m["error"], m["reason"])
			}
			subject = next
			if depth == 2 {
				refresh, _ = m["refresh_token"].(string)
			}
			continue
		}
		if st != http.StatusBadRequest || m["reason"] != "delegation_too_deep" {
			t.Errorf("a chain of %d under a cap of 2 = %d %v %v, want 400 delegation_too_deep", depth, st, m["error"], m["reason"])
		}
	}
	if refresh == "" {
		t.Fatal("the chain of 2 with offline_access began no refresh family")
	}
	lowered := cfg
	lowered.Listen = freeAddr(t)
	lowered.IssuerDerived = false // the same issuer: one deployment
	lowered.TokenExchange.MaxDelegationDepth = 1
	startApp(t, lowered)
	other := *e
	other.base = "http://" + lowered.Listen
	form := url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {refresh}}
	if st, m := other.token(t, form, c.ID, sec); st != http.StatusBadRequest || m["error"] != oauth2.ErrorInvalidGrant || m["reason"] != "delegation_too_deep" {
		t.Errorf("refreshing a chain of 2 under a cap lowered to 1 = %d %v %v, want 400 invalid_grant delegation_too_deep", st, m["error"], m["reason"])
	}
	if st, m := e.token(t, form, c.ID, sec); st != http.StatusOK {
		t.Errorf("refreshing a chain of 2 under a cap of 2 = %d %v %v, want it refreshed", st, m["error"], m["reason"])
	}
}
