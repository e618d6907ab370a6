package grants

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// matrixEnv is the token endpoint with every grant of the server wired
// (client_credentials, refresh_token, token exchange, jwt-bearer) and a
// client authenticator, plus pools "mx" and "mx2" of acme that need a
// client, and an organization globex.
type matrixEnv struct {
	*env
	pepper []byte
	ref    *Refresh
}

func newMatrixEnv(t *testing.T) *matrixEnv { t.Helper(); return newMatrixEnvOn(t, nil) }

// newMatrixEnvOn is newMatrixEnv over store (nil: a fresh SQLite store).
func newMatrixEnvOn(t *testing.T, store storage.Store) *matrixEnv {
	t.Helper()
	e := newEnv(t, store)
	ctx := t.Context()
	if err := e.store.CreateOrganization(ctx, storage.Organization{ID: "globex", Name: "Globex", Tier: "free"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []storage.Principal{
		{ID: "sa", OrgID: "acme", Kind: storage.PrincipalServiceAccount, Name: "sa"},
		{ID: "sa-globex", OrgID: "globex", Kind: storage.PrincipalServiceAccount, Name: "sa"},
		{ID: "ada", OrgID: "acme", Kind: storage.PrincipalUser, Name: "Ada"},
	} {
		if err := e.store.CreatePrincipal(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"mx", "mx2"} {
		if err := e.store.CreatePool(ctx, storage.Pool{ID: id, OrgID: "acme", Condition: "true", Scopes: []string{"read", "write", ScopeOfflineAccess}}); err != nil {
			t.Fatal(err)
		}
		if err := e.store.CreateProvider(ctx, storage.Provider{PoolID: id, ID: "p", Issuer: e.issuer.URL, Audiences: []string{id}}); err != nil {
			t.Fatal(err)
		}
	}
	m := &matrixEnv{env: e, pepper: []byte(strings.Repeat("p", 32))}
	m.ref = &Refresh{Store: e.store, Issuer: e.grant.Issuer, Pepper: m.pepper, Trust: e.grant.Trust, Principals: e.store,
		Audiences: e.grant.ServerAudiences()}
	e.grant.Refresh = m.ref
	e.grant.Principals = e.store
	e.handler.Grants = []Grant{
		&ClientCredentials{Issuer: e.grant.Issuer, Principals: e.store},
		m.ref,
		e.grant,
		&JWTBearer{TokenExchange: e.grant},
		&AuthorizationCode{Store: e.store, Issuer: e.grant.Issuer, Refresh: m.ref, Pepper: m.pepper},
	}
	e.handler.Clients = Clients{Authenticator: &clientauth.Authenticator{Store: e.store, Pepper: m.pepper}, Principals: e.store}
	mux := http.NewServeMux()
	e.handler.Mount(mux)
	e.srv.Config.Handler = mux
	return m
}

// client stores c with a fresh secret and returns the secret.
func (m *matrixEnv) client(t *testing.T, c storage.Client) (storage.Client, string) {
	t.Helper()
	sec := secret.PrefixClientSecret.Generate()
	c.ID, c.AuthMethod, c.SecretDigest = storage.NewID(), oauth2.AuthMethodClientSecretBasic, secret.Digest(m.pepper, sec)
	if c.PrincipalID == "" {
		c.PrincipalID = "sa"
		if c.OrgID == "globex" {
			c.PrincipalID = "sa-globex"
		}
	}
	if err := m.store.CreateClient(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	return c, sec
}

func (m *matrixEnv) postAs(t *testing.T, id, sec string, form url.Values) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, m.srv.URL+PathToken, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		req.SetBasicAuth(id, sec)
	}
	resp, body := do(t, req)
	return resp.StatusCode, body
}

// subjectToken is a fresh token of the test issuer for pool.
func (m *matrixEnv) subjectToken(t *testing.T, pool string) string {
	c := m.issuer.claims(time.Now(), "u-"+storage.NewID())
	c["aud"] = pool
	return m.issuer.mint(t, "RS256", c)
}

// TestClientCheckMatrix enumerates, for every grant registered on the
// handler, the client allowlists: grant type allowed or not, pool listed,
// not listed or list empty, scope within or outside the client's ceiling,
// audience allowed or not, client of the same or another organization.
// A grant registered without request rows fails the test, so a new grant
// cannot skip the client check unnoticed.
func TestClientCheckMatrix(t *testing.T) {
	t.Parallel()
	m := newMatrixEnv(t)
	const aud = "https://api.example"

	// request builds the grant's request for client c asking for scope;
	// the refresh_token row first starts a family for c (org acme, pool
	// mx, scopes read+write, audience aud), as token exchange would.
	request := map[string]func(t *testing.T, c storage.Client, scope string) url.Values{
		oauth2.GrantTypeClientCredentials: func(t *testing.T, c storage.Client, scope string) url.Values {
			return url.Values{"grant_type": {oauth2.GrantTypeClientCredentials}, "scope": {scope}, "audience": {aud}}
		},
		oauth2.GrantTypeTokenExchange: func(t *testing.T, c storage.Client, scope string) url.Values {
			return exchangeForm(m.subjectToken(t, "mx"), "pool", "mx", "scope", scope, "audience", aud)
		},
		oauth2.GrantTypeJWTBearer: func(t *testing.T, c storage.Client, scope string) url.Values {
			return url.Values{"grant_type": {oauth2.GrantTypeJWTBearer}, "assertion": {m.subjectToken(t, "mx")}, "pool": {"mx"}, "scope": {scope}, "audience": {aud}}
		},
		// authorization_code: a code the authorization endpoint would have
		// issued to c for ada of acme with scope, redeemed with PKCE.
		oauth2.GrantTypeAuthorizationCode: func(t *testing.T, c storage.Client, scope string) url.Values {
			return m.authCode(t, c, "ada", scope)
		},
		oauth2.GrantTypeRefreshToken: func(t *testing.T, c storage.Client, scope string) url.Values {
			now := time.Now()
			rt, err := m.ref.Issue(t.Context(), oauth2.GrantTypeTokenExchange, &c, tokens.AccessClaims{Subject: "repo:acme/app", OrgID: "acme", Pool: "mx", Provider: "p",
				IssuedAt: tokens.NewNumericDate(now)}, []string{"read", "write"}, []string{aud})
			if err != nil {
				t.Fatal(err)
			}
			return url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}, "scope": {scope}}
		},
	}

	type want struct {
		status int
		reason string
	}
	ok := want{http.StatusOK, ""}
	poolGrant := func(g string) bool {
		return g != oauth2.GrantTypeClientCredentials && g != oauth2.GrantTypeAuthorizationCode
	}
	rows := []struct {
		name  string
		edit  func(c *storage.Client, grant string)
		scope string
		want  func(grant string) want
	}{
		{"allowed", func(*storage.Client, string) {}, "read", func(string) want { return ok }},
		{"grant type not allowed", func(c *storage.Client, g string) {
			c.GrantTypes = slices.DeleteFunc(slices.Clone(allGrantTypes), func(s string) bool { return s == g })
		}, "read", func(string) want { return want{http.StatusBadRequest, ReasonGrantNotAllowed} }},
		// The refresh_token row's family was begun by token exchange: a
		// client that no longer holds it refreshes none of those families
		// (docs/security.md A-98), as a token-exchange request is refused.
		{"the grant that began the family not allowed", func(c *storage.Client, _ string) {
			c.GrantTypes = slices.DeleteFunc(slices.Clone(c.GrantTypes), func(s string) bool { return s == oauth2.GrantTypeTokenExchange })
		}, "read", func(g string) want {
			if g == oauth2.GrantTypeRefreshToken || g == oauth2.GrantTypeTokenExchange {
				return want{http.StatusBadRequest, ReasonGrantNotAllowed}
			}
			return ok
		}},
		{"pool not listed", func(c *storage.Client, _ string) { c.Pools = []string{"mx2"} }, "read", func(g string) want {
			if poolGrant(g) {
				return want{http.StatusBadRequest, ReasonClientPoolNotAllowed}
			}
			return ok
		}},
		{"pool list empty", func(c *storage.Client, _ string) { c.Pools = nil }, "read", func(g string) want {
			if poolGrant(g) {
				return want{http.StatusBadRequest, ReasonClientPoolNotAllowed}
			}
			return ok
		}},
		{"scope outside the client's ceiling", func(*storage.Client, string) {}, "write", func(string) want {
			return want{http.StatusBadRequest, ReasonScopeExceedsClient}
		}},
		{"scope list empty", func(c *storage.Client, _ string) { c.Scopes = nil }, "read", func(string) want {
			return want{http.StatusBadRequest, ReasonScopeExceedsClient}
		}},
		{"audience not allowed", func(c *storage.Client, _ string) { c.Audiences = []string{"https://other.example"} }, "read", func(g string) want {
			if g == oauth2.GrantTypeAuthorizationCode {
				return ok // asks for no audience: the token is for the client's first
			}
			return want{http.StatusBadRequest, ReasonAudienceNotAllowed}
		}},
		{"audience list empty", func(c *storage.Client, _ string) { c.Audiences = nil }, "read", func(g string) want {
			if g == oauth2.GrantTypeAuthorizationCode {
				return want{http.StatusBadRequest, ReasonAudienceRequired}
			}
			return want{http.StatusBadRequest, ReasonAudienceNotAllowed}
		}},
		{"client of another organization", func(c *storage.Client, _ string) { c.OrgID = "globex" }, "read", func(g string) want {
			if poolGrant(g) {
				return want{http.StatusBadRequest, ReasonClientPoolNotAllowed}
			}
			if g == oauth2.GrantTypeAuthorizationCode {
				// A code for a person of acme held by a client of globex.
				return want{http.StatusBadRequest, ReasonClientOrgMismatch}
			}
			return ok // client_credentials: its own principal, in its own organization
		}},
	}

	seen := map[string]bool{}
	for _, g := range m.handler.Grants {
		grant := g.Type()
		seen[grant] = true
		build := request[grant]
		if build == nil {
			t.Errorf("grant %s is registered but has no rows in the client-check matrix", grant)
			continue
		}
		for _, row := range rows {
			t.Run(grant+"/"+row.name, func(t *testing.T) {
				base := storage.Client{OrgID: "acme", GrantTypes: []string{grant}, Pools: []string{"mx"}, Scopes: []string{"read"}, Audiences: []string{aud}}
				if grant == oauth2.GrantTypeRefreshToken {
					// The family is begun by token exchange, which its
					// client must keep holding (docs/security.md A-98).
					base.GrantTypes = append(base.GrantTypes, oauth2.GrantTypeTokenExchange)
				}
				final := base
				row.edit(&final, grant)
				var c storage.Client
				var sec string
				var form url.Values
				if final.OrgID != base.OrgID {
					// A client never changes organization: create it in
					// globex (for refresh_token, an acme family bound to it,
					// which issuance would not do).
					c, sec = m.client(t, final)
					form = build(t, c, row.scope)
				} else {
					c, sec = m.client(t, base)
					form = build(t, c, row.scope)
					// Narrow the stored client to the row's allowlists after
					// the refresh family (if any) was started.
					if err := m.store.UpdateClient(t.Context(), c.ID, func(old storage.Client) (storage.Client, error) {
						old.GrantTypes, old.Pools, old.Scopes, old.Audiences = final.GrantTypes, final.Pools, final.Scopes, final.Audiences
						return old, nil
					}); err != nil {
						t.Fatal(err)
					}
				}
				status, body := m.postAs(t, c.ID, sec, form)
				w := row.want(grant)
				reason, _ := body["reason"].(string)
				if status != w.status || reason != w.reason {
					t.Errorf("%s with %s = %d %v, want %d %q", grant, row.name, status, body, w.status, w.reason)
				}
				if w.status != http.StatusOK && (body["access_token"] != nil || body["refresh_token"] != nil) {
					t.Errorf("refused, yet a token was issued: %v", body)
				}
			})
		}
	}
	for g := range request {
		if !seen[g] {
			t.Errorf("matrix rows for %s, which the handler does not register", g)
		}
	}
	for _, g := range allGrantTypes {
		if request[g] == nil {
			t.Errorf("grant %s is listed as covered but has no rows", g)
		}
	}
}

// allGrantTypes are the grants with rows in TestClientCheckMatrix; the
// end-to-end test refuses a served grant that is not among them.
var allGrantTypes = []string{oauth2.GrantTypeClientCredentials, oauth2.GrantTypeRefreshToken, oauth2.GrantTypeTokenExchange, oauth2.GrantTypeJWTBearer,
	oauth2.GrantTypeAuthorizationCode}

// authCode stores a code for client c and principal pid with scope, as
// GET /oauth2/authorize issues them (pid signed in a minute ago), and
// returns the redemption form.
func (m *matrixEnv) authCode(t *testing.T, c storage.Client, pid, scope string) url.Values {
	t.Helper()
	return m.authCodeSignedIn(t, c, pid, scope, time.Now().Add(-time.Minute))
}

// authCodeSignedIn is authCode with pid's sign-in at signedIn (zero:
// unknown).
func (m *matrixEnv) authCodeSignedIn(t *testing.T, c storage.Client, pid, scope string, signedIn time.Time) url.Values {
	t.Helper()
	raw := secret.PrefixAuthCode.Generate()
	verifier := strings.Repeat("v", 43)
	now := storage.Now(time.Now())
	if err := m.store.CreateAuthCode(t.Context(), storage.AuthCode{ID: storage.NewID(), Digest: secret.Digest(m.pepper, raw), ClientID: c.ID,
		OrgID: "acme", PrincipalID: pid, RedirectURI: "https://app.example/cb", Challenge: S256(verifier), Scopes: strings.Fields(scope),
		CreatedAt: now, ExpiresAt: now.Add(time.Minute), AuthTime: storage.Now(signedIn)}); err != nil {
		t.Fatal(err)
	}
	return url.Values{"grant_type": {oauth2.GrantTypeAuthorizationCode}, "code": {raw}, "code_verifier": {verifier}, "redirect_uri": {"https://app.example/cb"}}
}

// TestExchangeClientAllowlists is the reproduction: a client allowed only
// client_credentials with scope read got, by token exchange, a write token
// and a refresh token.
func TestExchangeClientAllowlists(t *testing.T) {
	m := newMatrixEnv(t)
	c, sec := m.client(t, storage.Client{OrgID: "acme", GrantTypes: []string{oauth2.GrantTypeClientCredentials}, Pools: []string{"mx"},
		Scopes: []string{"read"}, Audiences: []string{stsIssuer}})
	status, body := m.postAs(t, c.ID, sec, exchangeForm(m.subjectToken(t, "mx"), "pool", "mx", "scope", "write offline_access"))
	if status == http.StatusOK || body["access_token"] != nil || body["refresh_token"] != nil {
		t.Fatalf("client_credentials-only client by token exchange = %d %v, want refused", status, body)
	}

	// Allowed token exchange but not refresh_token: no refresh token.
	c, sec = m.client(t, storage.Client{OrgID: "acme", GrantTypes: []string{oauth2.GrantTypeTokenExchange}, Pools: []string{"mx"},
		Scopes: []string{"read", ScopeOfflineAccess}, Audiences: []string{stsIssuer}})
	status, body = m.postAs(t, c.ID, sec, exchangeForm(m.subjectToken(t, "mx"), "pool", "mx", "scope", "read offline_access"))
	if status != http.StatusBadRequest || body["reason"] != ReasonClientRefreshNotAllowed || body["refresh_token"] != nil {
		t.Errorf("offline_access for a client without refresh_token = %d %v, want %s", status, body, ReasonClientRefreshNotAllowed)
	}

	// No scope requested: the ceiling is the pool's intersected with the
	// client's.
	status, body = m.postAs(t, c.ID, sec, exchangeForm(m.subjectToken(t, "mx"), "pool", "mx"))
	if status != http.StatusOK || body["scope"] != "read" {
		t.Errorf("exchange without scope = %d %v, want scope \"read\" (pool read write offline_access ∩ client read offline_access, minus the refresh the client may not use)", status, body)
	}
}

// TestClientCheckEveryDialect: the Google (/v1/token, /v1/oauthtoken) and
// Confluent (/sts/v1/oauth2/token) endpoints run the same client check:
// a client whose pool list is empty is refused on each, and a client
// allowed the pool passes.
func TestClientCheckEveryDialect(t *testing.T) {
	m := newMatrixEnv(t)
	allowed := storage.Client{OrgID: "acme", GrantTypes: allGrantTypes, Pools: []string{"mx"}, Scopes: []string{"read"}, Audiences: []string{stsIssuer}}
	noPools := allowed
	noPools.Pools = nil
	post := func(path string, c storage.Client, sec string, form url.Values) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, m.srv.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(c.ID, sec)
		resp, body := do(t, req)
		reason, _ := body["reason"].(string)
		if errs, ok := body["errors"].([]any); ok && len(errs) == 1 { // Confluent's shape
			reason, _ = errs[0].(map[string]any)["reason"].(string)
		}
		return resp.StatusCode, reason
	}
	requests := map[string]func(c storage.Client) url.Values{
		PathGoogleToken: func(storage.Client) url.Values {
			return url.Values{"grant_type": {oauth2.GrantTypeTokenExchange}, "subject_token": {m.subjectToken(t, "mx")},
				"subject_token_type": {oauth2.TokenTypeJWT}, "audience": {"//sts.example/pools/mx/providers/p"}, "scope": {"read"}}
		},
		PathConfluentToken: func(storage.Client) url.Values {
			return url.Values{"grant_type": {oauth2.GrantTypeTokenExchange}, "subject_token": {m.subjectToken(t, "mx")},
				"subject_token_type": {oauth2.TokenTypeJWT}, "identity_pool_id": {"mx"}, "scope": {"read"}}
		},
		PathGoogleOAuthToken: func(c storage.Client) url.Values {
			rt, err := m.ref.Issue(t.Context(), oauth2.GrantTypeTokenExchange, &c, tokens.AccessClaims{Subject: "repo:acme/app", OrgID: "acme", Pool: "mx", Provider: "p"},
				[]string{"read"}, []string{stsIssuer})
			if err != nil {
				t.Fatal(err)
			}
			return url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}}
		},
	}
	for path, build := range requests {
		t.Run(path, func(t *testing.T) {
			c, sec := m.client(t, allowed)
			if code, reason := post(path, c, sec, build(c)); code != http.StatusOK {
				t.Errorf("allowed client = %d %s, want 200", code, reason)
			}
			c, sec = m.client(t, noPools)
			if code, reason := post(path, c, sec, build(c)); code != http.StatusBadRequest || reason != ReasonClientPoolNotAllowed {
				t.Errorf("client with an empty pool list = %d %q, want 400 %s", code, reason, ReasonClientPoolNotAllowed)
			}
		})
	}
}

// TestPATExchangeClientCheck: a PAT is its own credential, but a client
// that comes along is checked: a client of another organization than the
// PAT's owner is refused, one of the same organization passes within its
// scopes.
func TestPATExchangeClientCheck(t *testing.T) {
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
	m.grant.PATs = svc
	_, sec, err := svc.Create(ctx, pat.Caller{Actor: "test"}, pat.CreateInput{OwnerID: owner.ID, Description: "ci",
		Scopes: []string{"identity:read"}, ExpiresAt: time.Now().Add(48 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	form := exchangeForm(sec, "scope", "identity:read")
	form.Set("subject_token_type", oauth2.TokenTypePAT)
	for _, tc := range []struct {
		org        string
		wantStatus int
		wantReason string
	}{
		{"acme", http.StatusOK, ""},
		{"globex", http.StatusBadRequest, ReasonClientOrgMismatch},
	} {
		c, csec := m.client(t, storage.Client{OrgID: tc.org, GrantTypes: []string{oauth2.GrantTypeTokenExchange},
			Scopes: []string{"identity:read"}, Audiences: []string{stsIssuer}})
		status, body := m.postAs(t, c.ID, csec, form)
		if reason, _ := body["reason"].(string); status != tc.wantStatus || reason != tc.wantReason {
			t.Errorf("PAT exchange by a client of %s = %d %v, want %d %q", tc.org, status, body, tc.wantStatus, tc.wantReason)
		}
	}
}
