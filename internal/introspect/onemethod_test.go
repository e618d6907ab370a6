package introspect

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// TestOneAuthenticationMethod (docs/security.md T-127, RFC 6749 §2.3): a
// bearer token and client credentials in the body are two ways of
// authenticating in one request; it is refused (400 invalid_request)
// whichever of them is valid, as Basic with client credentials in the body
// is, rather than one being used and the other ignored. A bearer token
// with a bare client_id, or alone, is answered.
func TestOneAuthenticationMethod(t *testing.T) {
	s := newTestServer(t, nil)
	sec := secret.PrefixClientSecret.Generate()
	post := storage.Client{ID: storage.NewID(), OrgID: "acme", PrincipalID: "sa", AuthMethod: oauth2.AuthMethodClientSecretPost,
		SecretDigest: secret.Digest(s.pepper, sec), Audiences: []string{s.iss}}
	if err := s.store.CreateClient(t.Context(), post); err != nil {
		t.Fatal(err)
	}
	mint := func(scope string) string {
		return s.mint(t, tokens.AccessClaims{Subject: "p", OrgID: "acme", Principal: "user", Scope: scope,
			Src: &tokens.Source{Issuer: "urn:opensts:pat", Subject: "pat-1"}})
	}
	admin, target := mint(ScopeIntrospect), mint("read")
	send := func(bearer string, extra url.Values) (int, string) {
		form := url.Values{"token": {target}}
		for k, v := range extra {
			form[k] = v
		}
		var auth func(*http.Request)
		if bearer != "" {
			auth = authorization("Bearer " + bearer)
		}
		resp, m := s.post(t, Path, formType, form.Encode(), auth)
		e, _ := m["error"].(string)
		return resp.StatusCode, e
	}
	for name, extra := range map[string]url.Values{
		"a valid client_secret": {"client_id": {post.ID}, "client_secret": {sec}},
		"a wrong client_secret": {"client_id": {post.ID}, "client_secret": {secret.PrefixClientSecret.Generate()}},
		"a client assertion":    {"client_assertion_type": {oauth2.ClientAssertionTypeJWTBearer}, "client_assertion": {"a.b.c"}},
	} {
		if status, e := send(admin, extra); status != 400 || e != oauth2.ErrorInvalidRequest {
			t.Errorf("bearer and %s: %d %q, want 400 invalid_request", name, status, e)
		}
	}
	for name, extra := range map[string]url.Values{"alone": nil, "with a bare client_id": {"client_id": {post.ID}}} {
		if status, e := send(admin, extra); status != 200 {
			t.Errorf("bearer %s: %d %q, want 200", name, status, e)
		}
	}
	if status, e := send("", url.Values{"client_id": {post.ID}, "client_secret": {sec}}); status != 200 {
		t.Errorf("client_secret_post alone: %d %q, want 200", status, e)
	}
	// The scheme's name is case-insensitive (RFC 7235 §2.1), as at
	// userinfo and the Connect API: "bearer" is a bearer token.
	for _, scheme := range []string{"bearer ", "BEARER "} {
		resp, m := s.post(t, Path, formType, url.Values{"token": {target}}.Encode(), authorization(scheme+admin))
		if resp.StatusCode != 200 || m["active"] != true {
			t.Errorf("%q scheme: %d %v, want 200 and the token active", scheme, resp.StatusCode, m)
		}
	}
}
