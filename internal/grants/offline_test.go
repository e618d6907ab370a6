package grants

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// TestExchangeOfflineAccess: token exchange returns a refresh token when
// the pool's ceiling includes offline_access and a client authenticated;
// the family ends when the subject token does (docs/design.md#lifetimes), the refresh
// token works at the refresh_token grant, and without a client the request
// is refused with nothing issued.
func TestExchangeOfflineAccess(t *testing.T) {
	o := newOfflineEnv(t)
	e, ctx, pepper, client, post := o.env, t.Context(), o.pepper, o.client, o.post

	now := time.Now()
	claims := e.issuer.claims(now, "u1")
	claims["aud"] = "offline"
	subjectExp := now.Add(time.Hour)
	form := exchangeForm(e.issuer.mint(t, "RS256", claims), "pool", "offline", "scope", "read offline_access")
	resp, body := post(form, false)
	if resp.StatusCode != 400 || body["error"] != oauth2.ErrorInvalidScope || body["reason"] != ReasonRefreshNeedsClient || body["refresh_token"] != nil {
		t.Errorf("offline_access without a client = %d %v, want invalid_scope and no token", resp.StatusCode, body)
	}

	resp, body = post(form, true)
	rt, _ := body["refresh_token"].(string)
	if resp.StatusCode != 200 || secret.PrefixRefreshToken.Parse(rt) != nil {
		t.Fatalf("offline_access with a client = %d %v, want a refresh token", resp.StatusCode, body)
	}
	row, err := e.store.GetRefreshTokenByDigest(ctx, secret.Digest(pepper, rt))
	if err != nil {
		t.Fatal(err)
	}
	if row.ExpiresAt.After(subjectExp) || row.ClientID != client.ID {
		t.Errorf("refresh family ends %v (subject token ends %v), client %s: must not outlive the subject token", row.ExpiresAt, subjectExp, row.ClientID)
	}
	// The access token belongs to the family: revoking it ends the token
	// too (grant_id, docs/security.md A-32).
	if g := grantID(t, body["access_token"]); g != row.FamilyID {
		t.Errorf("exchanged access token grant_id = %q, want the family %q", g, row.FamilyID)
	}

	resp, body = post(url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}}, true)
	if resp.StatusCode != 200 || body["access_token"] == nil || body["refresh_token"] == rt {
		t.Errorf("refresh of the exchanged family = %d %v, want a rotated pair", resp.StatusCode, body)
	}
	if g := grantID(t, body["access_token"]); g != row.FamilyID {
		t.Errorf("refreshed access token grant_id = %q, want the family %q", g, row.FamilyID)
	}

	// A delegation's family ends with its actor token too: refreshed
	// tokens keep acting for the actor (act), so they must not outlive it.
	ac := e.issuer.claims(now, "bot")
	ac["aud"], ac["exp"] = "offline", now.Add(10*time.Minute).Unix()
	actorExp := time.Unix(ac["exp"].(int64), 0)
	delegated := exchangeForm(e.issuer.mint(t, "RS256", claims), "pool", "offline", "scope", "read offline_access",
		"actor_token", e.issuer.mint(t, "RS256", ac), "actor_token_type", oauth2.TokenTypeJWT)
	resp, body = post(delegated, true)
	rt, _ = body["refresh_token"].(string)
	if resp.StatusCode != 200 || rt == "" {
		t.Fatalf("delegation with offline_access = %d %v", resp.StatusCode, body)
	}
	if row, err = e.store.GetRefreshTokenByDigest(ctx, secret.Digest(pepper, rt)); err != nil {
		t.Fatal(err)
	}
	if row.ExpiresAt.After(actorExp) {
		t.Errorf("delegated refresh family ends %v, after its actor token (%v)", row.ExpiresAt, actorExp)
	}
}

// offlineEnv is newEnv with the pool "offline" (whose ceiling includes
// offline_access, provider audience "offline"), a client of it that may
// exchange and refresh, and the refresh_token grant.
type offlineEnv struct {
	*env
	pepper []byte
	client storage.Client
	secret string
	// post sends form, with the client's credentials when withClient.
	post func(form url.Values, withClient bool) (*http.Response, map[string]any)
}

func newOfflineEnv(t *testing.T) *offlineEnv {
	t.Helper()
	return newOfflineEnvOn(t, nil)
}

// newOfflineEnvOn is newOfflineEnv over store (nil: SQLite).
func newOfflineEnvOn(t *testing.T, store storage.Store) *offlineEnv {
	t.Helper()
	e := newEnv(t, store)
	ctx := t.Context()
	pool := storage.Pool{ID: "offline", OrgID: "acme", Condition: "true", Scopes: []string{"read", ScopeOfflineAccess}, AllowUnauthenticated: true}
	if err := e.store.CreatePool(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateProvider(ctx, storage.Provider{PoolID: "offline", ID: "p", Issuer: e.issuer.URL, Audiences: []string{"offline"}}); err != nil {
		t.Fatal(err)
	}
	pepper := []byte(strings.Repeat("p", 32))
	sec := secret.PrefixClientSecret.Generate()
	client := storage.Client{ID: storage.NewID(), OrgID: "acme", PrincipalID: "sa", AuthMethod: oauth2.AuthMethodClientSecretBasic,
		SecretDigest: secret.Digest(pepper, sec), GrantTypes: []string{oauth2.GrantTypeTokenExchange, oauth2.GrantTypeRefreshToken},
		Pools: []string{"offline"}, Scopes: []string{"read", ScopeOfflineAccess}, Audiences: []string{stsIssuer}}
	if err := e.store.CreateClient(ctx, client); err != nil {
		t.Fatal(err)
	}
	ref := &Refresh{Store: e.store, Issuer: e.grant.Issuer, Pepper: pepper, Trust: e.grant.Trust, Principals: e.store,
		Audiences: e.grant.ServerAudiences()}
	e.grant.Refresh = ref
	e.handler.Grants = append(e.handler.Grants, ref)
	e.handler.Clients = Clients{Authenticator: &clientauth.Authenticator{Store: e.store, Pepper: pepper}}
	mux := http.NewServeMux()
	e.handler.Mount(mux)
	e.srv.Config.Handler = mux
	o := &offlineEnv{env: e, pepper: pepper, client: client, secret: sec}
	o.post = func(form url.Values, withClient bool) (*http.Response, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+PathToken, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if withClient {
			req.SetBasicAuth(client.ID, sec)
		}
		return do(t, req)
	}
	return o
}

// grantID reads the grant_id claim of an access token.
func grantID(t *testing.T, tok any) string {
	t.Helper()
	s, _ := tok.(string)
	return accessPayload(t, s).GrantID
}

// postAt sends form to path on o's server as o's client (HTTP Basic).
func (o *offlineEnv) postAt(t *testing.T, path string, form url.Values) (*http.Response, map[string]any) {
	t.Helper()
	return o.postAs(t, path, o.client.ID, o.secret, form)
}

// postAs sends form to path on o's server as client id with secret sec
// (HTTP Basic).
func (o *offlineEnv) postAs(t *testing.T, path, id, sec string, form url.Values) (*http.Response, map[string]any) {
	t.Helper()
	r, _ := http.NewRequest(http.MethodPost, o.srv.URL+path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth(id, sec)
	return do(t, r)
}

// reExchangeEnv is newOfflineEnv whose verifier judges every token by
// its sources as they are now (no cache: every check reads the client),
// with a second client b, a copy of o's client under its own ID and
// secret, that re-exchanges what o's client (a) was issued.
type reExchangeEnv struct {
	*offlineEnv
	b       storage.Client
	bSecret string
}

func newReExchangeEnv(t *testing.T) *reExchangeEnv {
	t.Helper()
	o := newOfflineEnv(t)
	src := tokens.NewStoreSources(o.store, o.grant.Trust)
	src.TTL, src.Audiences = 0, o.grant.ServerAudiences()
	o.verify.Sources = src
	r := &reExchangeEnv{offlineEnv: o, b: o.client, bSecret: secret.PrefixClientSecret.Generate()}
	r.b.ID, r.b.SecretDigest = storage.NewID(), secret.Digest(o.pepper, r.bSecret)
	if err := o.store.CreateClient(t.Context(), r.b); err != nil {
		t.Fatal(err)
	}
	return r
}

// subjectForm is the exchange, at pool "offline" for scope read, of a
// fresh subject token of sub; kv adds to the form.
func (r *reExchangeEnv) subjectForm(t *testing.T, sub string, kv ...string) url.Values {
	t.Helper()
	c := r.issuer.claims(time.Now(), sub)
	c["aud"] = "offline"
	return exchangeForm(r.issuer.mint(t, "RS256", c), append([]string{"pool", "offline", "scope", "read"}, kv...)...)
}

// first is a's access token from the exchange of u1's subject token.
func (r *reExchangeEnv) first(t *testing.T) string {
	t.Helper()
	resp, body := r.postAt(t, PathToken, r.subjectForm(t, "u1"))
	tok, _ := body["access_token"].(string)
	if resp.StatusCode != http.StatusOK || tok == "" {
		t.Fatalf("exchange by a = %d (error %v)", resp.StatusCode, body["error"])
	}
	return tok
}

// confluentFamily begins a refresh family at the Confluent path through
// pool "offline", from a subject token of u1 that expires in an hour, and
// returns its refresh token.
func (o *offlineEnv) confluentFamily(t *testing.T) string {
	t.Helper()
	c := o.issuer.claims(time.Now(), "u1")
	c["aud"] = "offline"
	resp, body := o.postAt(t, PathConfluentToken, exchangeForm(o.issuer.mint(t, "RS256", c), "identity_pool_id", "offline", "scope", "read offline_access"))
	rt, _ := body["refresh_token"].(string)
	if resp.StatusCode != http.StatusOK || rt == "" {
		t.Fatalf("exchange at pool offline: %d %v", resp.StatusCode, body)
	}
	return rt
}
