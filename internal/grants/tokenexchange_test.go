package grants

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// TestTokenExchange is the one table of POST /oauth2/token with the
// token-exchange grant: success paths and the docs/security.md
// cases of this surface, each named by its number. Every refusal must
// change nothing: no token, no storage row, one "refused" audit event.
func TestTokenExchange(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	now := time.Now()
	iss := e.issuer
	good := func() string { return iss.mint(t, "RS256", iss.claims(now, "u1")) }
	with := func(kv ...any) string {
		c := iss.claims(now, "u1")
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(c, kv[i].(string))
			} else {
				c[kv[i].(string)] = kv[i+1]
			}
		}
		return iss.mint(t, "RS256", c)
	}
	ours := func(scope string, aud ...string) string {
		tok, _, err := e.grant.Issuer.MintAccessToken(t.Context(), tokens.AccessClaims{
			Subject: "repo:acme/app", Audience: aud, Scope: scope, Pool: "ci", Provider: "github", OrgID: "acme",
			Expiry: tokens.NewNumericDate(now.Add(30 * time.Minute)),
		})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	chained := func(depth int) string { // our token already acted on by depth actors
		var act *tokens.Actor
		for i := range depth {
			act = &tokens.Actor{Issuer: iss.URL, Subject: "hop" + string(rune('0'+i)), Act: act}
		}
		tok, _, err := e.grant.Issuer.MintAccessToken(t.Context(), tokens.AccessClaims{
			Subject: "repo:acme/app", Audience: tokens.Audience{stsIssuer}, Scope: "read", Pool: "ci", Provider: "github", OrgID: "acme",
			Act: act, Expiry: tokens.NewNumericDate(now.Add(30 * time.Minute)),
		})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	delegate := func(subject string) url.Values {
		return url.Values{"grant_type": {oauth2.GrantTypeTokenExchange}, "subject_token": {subject}, "subject_token_type": {oauth2.TokenTypeAccessToken},
			"actor_token": {iss.mint(t, "ES256", iss.claims(now, "bot"))}, "actor_token_type": {oauth2.TokenTypeJWT}}
	}
	form := func(v url.Values) func() *http.Request {
		return func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, e.srv.URL+PathToken, strings.NewReader(v.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}
	}
	raw := func(method, path, ctype, body string) func() *http.Request {
		return func() *http.Request {
			r, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
			if ctype != "" {
				r.Header.Set("Content-Type", ctype)
			}
			return r
		}
	}
	alg := func(a string) string { // header alg a with a garbage signature
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"` + a + `","kid":"rsa-1","typ":"JWT"}`))
		p, _ := json.Marshal(iss.claims(now, "u1"))
		return h + "." + base64.RawURLEncoding.EncodeToString(p) + ".c2ln"
	}

	tests := []struct {
		name       string
		req        func() *http.Request
		wantStatus int
		wantError  string
		wantReason string
		wantClaims map[string]any // subset of the issued token's claims
		wantBody   map[string]any // subset of the response body
	}{
		{name: "RS256 subject, defaults", req: form(exchangeForm(good())), wantStatus: 200,
			wantClaims: map[string]any{"sub": "repo:acme/app", "pool": "ci", "provider": "github", "aud": stsIssuer,
				"scope": "read write", "org_id": "acme", "attributes": map[string]any{"repo": "acme/app"},
				"src": map[string]any{"iss": iss.URL, "sub": "u1"}, "client_id": "pools/ci/providers/github"},
			wantBody: map[string]any{"issued_token_type": oauth2.TokenTypeAccessToken, "token_type": "Bearer",
				"expires_in": float64(900), "scope": "read write"}},
		{name: "ES256 subject, named pool, scope and audience",
			req:        form(exchangeForm(iss.mint(t, "ES256", iss.claims(now, "u2")), "identity_pool_id", "ci", "scope", "read", "audience", "https://api.example")),
			wantStatus: 200, wantClaims: map[string]any{"scope": "read", "aud": "https://api.example"},
			wantBody: map[string]any{"expires_in": float64(900)}},
		{name: "T-06 audience and resource repeat as a set",
			req:        form(exchangeForm(good(), "audience", "https://api.example", "audience", "https://api.example", "resource", "https://other.example")),
			wantStatus: 200, wantClaims: map[string]any{"aud": []any{"https://api.example", "https://other.example"}}},
		// The JWT is our access token, used as a bearer token
		// (RFC 8693 §2.2.1: N_A only for what is not usable as one).
		{name: "requested jwt is a Bearer token", req: form(exchangeForm(good(), "requested_token_type", oauth2.TokenTypeJWT)), wantStatus: 200,
			wantClaims: map[string]any{"sub": "repo:acme/app", "scope": "read write"},
			wantBody:   map[string]any{"issued_token_type": oauth2.TokenTypeJWT, "token_type": "Bearer"}},
		{name: "requested access_token is a Bearer token", req: form(exchangeForm(good(), "requested_token_type", oauth2.TokenTypeAccessToken)), wantStatus: 200,
			wantBody: map[string]any{"issued_token_type": oauth2.TokenTypeAccessToken, "token_type": "Bearer"}},
		{name: "T-53 requested id_token", req: form(exchangeForm(good(), "requested_token_type", oauth2.TokenTypeIDToken)), wantStatus: 400, wantError: "invalid_request", wantReason: ReasonRequestedTypeUnsupp},
		{name: "explicit lifetime within both caps", req: form(exchangeForm(good(), "expires_in", "1800")), wantStatus: 200,
			wantBody: map[string]any{"expires_in": float64(1800)}},
		{name: "default lifetime capped by subject exp", req: form(exchangeForm(with("exp", now.Add(5*time.Minute).Unix()))), wantStatus: 200},
		{name: "actor token nests act", req: form(exchangeForm(good(), "actor_token", iss.mint(t, "ES256", iss.claims(now, "bot")), "actor_token_type", oauth2.TokenTypeJWT)),
			wantStatus: 200, wantClaims: map[string]any{"act": map[string]any{"iss": iss.URL, "sub": "bot"}}},
		{name: "may_act admits the actor", req: form(exchangeForm(with("may_act", map[string]any{"sub": "bot"}), "actor_token", iss.mint(t, "ES256", iss.claims(now, "bot")), "actor_token_type", oauth2.TokenTypeJWT)),
			wantStatus: 200},
		{name: "T-54 own token narrowed", req: form(url.Values{"grant_type": {oauth2.GrantTypeTokenExchange}, "subject_token": {ours("read write", "https://api.example", "https://other.example")},
			"subject_token_type": {oauth2.TokenTypeAccessToken}, "scope": {"read"}, "audience": {"https://api.example"}}),
			wantStatus: 200, wantClaims: map[string]any{"scope": "read", "aud": "https://api.example", "sub": "repo:acme/app"}},

		{name: "delegation chain of 5 nests", req: form(delegate(chained(4))), wantStatus: 200,
			wantClaims: map[string]any{"act": map[string]any{"iss": iss.URL, "sub": "bot", "act": map[string]any{"iss": iss.URL, "sub": "hop3",
				"act": map[string]any{"iss": iss.URL, "sub": "hop2", "act": map[string]any{"iss": iss.URL, "sub": "hop1", "act": map[string]any{"iss": iss.URL, "sub": "hop0"}}}}}}},
		{name: "T-51 delegation chain over the cap", req: form(delegate(chained(5))), wantStatus: 400, wantError: "invalid_request", wantReason: ReasonDelegationTooDeep},

		// T-01–T-10: request shape and size.
		{name: "T-01 body over 64 KiB", req: form(exchangeForm(good(), "pad", strings.Repeat("a", 70<<10))), wantStatus: 413, wantError: "invalid_request", wantReason: ReasonBodyTooLarge},
		{name: "T-02 subject token over 16 KiB", req: form(exchangeForm(strings.Repeat("a", 20<<10))), wantStatus: 400, wantError: "invalid_request", wantReason: "token_too_large"},
		{name: "T-03 token of periods", req: form(exchangeForm("a" + strings.Repeat(".", 10000))), wantStatus: 400, wantError: "invalid_request", wantReason: "token_malformed"},
		{name: "T-04 two segments", req: form(exchangeForm("a.b")), wantStatus: 400, wantError: "invalid_request", wantReason: "token_malformed"},
		{name: "T-05 padded base64", req: form(exchangeForm(strings.Replace(good(), ".", "=.", 1))), wantStatus: 400, wantError: "invalid_request", wantReason: "token_malformed"},
		{name: "T-06 repeated subject_token", req: form(exchangeForm(good(), "subject_token", "x")), wantStatus: 400, wantError: "invalid_request", wantReason: ReasonParameterRepeated},
		{name: "T-06 repeated grant_type", req: form(exchangeForm(good(), "grant_type", "client_credentials")), wantStatus: 400, wantError: "invalid_request", wantReason: ReasonParameterRepeated},
		{name: "T-07 JSON body", req: raw("POST", PathToken, "application/json", `{"grant_type":"x"}`), wantStatus: 415, wantError: "invalid_request", wantReason: ReasonContentType},
		{name: "T-07 multipart", req: raw("POST", PathToken, "multipart/form-data; boundary=x", "--x--"), wantStatus: 415, wantError: "invalid_request", wantReason: ReasonContentType},
		{name: "T-07 GET", req: raw("GET", PathToken+"?"+exchangeForm("x").Encode(), "", ""), wantStatus: 405},
		{name: "T-07 token in the query", req: raw("POST", PathToken+"?subject_token=x", "application/x-www-form-urlencoded", exchangeForm(good()).Encode()), wantStatus: 400, wantError: "invalid_request", wantReason: ReasonTokenInURL},
		{name: "T-08 unknown grant_type", req: form(url.Values{"grant_type": {"urn:example:nope"}}), wantStatus: 400, wantError: "unsupported_grant_type", wantReason: ReasonGrantUnsupported},
		// Without a client, a pool that needs one answers as no such pool
		// (T-102); the reason says why.
		{name: "T-09 pool requires client auth", req: form(exchangeForm(with("aud", "locked"))), wantStatus: 400, wantError: "invalid_request", wantReason: ReasonClientAuthRequired},
		{name: "T-09 client credentials we cannot check", req: func() *http.Request {
			r := form(exchangeForm(good()))()
			r.SetBasicAuth("c", "s")
			return r
		}, wantStatus: 401, wantError: "invalid_client", wantReason: ReasonClientAuthUnavailable},

		// T-11–T-28: JOSE header and algorithm handling.
		{name: "T-11 alg none", req: form(exchangeForm(alg("none"))), wantStatus: 400, wantError: "invalid_request", wantReason: "alg_not_allowed"},
		{name: "T-12 HS256", req: form(exchangeForm(alg("HS256"))), wantStatus: 400, wantError: "invalid_request", wantReason: "alg_not_allowed"},
		{name: "T-14 embedded jwk", req: form(exchangeForm(mintWith(t, "RS256", iss.claims(now, "u1"), map[jose.HeaderKey]any{"jwk": map[string]any{"kty": "oct"}}))), wantStatus: 400, wantError: "invalid_request", wantReason: "header_rejected"},
		{name: "T-20 at+jwt presented as jwt", req: form(exchangeForm(mintWith(t, "RS256", iss.claims(now, "u1"), map[jose.HeaderKey]any{"typ": "at+jwt"}))), wantStatus: 400, wantError: "invalid_request", wantReason: "token_type_invalid"},

		// T-37–T-48: claims and time.
		{name: "T-37 exp missing", req: form(exchangeForm(with("exp", nil))), wantStatus: 400, wantError: "invalid_request", wantReason: "claim_invalid"},
		{name: "T-38 expired", req: form(exchangeForm(with("exp", now.Add(-2*time.Minute).Unix(), "iat", now.Add(-time.Hour).Unix()))), wantStatus: 400, wantError: "invalid_request", wantReason: "token_expired"},
		{name: "T-43 audience not ours, pool named", req: form(exchangeForm(with("aud", "other"), "identity_pool_id", "ci")), wantStatus: 400, wantError: "invalid_request", wantReason: "audience_mismatch"},
		{name: "T-43 audience not ours, pool by issuer", req: form(exchangeForm(with("aud", "other"))), wantStatus: 400, wantError: "invalid_request", wantReason: "audience_mismatch"},
		{name: "T-44 issuer with trailing slash", req: form(exchangeForm(with("iss", iss.URL+"/"))), wantStatus: 400, wantError: "invalid_request", wantReason: "issuer_unknown"},
		{name: "T-46 other tenant: condition false", req: form(exchangeForm(with("repository_owner", "evil"))), wantStatus: 400, wantError: "invalid_request", wantReason: "condition_false"},

		// T-49–T-57: token-exchange semantics.
		{name: "T-49 audience not allowed", req: form(exchangeForm(good(), "audience", "https://evil.example")), wantStatus: 400, wantError: "invalid_target", wantReason: ReasonAudienceNotAllowed},
		{name: "T-49 malformed resource", req: form(exchangeForm(good(), "resource", "not-a-uri")), wantStatus: 400, wantError: "invalid_target", wantReason: ReasonTargetInvalid},
		{name: "T-50 scope beyond the pool", req: form(exchangeForm(good(), "scope", "read admin")), wantStatus: 400, wantError: "invalid_scope", wantReason: ReasonScopeExceedsPool},
		{name: "T-51 actor_token without type", req: form(exchangeForm(good(), "actor_token", good())), wantStatus: 400, wantError: "invalid_request", wantReason: ReasonActorTypeMismatch},
		{name: "T-51 actor not in may_act", req: form(exchangeForm(with("may_act", map[string]any{"sub": "someone"}), "actor_token", iss.mint(t, "ES256", iss.claims(now, "bot")), "actor_token_type", oauth2.TokenTypeJWT)),
			wantStatus: 400, wantError: "invalid_request", wantReason: ReasonActorNotAllowed},
		{name: "T-51 actor token invalid", req: form(exchangeForm(good(), "actor_token", "a.b", "actor_token_type", oauth2.TokenTypeJWT)), wantStatus: 400, wantError: "invalid_request", wantReason: "token_malformed"},
		{name: "T-52 saml2 subject", req: form(url.Values{"grant_type": {oauth2.GrantTypeTokenExchange}, "subject_token": {good()}, "subject_token_type": {oauth2.TokenTypeSAML2}}), wantStatus: 400, wantError: "invalid_request", wantReason: ReasonSubjectTypeUnsupported},
		{name: "T-52 our token presented as jwt", req: form(exchangeForm(ours("read", "https://api.example"))), wantStatus: 400, wantError: "invalid_request"},
		{name: "T-53 requested refresh token", req: form(exchangeForm(good(), "requested_token_type", oauth2.TokenTypeRefreshToken)), wantStatus: 400, wantError: "invalid_request", wantReason: ReasonRequestedTypeUnsupp},
		{name: "T-54 own token, wider scope", req: form(url.Values{"grant_type": {oauth2.GrantTypeTokenExchange}, "subject_token": {ours("read", "https://api.example")}, "subject_token_type": {oauth2.TokenTypeAccessToken}, "scope": {"read write"}}),
			wantStatus: 400, wantError: "invalid_scope", wantReason: ReasonScopeExceedsSubject},
		{name: "T-54 own token, wider audience", req: form(url.Values{"grant_type": {oauth2.GrantTypeTokenExchange}, "subject_token": {ours("read", "https://api.example")}, "subject_token_type": {oauth2.TokenTypeAccessToken}, "audience": {"https://other.example"}}),
			wantStatus: 400, wantError: "invalid_target", wantReason: ReasonAudienceWidening},
		{name: "T-54 own token, longer life", req: form(url.Values{"grant_type": {oauth2.GrantTypeTokenExchange}, "subject_token": {ours("read", "https://api.example")}, "subject_token_type": {oauth2.TokenTypeAccessToken}, "expires_in": {"3000"}}),
			wantStatus: 400, wantError: "invalid_request", wantReason: ReasonLifetimeExceedsSubject},
		{name: "T-56 lifetime beyond the pool", req: form(exchangeForm(good(), "expires_in", "7200")), wantStatus: 400, wantError: "invalid_request", wantReason: ReasonLifetimeExceedsPool},
		{name: "T-56 lifetime beyond the subject", req: form(exchangeForm(with("exp", now.Add(10*time.Minute).Unix()), "expires_in", "1200")), wantStatus: 400, wantError: "invalid_request", wantReason: ReasonLifetimeExceedsSubject},
		{name: "T-57 disabled pool", req: form(exchangeForm(with("aud", "off"), "identity_pool_id", "off")), wantStatus: 400, wantError: "invalid_request", wantReason: "pool_disabled"},
		{name: "T-57 disabled pool found by issuer", req: form(exchangeForm(with("aud", "off"))), wantStatus: 400, wantError: "invalid_request", wantReason: "pool_disabled"},
		{name: "ambiguous pool", req: form(exchangeForm(with("aud", "twin"))), wantStatus: 400, wantError: "invalid_request", wantReason: "ambiguous_pool"},
		{name: "ambiguous pool resolved by name", req: form(exchangeForm(with("aud", "twin"), "identity_pool_id", "twin-b")), wantStatus: 200, wantClaims: map[string]any{"pool": "twin-b"}},
		{name: "unknown pool", req: form(exchangeForm(good(), "identity_pool_id", "nope")), wantStatus: 400, wantError: "invalid_request", wantReason: "pool_unknown"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.audit.all())
			resp, body := do(t, tc.req())
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d, want %d (body %v)", resp.StatusCode, tc.wantStatus, body)
			}
			if got := resp.Header.Get("Cache-Control"); resp.StatusCode != 405 && got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", got)
			}
			if tc.wantStatus != 200 {
				if body["error"] != tc.wantError && tc.wantError != "" {
					t.Errorf("error = %v, want %s", body["error"], tc.wantError)
				}
				if tc.wantReason != "" && body["reason"] != tc.wantReason {
					t.Errorf("reason = %v, want %s", body["reason"], tc.wantReason)
				}
				if _, ok := body["access_token"]; ok {
					t.Error("a refusal carried an access_token")
				}
				for _, ev := range e.audit.all()[before:] {
					if ev.Outcome != OutcomeRefused || strings.Contains(ev.Detail, `"jti"`) {
						t.Errorf("refusal audited as %q with detail %s", ev.Outcome, ev.Detail)
					}
				}
				return
			}
			for k, want := range tc.wantBody {
				if diff := cmp.Diff(want, body[k]); diff != "" {
					t.Errorf("body[%s] (-want +got):\n%s", k, diff)
				}
			}
			tok, _ := body["access_token"].(string)
			if _, err := e.verify.VerifyAccessTokenAnyAudience(t.Context(), tok); err != nil {
				t.Fatalf("issued token does not verify: %v", err)
			}
			claims := payload(t, tok)
			for k, want := range tc.wantClaims {
				if diff := cmp.Diff(want, claims[k]); diff != "" {
					t.Errorf("claim %s (-want +got):\n%s", k, diff)
				}
			}
			exp, iat := claims["exp"].(float64), claims["iat"].(float64)
			if life := exp - iat; life != body["expires_in"].(float64) {
				t.Errorf("exp-iat = %v, expires_in = %v", life, body["expires_in"])
			}
			evs := e.audit.all()[before:]
			if len(evs) != 1 || evs[0].Outcome != OutcomeIssued || !strings.Contains(evs[0].Detail, claims["jti"].(string)) || evs[0].RequestID != "req-test" {
				t.Errorf("audit events = %+v, want one issued event naming the jti", evs)
			}
		})
	}
	// No storage write on the hot path: audit goes through the async
	// writer (a recorder here), nothing reached the store.
	if evs, err := e.store.ListAudit(t.Context(), storage.AuditFilter{}); err != nil || len(evs) != 0 {
		t.Errorf("store audit rows = %d (%v), want 0", len(evs), err)
	}
}

// payload decodes a JWT's claims without verifying (the caller verified).
func payload(t *testing.T, tok string) map[string]any {
	t.Helper()
	var m map[string]any
	decodePayload(t, tok, &m)
	return m
}

// decodePayload decodes a JWT's claims into v without verifying them.
func decodePayload(t *testing.T, tok string, v any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}
