package app_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	xoauth2 "golang.org/x/oauth2"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/clients"
	"github.com/opensts/sts/internal/config"
	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
)

// TestMaxTokenLifetimeCapsEveryGrant: keys.max_token_lifetime bounds
// every token serve signs, whatever grant or dialect issues it
// (docs/security.md A-40, docs/design.md#lifetimes). Revocation rows
// are kept, and retired keys published, for that long: a longer token
// would outlive both. A requested client_credentials lifetime beyond it
// is refused, not clamped (T-56); a grant's default above it (15 min for
// client_credentials, refresh, authorization_code and ExchangeToken, 1 h
// for GetIDToken) shrinks to it.
func TestMaxTokenLifetimeCapsEveryGrant(t *testing.T) {
	t.Parallel()
	t.Run("RequestedBeyondMax", func(t *testing.T) {
		e := newCodeEnv(t, func(c *config.Config) { c.Keys.MaxTokenLifetime = time.Hour })
		id, sec := e.serviceClient(t, pat.ScopeIdentityRead)
		for _, tc := range []struct {
			expiresIn  string
			wantStatus int
			wantLife   time.Duration
		}{
			{"43200", http.StatusBadRequest, 0},
			{"3601", http.StatusBadRequest, 0},
			{"3600", http.StatusOK, time.Hour},
		} {
			st, m := e.token(t, url.Values{"grant_type": {oauth2.GrantTypeClientCredentials}, "scope": {pat.ScopeIdentityRead},
				"expires_in": {tc.expiresIn}}, id, sec)
			if st != tc.wantStatus {
				t.Errorf("client_credentials expires_in=%s = %d (error %v, expires_in %v), want %d", tc.expiresIn, st, m["error"], m["expires_in"], tc.wantStatus)
				continue
			}
			if st != http.StatusOK {
				if m["error"] != oauth2.ErrorInvalidRequest || m["access_token"] != nil {
					t.Errorf("client_credentials expires_in=%s = error %v (a token: %v), want invalid_request and no token", tc.expiresIn, m["error"], m["access_token"] != nil)
				}
				continue
			}
			if got := lifetimeOf(t, m); got != tc.wantLife {
				t.Errorf("client_credentials expires_in=%s: lifetime %v, want %v", tc.expiresIn, got, tc.wantLife)
			}
		}
	})

	t.Run("DefaultsShrink", func(t *testing.T) {
		const maxLife = 10 * time.Minute
		e := newCodeEnv(t, func(c *config.Config) { c.Keys.MaxTokenLifetime = maxLife })
		ctx := t.Context()
		wantCapped := func(what string, got time.Duration) {
			t.Helper()
			if got != maxLife {
				t.Errorf("%s lives %v, want keys.max_token_lifetime %v", what, got, maxLife)
			}
		}

		id, sec := e.serviceClient(t, pat.ScopeIdentityRead)
		st, m := e.token(t, url.Values{"grant_type": {oauth2.GrantTypeClientCredentials}, "scope": {pat.ScopeIdentityRead}}, id, sec)
		if st != http.StatusOK {
			t.Fatalf("client_credentials = %d %v", st, m)
		}
		wantCapped("client_credentials token", lifetimeOf(t, m))

		// authorization_code, its ID token, and a refresh of its family.
		e.signIn(t, e.user)
		conf := e.oauthConfig(e.conf, e.secret, e.callback.URL+"/cb")
		verifier := xoauth2.GenerateVerifier()
		code := e.approve(t, conf, verifier)
		st, m = e.redeem(t, e.conf, e.secret, url.Values{"code": {code}, "code_verifier": {verifier}, "redirect_uri": {e.callback.URL + "/cb"}})
		if st != http.StatusOK {
			t.Fatalf("authorization_code = %d %v", st, m)
		}
		wantCapped("authorization_code token", lifetimeOf(t, m))
		idTok, _ := m["id_token"].(string)
		wantCapped("authorization_code ID token", jwtLifetime(t, idTok))
		rt, _ := m["refresh_token"].(string)
		if rt == "" {
			t.Fatalf("authorization_code issued no refresh token: %v", m)
		}
		st, m = e.token(t, url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}}, e.conf.ID, e.secret)
		if st != http.StatusOK {
			t.Fatalf("refresh_token = %d %v", st, m)
		}
		wantCapped("refreshed token", lifetimeOf(t, m))

		// gitpod.v1: ExchangeToken's access token, GetIDToken's ID token.
		creds := e.gitpodCredentials(t)
		identity := gitpodv1connect.NewIdentityServiceClient(http.DefaultClient, e.base+"/api")
		xr, err := identity.ExchangeToken(ctx, &gitpodv1.ExchangeTokenRequest{ExchangeToken: creds.exchangeToken(t)})
		if err != nil {
			t.Fatalf("ExchangeToken: %v", err)
		}
		wantCapped("ExchangeToken's access token", jwtLifetime(t, xr.GetAccessToken()))
		ir, err := gitpodv1connect.NewIdentityServiceClient(bearer(creds.pat(t, pat.ScopeIDToken)), e.base+"/api").
			GetIDToken(ctx, &gitpodv1.GetIDTokenRequest{Audience: []string{"https://rp.example"}})
		if err != nil {
			t.Fatalf("GetIDToken: %v", err)
		}
		wantCapped("GetIDToken's ID token", jwtLifetime(t, ir.GetToken()))
	})
}

// TestVerifiersKeepMaxTokenLifetime: every check of our access tokens in
// serve (introspection, the bearer API, re-exchange) refuses a token
// whose lifetime exceeds keys.max_token_lifetime, as re-exchange always
// has: after the maximum is lowered, a token issued under the old one is
// not judged active by one consumer and refused by another
// (docs/security.md A-40). Its revocation row, and its signing key once
// retired, are kept only as long as the new maximum.
func TestVerifiersKeepMaxTokenLifetime(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	stop := startApp(t, cfg)
	e := &codeEnv{base: "http://" + cfg.Listen}
	e.store, e.pepper = openStorage(t, cfg)
	orgs, err := e.store.ListOrganizations(t.Context())
	if err != nil || len(orgs) != 1 {
		t.Fatalf("organizations after the first start = %v, %v", orgs, err)
	}
	e.org = orgs[0].ID
	id, sec := e.serviceClient(t, pat.ScopeIdentityRead)
	st, m := e.token(t, url.Values{"grant_type": {oauth2.GrantTypeClientCredentials}, "scope": {pat.ScopeIdentityRead},
		"expires_in": {"43200"}}, id, sec)
	if st != http.StatusOK {
		t.Fatalf("client_credentials under the default maximum = %d %v", st, m)
	}
	tok := m["access_token"].(string)
	identity := gitpodv1connect.NewIdentityServiceClient(&http.Client{Transport: bearerRT{tok}}, e.base+"/api")
	judge := func() (apiErr error, active bool, reexchange int) {
		t.Helper()
		_, apiErr = identity.GetAuthenticatedIdentity(t.Context(), &gitpodv1.GetAuthenticatedIdentityRequest{})
		_, m := e.token(t, url.Values{"token": {tok}}, id, sec, "/oauth2/introspect")
		reexchange, _ = e.token(t, url.Values{"grant_type": {oauth2.GrantTypeTokenExchange}, "subject_token": {tok},
			"subject_token_type": {oauth2.TokenTypeAccessToken}}, id, sec)
		return apiErr, m["active"] == true, reexchange
	}
	if apiErr, active, _ := judge(); apiErr != nil || !active {
		t.Fatalf("a 12 h token under the default maximum: bearer API %v, introspection active %v; want ok, active", apiErr, active)
	}
	stop()

	cfg.Keys.MaxTokenLifetime = time.Hour
	startApp(t, cfg)
	if apiErr, active, re := judge(); connect.CodeOf(apiErr) != connect.CodeUnauthenticated || active || re != http.StatusBadRequest {
		t.Errorf("a 12 h token under a 1 h maximum: bearer API %v, introspection active %v, re-exchange %d; want unauthenticated, inactive, 400",
			apiErr, active, re)
	}
}

// serviceClient registers a client_credentials and token-exchange
// client for a new service account, whose audience is the issuer (so its
// tokens are accepted by the bearer API), and returns its ID and secret.
func (e *codeEnv) serviceClient(t *testing.T, scopes ...string) (id, secret string) {
	t.Helper()
	now := storage.Now(time.Now())
	sa := storage.Principal{ID: storage.NewID(), OrgID: e.org, Kind: storage.PrincipalServiceAccount, Name: "bot", CreatedAt: now, UpdatedAt: now}
	if err := e.store.CreatePrincipal(t.Context(), sa); err != nil {
		t.Fatal(err)
	}
	svc, err := clients.NewService(e.store, e.pepper)
	if err != nil {
		t.Fatal(err)
	}
	c, sec, err := svc.Create(t.Context(), audit.Caller{Actor: "principal:test"}, clients.CreateInput{OrgID: e.org, PrincipalID: sa.ID,
		GrantTypes: []string{oauth2.GrantTypeClientCredentials, oauth2.GrantTypeTokenExchange}, Scopes: scopes, Audiences: []string{e.base}})
	if err != nil {
		t.Fatal(err)
	}
	return c.ID, sec
}

// token posts form with the client's basic credentials to path
// (/oauth2/token when none is given) and returns the status and JSON body.
func (e *codeEnv) token(t *testing.T, form url.Values, id, secret string, path ...string) (int, map[string]any) {
	t.Helper()
	p := "/oauth2/token"
	if len(path) > 0 {
		p = path[0]
	}
	req, _ := http.NewRequest(http.MethodPost, e.base+p, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	return do(t, req)
}

// lifetimeOf is the lifetime of a token response's access token: its
// exp − iat, which must equal expires_in.
func lifetimeOf(t *testing.T, m map[string]any) time.Duration {
	t.Helper()
	at, _ := m["access_token"].(string)
	life := jwtLifetime(t, at)
	if in, _ := m["expires_in"].(float64); time.Duration(in)*time.Second != life {
		t.Errorf("expires_in %v, but the token lives %v", m["expires_in"], life)
	}
	return life
}

// jwtLifetime is a JWT's exp − iat, read without verifying it.
func jwtLifetime(t *testing.T, jwt string) time.Duration {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Exp, Iat int64 }
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return time.Duration(c.Exp-c.Iat) * time.Second
}
