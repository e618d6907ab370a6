package grants

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	xoauth2 "golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/ratelimit"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
)

// confluentErr is errors[0] of a Confluent answer.
func confluentErr(t *testing.T, body map[string]any) map[string]any {
	t.Helper()
	errs, _ := body["errors"].([]any)
	if len(errs) != 1 {
		t.Fatalf("body = %v, want one errors entry", body)
	}
	e0, _ := errs[0].(map[string]any)
	return e0
}

// TestConfluentErrorSource: each error names the parameter at fault in
// source.parameter and says what is wrong in detail.
func TestConfluentErrorSource(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "u1"))
	for _, tc := range []struct {
		form            url.Values
		param, inDetail string
	}{
		{exchangeForm(tok, "identity_pool_id", "ci", "expires_in", "901"), "expires_in", "900"},
		{exchangeForm(tok, "identity_pool_id", "ci", "expires_in", "soon"), "expires_in", "expires_in"},
		{exchangeForm(tok), "identity_pool_id", "identity_pool_id"},
		{exchangeForm(tok, "identity_pool_id", "ci", "requested_token_type", "urn:x"), "requested_token_type", "requested_token_type"},
		{exchangeForm("a.b.c", "identity_pool_id", "ci"), "subject_token", "subject_token"},
		{exchangeForm(tok, "identity_pool_id", "ci", "scope", "admin"), "scope", "scope"},
		{exchangeForm(tok, "identity_pool_id", "ci", "audience", "https://nowhere.example"), "audience", "audience"},
		// A pool refused for any cause is named in detail as in source, the
		// same words whatever the cause (docs/security.md T-102).
		{exchangeForm(tok, "identity_pool_id", "pool-nope"), "identity_pool_id", `identity_pool_id 'pool-nope' is unknown or not available`},
		{exchangeForm(tok, "identity_pool_id", "off"), "identity_pool_id", `identity_pool_id 'off' is unknown or not available`},
		{exchangeForm(tok, "identity_pool_id", "locked"), "identity_pool_id", `identity_pool_id 'locked' is unknown or not available`},
	} {
		resp, body := e.post(t, PathConfluentToken, tc.form)
		if resp.StatusCode != 400 {
			t.Errorf("want 400, got %d %v", resp.StatusCode, body)
			continue
		}
		e0 := confluentErr(t, body)
		src, _ := e0["source"].(map[string]any)
		if src["parameter"] != tc.param {
			t.Errorf("source = %v, want parameter %s (%v)", e0["source"], tc.param, e0)
		}
		if d, _ := e0["detail"].(string); !strings.Contains(d, tc.inDetail) {
			t.Errorf("detail = %q, want it to say %q", d, tc.inDetail)
		}
	}
}

// TestConfluentPlainBodies: 405, 415 and 401 on the Confluent path answer
// in the errors[] shape, never plain text; 429's Retry-After and
// X-RateLimit-Reset are the same number, as Confluent documents both.
func TestConfluentPlainBodies(t *testing.T) {
	e := newEnv(t, nil)
	e.handler.Clients = Clients{Authenticator: &clientauth.Authenticator{Store: e.store, Pepper: []byte(strings.Repeat("p", 32))}}
	e.handler.Limits = ratelimit.Limits{PerPool: ratelimit.NewMemory(ratelimit.Rule{Rate: 0.01, Burst: 2}, ratelimit.MemoryOptions{})}
	tok := e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "u1"))

	for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		r, _ := http.NewRequest(method, e.srv.URL+PathConfluentToken, nil)
		resp, body := do(t, r)
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != http.MethodPost || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%s: %d Allow=%q %q", method, resp.StatusCode, resp.Header.Get("Allow"), resp.Header.Get("Content-Type"))
			continue
		}
		if e0 := confluentErr(t, body); e0["status"] != "405" {
			t.Errorf("%s: %v", method, e0)
		}
	}
	r, _ := http.NewRequest(http.MethodPost, e.srv.URL+PathConfluentToken, strings.NewReader(exchangeForm(tok, "identity_pool_id", "ci").Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth("nobody", "wrong")
	resp, body := do(t, r)
	if resp.StatusCode != 401 || confluentErr(t, body)["status"] != "401" {
		t.Errorf("bad client: %d %v", resp.StatusCode, body)
	}

	var limited *http.Response
	for range 4 {
		resp, _ := e.post(t, PathConfluentToken, exchangeForm(tok, "identity_pool_id", "ci"))
		if resp.StatusCode == http.StatusTooManyRequests {
			limited = resp
			break
		}
	}
	if limited == nil {
		t.Fatal("never rate limited")
	}
	if ra, reset := limited.Header.Get("Retry-After"), limited.Header.Get("X-RateLimit-Reset"); ra == "" || ra != reset {
		t.Errorf("Retry-After %q, X-RateLimit-Reset %q: Confluent documents both as the seconds until the window resets", ra, reset)
	}
}

// TestConfluentLifetimeEveryGrant: the Confluent path's 900 s cap holds
// for every grant, as for token exchange (refresh_token:
// TestNamedPoolBindsEveryGrant); client_credentials, whose tokens belong
// to no pool, is refused there, identity_pool_id being required
// (docs/security.md T-143). The judge for client_credentials is
// golang.org/x/oauth2/clientcredentials.
func TestConfluentLifetimeEveryGrant(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	pepper := []byte(strings.Repeat("p", 32))
	sa := storage.Principal{ID: storage.NewID(), OrgID: "acme", Kind: storage.PrincipalServiceAccount, Name: "kafka"}
	if err := e.store.CreatePrincipal(ctx, sa); err != nil {
		t.Fatal(err)
	}
	sec := secret.PrefixClientSecret.Generate()
	client := storage.Client{ID: storage.NewID(), OrgID: "acme", PrincipalID: sa.ID, AuthMethod: oauth2.AuthMethodClientSecretBasic,
		SecretDigest: secret.Digest(pepper, sec), GrantTypes: []string{oauth2.GrantTypeClientCredentials},
		Scopes: []string{"read"}, Audiences: []string{stsIssuer}}
	if err := e.store.CreateClient(ctx, client); err != nil {
		t.Fatal(err)
	}
	e.handler.Clients = Clients{Authenticator: &clientauth.Authenticator{Store: e.store, Pepper: pepper}}
	e.handler.Grants = append(e.handler.Grants, &ClientCredentials{Issuer: e.grant.Issuer, Principals: e.store, Lifetime: time.Hour})
	mux := http.NewServeMux()
	e.handler.Mount(mux)
	e.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "req-test")
		mux.ServeHTTP(w, r)
	})

	cc := func(path string, params url.Values) (*clientcredentialsToken, error) {
		// In the header only: on a refusal x/oauth2's auto-detection would
		// retry with the secret in the body, which a client_secret_basic
		// client may not use, and report that 401 instead.
		conf := clientcredentials.Config{ClientID: client.ID, ClientSecret: sec, TokenURL: e.srv.URL + path,
			Scopes: []string{"read"}, EndpointParams: params, AuthStyle: xoauth2.AuthStyleInHeader}
		tok, err := conf.Token(context.Background())
		if err != nil {
			return nil, err
		}
		return &clientcredentialsToken{access: tok.AccessToken, expiresIn: time.Until(tok.Expiry)}, nil
	}
	// The standard path keeps its own default (here 1 h).
	if tok, err := cc(PathToken, nil); err != nil || tok.expiresIn < 50*time.Minute {
		t.Fatalf("/oauth2/token: %+v %v", tok, err)
	}
	// The Confluent path: identity_pool_id is required, and names a pool
	// a client's own token never belongs to.
	for _, params := range []url.Values{{"identity_pool_id": {"ci"}}, {"identity_pool_id": {"ci"}, "expires_in": {"43200"}}} {
		if tok, err := cc(PathConfluentToken, params); err == nil || !strings.Contains(err.Error(), ReasonPoolNotApplicable) {
			t.Errorf("Confluent client_credentials %v: %+v %v, want %s", params, tok, err, ReasonPoolNotApplicable)
		}
	}
	if tok, err := cc(PathConfluentToken, nil); err == nil || !strings.Contains(err.Error(), ReasonPoolRequired) {
		t.Errorf("Confluent client_credentials without identity_pool_id: %+v %v, want %s", tok, err, ReasonPoolRequired)
	}
}

type clientcredentialsToken struct {
	access    string
	expiresIn time.Duration
}

// TestConfluentErrorSourceEveryConfig: source.parameter names the same
// parameter whether the body carries our reason or not (errors.detail:
// none, serve's default), and a pool refused for any cause, one that
// does not exist, is disabled or admits no anonymous caller, is named
// identity_pool_id alike (docs/api.md "Confluent STS dialect",
// docs/security.md T-102).
func TestConfluentErrorSourceEveryConfig(t *testing.T) {
	for _, omit := range []bool{false, true} {
		e := newEnv(t, nil)
		e.handler.OmitReason = omit
		tok := e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "u1"))
		for _, tc := range []struct {
			name  string
			form  url.Values
			param string
		}{
			{"unknown pool", exchangeForm(tok, "identity_pool_id", "no-such-pool"), "identity_pool_id"},
			{"disabled pool", exchangeForm(tok, "identity_pool_id", "off"), "identity_pool_id"},
			{"pool needing a client", exchangeForm(tok, "identity_pool_id", "locked"), "identity_pool_id"},
			{"actor_token_type unsupported", exchangeForm(tok, "identity_pool_id", "ci", "actor_token", tok, "actor_token_type", "urn:x"), "actor_token_type"},
			{"actor_token without its type", exchangeForm(tok, "identity_pool_id", "ci", "actor_token", tok), "actor_token_type"},
			{"expires_in", exchangeForm(tok, "identity_pool_id", "ci", "expires_in", "901"), "expires_in"},
			{"bad subject token", exchangeForm("a.b.c", "identity_pool_id", "ci"), "subject_token"},
		} {
			resp, body := e.post(t, PathConfluentToken, tc.form)
			if resp.StatusCode != 400 {
				t.Errorf("reason omitted %v, %s: %d %v, want 400", omit, tc.name, resp.StatusCode, body)
				continue
			}
			e0 := confluentErr(t, body)
			if src, _ := e0["source"].(map[string]any); src["parameter"] != tc.param {
				t.Errorf("reason omitted %v, %s: source = %v, want parameter %s (%v)", omit, tc.name, e0["source"], tc.param, e0)
			}
		}
	}
}

// TestNamedPoolBindsTheSubject: a request that names a pool
// (identity_pool_id, pool) is judged at that pool for every subject token
// type. One of our access tokens exchanged through another pool, or a
// PAT, which belongs to no pool, is refused there instead of being
// re-issued as if the named pool had admitted it (docs/api.md "Confluent
// STS dialect", docs/security.md T-113).
func TestNamedPoolBindsTheSubject(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	c := e.issuer.claims(time.Now(), "u1")
	c["aud"] = "twin"
	resp, body := e.post(t, PathToken, exchangeForm(e.issuer.mint(t, "RS256", c), "pool", "twin-a"))
	own, _ := body["access_token"].(string)
	if resp.StatusCode != 200 || own == "" {
		t.Fatalf("exchange at twin-a: %d %v", resp.StatusCode, body)
	}
	owner := storage.Principal{ID: storage.NewID(), OrgID: "acme", Kind: storage.PrincipalUser, Name: "ada"}
	if err := e.store.CreatePrincipal(ctx, owner); err != nil {
		t.Fatal(err)
	}
	svc, err := pat.NewService(e.store, []byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	e.grant.PATs = svc
	_, patSecret, err := svc.Create(ctx, pat.Caller{Actor: "test"}, pat.CreateInput{
		OwnerID: owner.ID, Description: "ci", Scopes: []string{"identity:read"}, ExpiresAt: time.Now().Add(48 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	form := func(tok, typ, param, pool string) url.Values {
		v := exchangeForm(tok, param, pool)
		v.Set("subject_token_type", typ)
		return v
	}
	for _, tc := range []struct {
		name, path string
		form       url.Values
		want       int
	}{
		{"own token of twin-a at identity_pool_id ci", PathConfluentToken, form(own, oauth2.TokenTypeAccessToken, "identity_pool_id", "ci"), 400},
		{"own token of twin-a at an unknown identity_pool_id", PathConfluentToken, form(own, oauth2.TokenTypeAccessToken, "identity_pool_id", "no-such-pool"), 400},
		{"own token of twin-a at pool ci", PathToken, form(own, oauth2.TokenTypeAccessToken, "pool", "ci"), 400},
		{"PAT at identity_pool_id ci", PathConfluentToken, form(patSecret, oauth2.TokenTypePAT, "identity_pool_id", "ci"), 400},
		{"own token of twin-a at its own pool", PathConfluentToken, form(own, oauth2.TokenTypeAccessToken, "identity_pool_id", "twin-a"), 200},
		{"PAT naming no pool", PathToken, form(patSecret, oauth2.TokenTypePAT, "pool", ""), 200},
	} {
		resp, body := e.post(t, tc.path, tc.form)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d %v, want %d", tc.name, resp.StatusCode, body, tc.want)
			continue
		}
		if tc.want == 400 && tc.path == PathConfluentToken {
			if e0 := confluentErr(t, body); e0["reason"] != ReasonSubjectPoolMismatch {
				t.Errorf("%s: %v, want reason %s", tc.name, e0, ReasonSubjectPoolMismatch)
			}
		}
	}
}

// TestConfluentAPIVersionAndKind: Confluent's request names its schema,
// api_version "sts/v1" and kind "TokenExchangeRequest", each optional with
// that default (Confluent's API document, exchange_sts_v1_oauth_token). A
// request naming another version or kind is one the server does not
// understand and is refused with the parameter named in source, as any
// other bad parameter on this path; it was served as if it said sts/v1
// (docs/security.md T-131).
func TestConfluentAPIVersionAndKind(t *testing.T) {
	e := newEnv(t, nil)
	e.handler.OmitReason = true // serve's default: source and detail must tell alone
	tok := func() string { return e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "u1")) }
	for _, tc := range []struct {
		kv    []string
		param string // "": served
	}{
		{nil, ""},
		{[]string{"api_version", "sts/v1", "kind", "TokenExchangeRequest"}, ""},
		{[]string{"api_version", "", "kind", ""}, ""}, // sent without a value: omitted (RFC 6749 §3.1)
		{[]string{"api_version", "sts/v2"}, "api_version"},
		{[]string{"api_version", "STS/V1"}, "api_version"},
		{[]string{"api_version", "iam/v2", "kind", "TokenExchangeRequest"}, "api_version"},
		{[]string{"kind", "TokenExchangeReply"}, "kind"},
		{[]string{"kind", "tokenexchangerequest"}, "kind"},
		{[]string{"api_version", "sts/v1", "kind", "ServiceAccount"}, "kind"},
	} {
		resp, body := e.post(t, PathConfluentToken, exchangeForm(tok(), append([]string{"identity_pool_id", "ci"}, tc.kv...)...))
		if tc.param == "" {
			if resp.StatusCode != 200 {
				t.Errorf("%v: %d %v, want 200", tc.kv, resp.StatusCode, body)
			}
			continue
		}
		if resp.StatusCode != 400 {
			t.Errorf("%v: %d, want 400", tc.kv, resp.StatusCode)
			continue
		}
		e0 := confluentErr(t, body)
		src, _ := e0["source"].(map[string]any)
		if d, _ := e0["detail"].(string); e0["code"] != oauth2.ErrorInvalidRequest || src["parameter"] != tc.param || !strings.HasPrefix(d, tc.param+" ") {
			t.Errorf("%v: %v, want invalid_request with source.parameter and detail naming %s", tc.kv, e0, tc.param)
		}
	}
	// Repeated, each is refused as any repeated parameter (T-06).
	form := exchangeForm(tok(), "identity_pool_id", "ci", "api_version", "sts/v1", "api_version", "sts/v2")
	if resp, _ := e.post(t, PathConfluentToken, form); resp.StatusCode != 400 {
		t.Errorf("api_version twice: %d, want 400", resp.StatusCode)
	}
	// A parameter the path does not know is ignored, sent once or more,
	// and one sent empty next to its value is omitted (T-225, T-227).
	form = exchangeForm(tok(), "identity_pool_id", "ci", "identity_pool_id", "", "kind", "", "kind", "TokenExchangeRequest",
		"extra", "a", "extra", "b")
	if resp, body := e.post(t, PathConfluentToken, form); resp.StatusCode != 200 {
		t.Errorf("extra twice, identity_pool_id and kind also empty: %d %v, want 200", resp.StatusCode, body)
	}
}

// TestConfluentClientRefusalSource: a client of the pool's own
// organization refused by its allowlists (docs/security.md T-102: it gets
// the precise answer) is told which parameter: identity_pool_id for a
// pool not on its list, grant_type for a grant it may not use; the body
// named none. An actor token's pool, which the request does not name, is
// never blamed on identity_pool_id.
func TestConfluentClientRefusalSource(t *testing.T) {
	for _, omit := range []bool{false, true} {
		e := newEnv(t, nil)
		e.handler.OmitReason = omit
		ctx := t.Context()
		pepper := []byte(strings.Repeat("p", 32))
		e.handler.Clients = Clients{Authenticator: &clientauth.Authenticator{Store: e.store, Pepper: pepper}}
		client := func(grants ...string) (storage.Client, string) {
			sec := secret.PrefixClientSecret.Generate()
			c := storage.Client{ID: storage.NewID(), OrgID: "acme", PrincipalID: "sa", AuthMethod: oauth2.AuthMethodClientSecretBasic,
				SecretDigest: secret.Digest(pepper, sec), GrantTypes: grants, Pools: []string{"ci"},
				Scopes: []string{"read"}, Audiences: []string{stsIssuer}}
			if err := e.store.CreateClient(ctx, c); err != nil {
				t.Fatal(err)
			}
			return c, sec
		}
		ciOnly, ciSec := client(oauth2.GrantTypeTokenExchange)
		noGrant, noSec := client("urn:example:none")
		tok := e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "u1"))
		twin := e.issuer.claims(time.Now(), "u2")
		twin["aud"] = "twin"
		twinTok := e.issuer.mint(t, "RS256", twin)
		locked := e.issuer.claims(time.Now(), "u3")
		locked["aud"] = "locked"
		lockedTok := e.issuer.mint(t, "RS256", locked)
		for _, tc := range []struct {
			name, id, sec string
			form          url.Values
			param         string
		}{
			{"pool not on the client's list", ciOnly.ID, ciSec, exchangeForm(twinTok, "identity_pool_id", "twin-a", "scope", "read"), "identity_pool_id"},
			{"grant not allowed", noGrant.ID, noSec, exchangeForm(tok, "identity_pool_id", "ci", "scope", "read"), "grant_type"},
			{"actor's pool not on the client's list", ciOnly.ID, ciSec,
				exchangeForm(tok, "identity_pool_id", "ci", "scope", "read", "actor_token", lockedTok, "actor_token_type", oauth2.TokenTypeJWT), "actor_token"},
		} {
			r, _ := http.NewRequest(http.MethodPost, e.srv.URL+PathConfluentToken, strings.NewReader(tc.form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.SetBasicAuth(tc.id, tc.sec)
			resp, body := do(t, r)
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("reason omitted %v, %s: %d %v, want 400", omit, tc.name, resp.StatusCode, body)
				continue
			}
			e0 := confluentErr(t, body)
			if src, _ := e0["source"].(map[string]any); e0["code"] != oauth2.ErrorUnauthorizedClient || src["parameter"] != tc.param {
				t.Errorf("reason omitted %v, %s: %v, want unauthorized_client naming %s", omit, tc.name, e0, tc.param)
			}
		}
	}
}
