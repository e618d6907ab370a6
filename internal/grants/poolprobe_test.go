package grants

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
)

// forgedJWT is an unsigned token naming iss and aud: anyone can build it.
func forgedJWT(iss, aud string) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(map[string]any{"alg": "RS256", "kid": "rsa-1", "typ": "JWT"}) + "." +
		enc(map[string]any{"iss": iss, "aud": aud, "sub": "x", "exp": 4102444800}) + "." +
		base64.RawURLEncoding.EncodeToString([]byte("not a signature"))
}

// TestPoolProbing: docs/security.md T-102. Without a valid token, a caller
// that is anonymous or a client of another organization cannot tell a
// pool or provider that does not exist from one that is disabled, needs
// client authentication, or belongs to another organization: every such
// refusal has the same status, code, description (up to the IDs the caller
// sent itself) and headers, on every dialect, with the reason omitted as
// serve omits it. The audit trail keeps the precise reason.
func TestPoolProbing(t *testing.T) {
	e := newEnv(t, nil)
	e.handler.OmitReason = true
	ctx := t.Context()
	for _, o := range []storage.Organization{{ID: "globex", Name: "Globex", Tier: "free"}} {
		if err := e.store.CreateOrganization(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	// "dp": a pool of acme requiring a client, whose provider is disabled;
	// "gx": globex's own pool, so its client is a real one.
	for _, p := range []storage.Pool{
		{ID: "dp", OrgID: "acme", Condition: "true", Scopes: []string{"read"}},
		{ID: "gx", OrgID: "globex", Condition: "true", Scopes: []string{"read"}},
	} {
		if err := e.store.CreatePool(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []storage.Provider{
		{PoolID: "dp", ID: "p", Issuer: e.issuer.URL, Audiences: []string{"dp"}, Disabled: true},
		{PoolID: "gx", ID: "p", Issuer: e.issuer.URL, Audiences: []string{"gx"}},
	} {
		if err := e.store.CreateProvider(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	pepper := []byte(strings.Repeat("p", 32))
	sec := secret.PrefixClientSecret.Generate()
	// A client of globex that even lists acme's pools: it acts within its
	// own organization only.
	globex := storage.Client{ID: storage.NewID(), OrgID: "globex", PrincipalID: "sa", AuthMethod: oauth2.AuthMethodClientSecretBasic,
		SecretDigest: secret.Digest(pepper, sec), GrantTypes: []string{oauth2.GrantTypeTokenExchange},
		Pools: []string{"gx", "locked", "ci", "dp", "off", "nope"}, Scopes: []string{"read"}}
	if err := e.store.CreateClient(ctx, globex); err != nil {
		t.Fatal(err)
	}
	// A client of acme listing only "ci": entitled to know acme's pools.
	acmeSec := secret.PrefixClientSecret.Generate()
	acme := storage.Client{ID: storage.NewID(), OrgID: "acme", PrincipalID: "sa", AuthMethod: oauth2.AuthMethodClientSecretBasic,
		SecretDigest: secret.Digest(pepper, acmeSec), GrantTypes: []string{oauth2.GrantTypeTokenExchange},
		Pools: []string{"ci"}, Scopes: []string{"read"}}
	if err := e.store.CreateClient(ctx, acme); err != nil {
		t.Fatal(err)
	}
	e.handler.Clients = Clients{Authenticator: &clientauth.Authenticator{Store: e.store, Pepper: pepper}}

	// An authenticated client of the pool's own organization is told why.
	t.Run("own organization", func(t *testing.T) {
		post := func(path string, form url.Values) map[string]any {
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(acme.ID, acmeSec)
			_, body := do(t, req)
			return body
		}
		if b := post(PathToken, exchangeForm(forgedJWT(e.issuer.URL, "locked"), "pool", "locked")); b["error"] != oauth2.ErrorUnauthorizedClient {
			t.Errorf("own pool not on the client's list: %v, want unauthorized_client", b)
		}
		if b := post(PathGoogleToken, exchangeForm("garbage", "audience", "pools/dp/providers/p")); b["error"] != oauth2.ErrorInvalidTarget ||
			b["error_description"] != `audience: provider 'p' is not found or disabled in pool 'dp'` {
			t.Errorf("own pool's disabled provider: %v, want the provider named", b)
		}
	})

	send := func(t *testing.T, path string, form url.Values, client bool, ids ...string) probeAnswer {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if client {
			req.SetBasicAuth(globex.ID, sec)
		}
		resp, body := do(t, req)
		a := probeAnswer{status: fmt.Sprint(resp.StatusCode), wwwAuth: resp.Header.Get("WWW-Authenticate")}
		if path == PathConfluentToken {
			e0 := confluentErr(t, body)
			a.code, _ = e0["code"].(string)
			a.desc, _ = e0["detail"].(string)
			src, _ := e0["source"].(map[string]any)
			a.param = fmt.Sprint(src["parameter"])
			a.reason = fmt.Sprint(e0["reason"])
		} else {
			a.code, _ = body["error"].(string)
			a.desc, _ = body["error_description"].(string)
			a.reason = fmt.Sprint(body["reason"])
		}
		if a.reason != "<nil>" {
			t.Errorf("reason %s on the wire with OmitReason", a.reason)
		}
		// The description may echo what the caller sent, nothing else.
		for i, id := range ids {
			a.desc = strings.ReplaceAll(a.desc, "'"+id+"'", fmt.Sprintf("<id%d>", i))
		}
		return a
	}
	google := func(pool, provider string) (url.Values, []string) {
		return exchangeForm("garbage", "audience", "//sts.example/pools/"+pool+"/providers/"+provider), []string{pool, provider}
	}
	named := func(param, pool, aud string) (url.Values, []string) {
		return exchangeForm(forgedJWT(e.issuer.URL, aud), param, pool), []string{pool}
	}
	byIssuer := func(aud string) (url.Values, []string) {
		return exchangeForm(forgedJWT(e.issuer.URL, aud)), nil
	}
	mk := func(name, reason string, f url.Values, ids []string) probe { return probe{name, f, ids, reason} }
	for _, group := range []struct {
		name   string
		path   string
		client bool
		probes []probe
	}{
		{"google anonymous", PathGoogleToken, false, []probe{
			mk("missing pool", "pool_unknown", nil, nil),
			mk("pool requiring a client", "client_auth_required", nil, nil),
			mk("missing provider", "provider_unknown", nil, nil),
			mk("disabled pool", "pool_disabled", nil, nil),
			mk("disabled provider", "provider_disabled", nil, nil),
			mk("another organization's pool", "client_auth_required", nil, nil),
		}},
		{"google other organization", PathGoogleToken, true, []probe{
			mk("missing pool", "pool_unknown", nil, nil),
			mk("pool requiring a client", ReasonClientPoolNotAllowed, nil, nil),
			mk("open pool", ReasonClientPoolNotAllowed, nil, nil),
			mk("missing provider", "provider_unknown", nil, nil),
			mk("disabled pool", "pool_disabled", nil, nil),
			mk("disabled provider", "provider_disabled", nil, nil),
		}},
	} {
		// Fill the Google forms: same shape, other IDs.
		ids := map[string][2]string{
			"missing pool": {"nope", "p"}, "pool requiring a client": {"locked", "p"}, "missing provider": {"locked", "nope"},
			"disabled pool": {"off", "p"}, "disabled provider": {"dp", "p"}, "another organization's pool": {"gx", "p"},
			"open pool": {"ci", "github"},
		}
		for i := range group.probes {
			id := ids[group.probes[i].name]
			group.probes[i].form, group.probes[i].ids = google(id[0], id[1])
		}
		runProbes(t, e, group.name, group.path, group.client, group.probes, send)
	}
	for _, path := range []string{PathToken, PathConfluentToken} {
		for _, client := range []bool{false, true} {
			who := map[bool]string{false: "anonymous", true: "other organization"}[client]
			probes := []probe{
				mk("missing pool", "pool_unknown", nil, nil),
				mk("disabled pool", "pool_disabled", nil, nil),
				mk("pool requiring a client", map[bool]string{false: ReasonClientAuthRequired, true: ReasonClientPoolNotAllowed}[client], nil, nil),
				mk("disabled provider", "provider_disabled", nil, nil),
				mk("another organization's pool", map[bool]string{false: ReasonClientAuthRequired, true: ReasonClientPoolNotAllowed}[client], nil, nil),
			}
			forms := map[string][2]string{
				"missing pool": {"nope", "nope"}, "disabled pool": {"off", "off"}, "pool requiring a client": {"locked", "locked"},
				"disabled provider": {"dp", "dp"}, "another organization's pool": {"gx", "gx"},
			}
			if client {
				probes = append(probes, mk("open pool", ReasonClientPoolNotAllowed, nil, nil))
				forms["open pool"] = [2]string{"ci", "sts"}
				delete(forms, "another organization's pool")
				probes = append(probes[:4], probes[5:]...)
			}
			for i := range probes {
				f := forms[probes[i].name]
				probes[i].form, probes[i].ids = named("identity_pool_id", f[0], f[1])
			}
			dialect := map[string]string{PathToken: "oauth2", PathConfluentToken: "confluent"}[path]
			runProbes(t, e, dialect+" "+who+" pool named", path, client, probes, send)
			if path == PathToken {
				// The pool chosen by the token's unverified iss and aud.
				// A client's candidates are its organization's pools only
				// for globex's none of these audiences is trusted.
				byIss := []probe{
					mk("untrusted audience", "audience_mismatch", nil, nil),
					mk("pool requiring a client", ReasonClientAuthRequired, nil, nil),
					mk("disabled pool", "pool_disabled", nil, nil),
				}
				if client {
					byIss[1].reason, byIss[2].reason = "audience_mismatch", "audience_mismatch"
				}
				for i, aud := range []string{"nope", "locked", "off"} {
					byIss[i].form, byIss[i].ids = byIssuer(aud)
				}
				runProbes(t, e, dialect+" "+who+" pool by issuer", path, client, byIss, send)
			}
		}
	}
}

// probe is one request of TestPoolProbing.
type probe struct {
	name   string
	form   url.Values
	ids    []string // IDs the caller sent, which the description may echo
	reason string   // what the audit trail records
}

// probeAnswer is what a caller sees of a refusal.
type probeAnswer struct{ status, code, desc, param, wwwAuth, reason string }

// runProbes sends each probe and wants one answer for all of them, and
// the precise reason in the audit trail.
func runProbes(t *testing.T, e *env, name, path string, client bool, probes []probe, send func(*testing.T, string, url.Values, bool, ...string) probeAnswer) {
	t.Helper()
	t.Run(name, func(t *testing.T) {
		var first probeAnswer
		var firstName string
		for i, v := range probes {
			before := len(e.audit.all())
			got := send(t, path, v.form, client, v.ids...)
			if i == 0 {
				first, firstName = got, v.name
			} else if got != first {
				t.Errorf("%s answers %+v; %s answers %+v: the difference tells them apart", v.name, got, firstName, first)
			}
			evs := e.audit.all()
			if len(evs) != before+1 {
				t.Errorf("%s: %d audit events, want 1", v.name, len(evs)-before)
				continue
			}
			if d := evs[len(evs)-1].Detail; !strings.Contains(d, `"reason":"`+v.reason+`"`) {
				t.Errorf("%s: audit detail %s, want reason %s", v.name, d, v.reason)
			}
		}
		t.Logf("every probe: %+v", first)
	})
}
