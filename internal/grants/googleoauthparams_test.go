package grants

import (
	"context"
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

// googleRefreshEnv is a server whose /v1/oauthtoken refreshes the
// families of one confidential client of acme, audiences [stsIssuer,
// https://api.example]: issue begins a family and answers its refresh
// token; post sends a form refresh of rt with the extra parameters kv
// (name, value pairs, a name repeated as sent).
type googleRefreshEnv struct {
	*env
	pepper []byte
	// clientID and secret are the confidential client's credentials.
	clientID, secret string
	issue            func() string
	post             func(rt string, kv ...string) (*http.Response, map[string]any)
}

func newGoogleRefreshEnv(t *testing.T) googleRefreshEnv {
	t.Helper()
	e := newEnv(t, nil)
	ctx := t.Context()
	pepper := []byte(strings.Repeat("p", 32))
	sa := storage.Principal{ID: storage.NewID(), OrgID: "acme", Kind: storage.PrincipalServiceAccount, Name: "gcloud"}
	if err := e.store.CreatePrincipal(ctx, sa); err != nil {
		t.Fatal(err)
	}
	sec := secret.PrefixClientSecret.Generate()
	auds := []string{stsIssuer, "https://api.example"}
	client := storage.Client{ID: storage.NewID(), OrgID: "acme", PrincipalID: sa.ID, AuthMethod: oauth2.AuthMethodClientSecretBasic,
		SecretDigest: secret.Digest(pepper, sec), GrantTypes: []string{oauth2.GrantTypeAuthorizationCode, oauth2.GrantTypeRefreshToken}, Scopes: []string{"read"},
		Audiences: auds}
	if err := e.store.CreateClient(ctx, client); err != nil {
		t.Fatal(err)
	}
	e.handler.Clients = Clients{Authenticator: &clientauth.Authenticator{Store: e.store, Pepper: pepper}}
	refresh := &Refresh{Store: e.store, Issuer: e.grant.Issuer, Pepper: pepper, Lifetime: 24 * time.Hour, Audiences: auds[1:]}
	e.handler.Grants = append(e.handler.Grants, refresh)
	mux := http.NewServeMux()
	e.handler.Mount(mux)
	e.srv.Config.Handler = mux
	issue := func() string {
		rt, err := refresh.Issue(ctx, oauth2.GrantTypeAuthorizationCode, &client, tokens.AccessClaims{Subject: sa.ID, OrgID: "acme", ClientID: client.ID}, []string{"read"}, auds)
		if err != nil {
			t.Fatal(err)
		}
		return rt
	}
	post := func(rt string, kv ...string) (*http.Response, map[string]any) {
		form := url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}}
		for i := 0; i+1 < len(kv); i += 2 {
			form.Add(kv[i], kv[i+1])
		}
		r, _ := http.NewRequest(http.MethodPost, e.srv.URL+PathGoogleOAuthToken, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.SetBasicAuth(client.ID, sec)
		return do(t, r)
	}
	return googleRefreshEnv{env: e, pepper: pepper, clientID: client.ID, secret: sec, issue: issue, post: post}
}

// issuedAudience is the aud of the access token in out, or why there is
// none to read.
func issuedAudience(ctx context.Context, e *env, out map[string]any) any {
	at, _ := out["access_token"].(string)
	c, err := e.verify.VerifyAccessToken(ctx, at, stsIssuer)
	if err != nil {
		return err
	}
	return c.Audience
}

// TestGoogleOAuthTokenUnhonouredParameters (docs/security.md T-180): a
// form at /v1/oauthtoken that asks for a narrower token than its refresh
// token's family (one audience, a shorter lifetime, an access boundary)
// is refused, never answered with the family's wider token. Google's
// ExchangeOauthTokenRequest has none of these parameters, and the same
// members in a JSON body are refused as unknown names. A refresh without
// them is served as before.
func TestGoogleOAuthTokenUnhonouredParameters(t *testing.T) {
	g := newGoogleRefreshEnv(t)
	e, ctx, rt := g.env, t.Context(), g.issue()
	post := func(kv ...string) (*http.Response, map[string]any) { return g.post(rt, kv...) }
	for _, tc := range []struct{ name, value string }{
		{"audience", "https://api.example"},
		{"resource", "https://api.example"},
		{"expires_in", "60"},
		{"options", `{"accessBoundary":{"accessBoundaryRules":[{"availableResource":"//storage.googleapis.com/projects/_/buckets/b","availablePermissions":["inRole:roles/storage.objectViewer"]}]}}`},
	} {
		resp, out := post(tc.name, tc.value)
		desc, _ := out["error_description"].(string)
		if resp.StatusCode != http.StatusBadRequest || out["error"] != oauth2.ErrorInvalidRequest || !strings.HasPrefix(desc, tc.name+" is not a parameter of "+PathGoogleOAuthToken) {
			t.Errorf("refresh with %s=%s: %d %v %q (issued: aud %v, expires_in %v), want 400 invalid_request %q…",
				tc.name, tc.value, resp.StatusCode, out["error"], desc, issuedAudience(ctx, e, out), out["expires_in"], tc.name+" is not a parameter of "+PathGoogleOAuthToken)
		}
	}
	// Sent empty, a parameter is omitted (RFC 6749 §3.1), as everywhere.
	if resp, out := post("audience", "", "expires_in", ""); resp.StatusCode != http.StatusOK || out["access_token"] == nil {
		t.Errorf("refresh with empty audience and expires_in: %d %v, want a token", resp.StatusCode, out)
	}
	stored, err := e.store.GetRefreshTokenByDigest(ctx, secret.Digest(g.pepper, rt))
	if err != nil || stored.Revoked || !stored.RotatedAt.IsZero() {
		t.Errorf("the refresh token after the refusals: %+v %v, want it live and not rotated", stored, err)
	}
}

// TestGoogleOAuthTokenRepeatedEmptyFirst (docs/security.md T-180):
// audience and resource may repeat in a form, so a non-empty value after
// an empty one is refused as one alone is; only the first value was read,
// and the family's wider token was issued.
func TestGoogleOAuthTokenRepeatedEmptyFirst(t *testing.T) {
	g := newGoogleRefreshEnv(t)
	e, ctx := g.env, t.Context()
	for _, name := range []string{"audience", "resource"} {
		for _, values := range [][]string{{"", "https://api.example"}, {"https://api.example", ""}} {
			resp, out := g.post(g.issue(), name, values[0], name, values[1])
			desc, _ := out["error_description"].(string)
			if resp.StatusCode != http.StatusBadRequest || out["error"] != oauth2.ErrorInvalidRequest || !strings.HasPrefix(desc, name+" is not a parameter of "+PathGoogleOAuthToken) {
				t.Errorf("%s=%q: %d %v %q (issued: aud %v), want 400 invalid_request %q…",
					name, values, resp.StatusCode, out["error"], desc, issuedAudience(ctx, e, out), name+" is not a parameter of "+PathGoogleOAuthToken)
			}
		}
	}
}

// TestGoogleOAuthTokenRequestedTokenType (docs/security.md T-53, T-180):
// Google's ExchangeOauthTokenRequest has no requested_token_type, and a
// JSON body naming it is refused as an unknown member; a form at
// /v1/oauthtoken naming one, whatever its value (…:id_token, …:jwt, even
// …:access_token), is refused as well, requested_token_type_unsupported,
// never answered with an access token it did not ask for. The refresh
// token is left as it was for the next request; sent empty the parameter
// is omitted (RFC 6749 §3.1).
func TestGoogleOAuthTokenRequestedTokenType(t *testing.T) {
	g := newGoogleRefreshEnv(t)
	rt := g.issue()
	for _, typ := range []string{oauth2.TokenTypeIDToken, oauth2.TokenTypeJWT, oauth2.TokenTypeAccessToken} {
		resp, out := g.post(rt, "requested_token_type", typ)
		desc, _ := out["error_description"].(string)
		if resp.StatusCode != http.StatusBadRequest || out["error"] != oauth2.ErrorInvalidRequest || out["reason"] != ReasonRequestedTypeUnsupp ||
			!strings.HasPrefix(desc, "requested_token_type is not a parameter of "+PathGoogleOAuthToken) || out["access_token"] != nil {
			t.Errorf("/v1/oauthtoken form requesting %s = %d %v %v %q (token type %v), want 400 invalid_request %s",
				typ, resp.StatusCode, out["error"], out["reason"], desc, out["token_type"], ReasonRequestedTypeUnsupp)
		}
	}
	stored, err := g.store.GetRefreshTokenByDigest(t.Context(), secret.Digest(g.pepper, rt))
	if err != nil || stored.Revoked || !stored.RotatedAt.IsZero() {
		t.Errorf("the refresh token after the refusals: %+v %v, want it live and not rotated", stored, err)
	}
	if resp, out := g.post(rt, "requested_token_type", ""); resp.StatusCode != http.StatusOK || out["access_token"] == nil {
		t.Errorf("refresh with an empty requested_token_type = %d %v, want a token", resp.StatusCode, out)
	}
}

// TestGoogleOAuthTokenRequestedTokenTypeCode (docs/security.md T-180): an
// authorization_code form at /v1/oauthtoken naming requested_token_type
// is refused as its JSON twin is, the code left for a corrected request;
// a spent code so sent is a replay (T-195) and ends its family.
func TestGoogleOAuthTokenRequestedTokenTypeCode(t *testing.T) {
	r := newCodeReplay(t, backendStore(t, "sqlite"))
	code := r.m.authCode(t, r.c, "ada", "read")
	f := cloneForm(code)
	f.Set("requested_token_type", oauth2.TokenTypeJWT)
	if status, body := postBasic(t, r.m.srv.URL+PathGoogleOAuthToken, r.c.ID, r.sec, f); status != http.StatusBadRequest || body["reason"] != ReasonRequestedTypeUnsupp {
		t.Errorf("/v1/oauthtoken form code with requested_token_type=jwt = %d %v %v (token type %v), want 400 %s",
			status, body["error"], body["reason"], body["token_type"], ReasonRequestedTypeUnsupp)
	}
	js := codeJSON(t, code, map[string]string{"requestedTokenType": `"` + oauth2.TokenTypeJWT + `"`})
	req, err := http.NewRequest(http.MethodPost, r.m.srv.URL+PathGoogleOAuthToken, strings.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(r.c.ID, r.sec)
	if resp, body := do(t, req); resp.StatusCode != http.StatusBadRequest || body["error"] != oauth2.ErrorInvalidRequest {
		t.Errorf("its JSON twin = %d %v %v, want 400 invalid_request", resp.StatusCode, body["error"], body["reason"])
	}
	if status, body := postBasic(t, r.m.srv.URL+PathGoogleOAuthToken, r.c.ID, r.sec, code); status != http.StatusOK {
		t.Errorf("the code corrected = %d %v %v, want 200", status, body["error"], body["reason"])
	}
	spent, access, refresh := r.redeemed(t)
	f = cloneForm(spent)
	f.Set("requested_token_type", oauth2.TokenTypeJWT)
	if status, body := postBasic(t, r.m.srv.URL+PathGoogleOAuthToken, r.c.ID, r.sec, f); status != http.StatusBadRequest || body["reason"] != ReasonCodeReused {
		t.Errorf("spent code with requested_token_type = %d %v %v, want 400 %s", status, body["error"], body["reason"], ReasonCodeReused)
	}
	r.checkEnded(t, access, refresh)
}
