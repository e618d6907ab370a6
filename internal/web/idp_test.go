package web_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/opensts/sts/internal/ststest/rsatest"
)

// idp is a small OpenID Connect provider for the tests: discovery, JWKS,
// an authorization endpoint that signs in User at once (with auth_time
// now when max_age is asked, unless User sets auth_time), and a token
// endpoint that checks the client secret, the redirect URI and the PKCE
// verifier (S256) before it issues an RS256 ID token with the nonce.
type idp struct {
	*httptest.Server
	ClientID, ClientSecret string

	mu    sync.Mutex
	User  map[string]any // extra claims of the next sign-in
	codes map[string]idpCode
	key   *rsa.PrivateKey
	// Seen records what the authorization endpoint was asked.
	Seen url.Values
	// TokenRedirect, when set, is what the token endpoint answers every
	// request with: a redirect (its status) to its URL.
	TokenRedirect *idpRedirect
	// Hold makes the authorization endpoint answer with a page whose
	// "Continue" link goes back to sts, in place of the redirect: a
	// person still at the provider.
	Hold bool
	// Moved records the requests to /moved, a path of the provider's own
	// host a TokenRedirect may name: method, code, and whether the
	// client secret came with them.
	Moved []string
	// ResponseIss, when set, is the iss parameter of the authorization
	// response (RFC 9207); AdvertiseIss puts
	// authorization_response_iss_parameter_supported in the discovery
	// document.
	ResponseIss  string
	AdvertiseIss bool
}

type idpRedirect struct {
	Status int
	URL    string
}

// loopbackProviders lets sts reach the test providers, which listen on
// loopback over plain http: the sign-in's client refuses both otherwise,
// as every outbound fetch does (docs/security.md T-59, T-189).
const loopbackProviders = "federation:\n  allow_loopback: true\n"

type idpCode struct {
	redirect, challenge, nonce string
	claims                     map[string]any
}

func newIDP(t *testing.T) *idp {
	t.Helper()
	key, err := rsatest.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	p := &idp{ClientID: "sts-web", ClientSecret: "idp-secret", codes: map[string]idpCode{}, key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		meta := map[string]any{
			"issuer": p.URL, "authorization_endpoint": p.URL + "/authorize", "token_endpoint": p.URL + "/token",
			"jwks_uri": p.URL + "/jwks", "id_token_signing_alg_values_supported": []string{"RS256"},
			"response_types_supported": []string{"code"}, "code_challenge_methods_supported": []string{"S256"},
		}
		p.mu.Lock()
		if p.AdvertiseIss {
			meta["authorization_response_iss_parameter_supported"] = true
		}
		p.mu.Unlock()
		_ = json.NewEncoder(w).Encode(meta)
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		p.mu.Lock()
		p.Seen = q
		claims := p.User
		p.mu.Unlock()
		if q.Get("client_id") != p.ClientID || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" ||
			q.Get("code_challenge") == "" || q.Get("state") == "" || q.Get("nonce") == "" {
			http.Error(w, "bad authorization request", http.StatusBadRequest)
			return
		}
		if _, said := claims["auth_time"]; q.Has("max_age") && !said {
			// Asked to authenticate the person now (OIDC Core
			// §3.1.2.1), the provider does, and says when, as a test
			// that sets auth_time itself would otherwise.
			claims = maps.Clone(claims)
			claims["auth_time"] = time.Now().Unix()
		}
		code := rand.Text()
		p.mu.Lock()
		p.codes[code] = idpCode{redirect: q.Get("redirect_uri"), challenge: q.Get("code_challenge"), nonce: q.Get("nonce"), claims: claims}
		p.mu.Unlock()
		back := q.Get("redirect_uri") + "?code=" + code + "&state=" + url.QueryEscape(q.Get("state"))
		p.mu.Lock()
		hold := p.Hold
		if p.ResponseIss != "" {
			back += "&iss=" + url.QueryEscape(p.ResponseIss)
		}
		p.mu.Unlock()
		if hold {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write([]byte(`<!doctype html><title>Test IdP</title><h1>Test IdP</h1><a href="` + html.EscapeString(back) + `">Continue</a>`))
			return
		}
		http.Redirect(w, r, back, http.StatusFound)
	})
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.Moved = append(p.Moved, describeTokenRequest(r))
		p.mu.Unlock()
		http.Error(w, "not here", http.StatusTeapot)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		to := p.TokenRedirect
		p.mu.Unlock()
		if to != nil {
			http.Redirect(w, r, to.URL, to.Status)
			return
		}
		id, secret, ok := r.BasicAuth()
		if !ok {
			id, secret = r.PostFormValue("client_id"), r.PostFormValue("client_secret")
		}
		p.mu.Lock()
		c, found := p.codes[r.PostFormValue("code")]
		delete(p.codes, r.PostFormValue("code"))
		p.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostFormValue("code_verifier")))
		if id != p.ClientID || secret != p.ClientSecret || !found || r.PostFormValue("redirect_uri") != c.redirect ||
			base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
			return
		}
		claims := map[string]any{"iss": p.URL, "aud": p.ClientID, "iat": time.Now().Unix(),
			"exp": time.Now().Add(5 * time.Minute).Unix(), "nonce": c.nonce}
		for k, v := range c.claims {
			claims[k] = v
		}
		signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: p.key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
		idt, err := jwt.Signed(signer).Claims(claims).Serialize()
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": rand.Text(), "token_type": "Bearer", "expires_in": 300, "id_token": idt})
	})
	p.Server = httptest.NewServer(mux)
	t.Cleanup(p.Close)
	return p
}

// seen is what the authorization endpoint was last asked.
func (p *idp) seen() url.Values {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.Seen
}

// describeTokenRequest says what a token request r carried, for a test's
// message: its method, its code, and whether the PKCE verifier and the
// client secret came with it.
func describeTokenRequest(r *http.Request) string {
	_, secret, _ := r.BasicAuth()
	_ = r.ParseForm()
	yes := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	return r.Method + " code=" + r.PostForm.Get("code") + " verifier sent=" + yes(r.PostForm.Get("code_verifier") != "") +
		" client secret sent=" + yes(secret != "" || r.PostForm.Get("client_secret") != "")
}

// moved is what /moved received.
func (p *idp) moved() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.Moved)
}

// redirectTokens makes the token endpoint answer with a redirect.
func (p *idp) redirectTokens(to *idpRedirect) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.TokenRedirect = to
}

func (p *idp) signInAs(claims map[string]any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.User = claims
}
