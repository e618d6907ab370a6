package discovery_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/opensts/sts/internal/discovery"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/seal"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/clocktest"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
	"github.com/opensts/sts/internal/tokens"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

type clock = clocktest.Clock

func newStore(t *testing.T) storage.Store {
	t.Helper()
	s := sqlitetest.NewStore(t)
	return s
}

func newKeyring(t *testing.T) *seal.Keyring {
	t.Helper()
	mk := make([]byte, seal.KeySize)
	rand.Read(mk)
	kr, err := seal.NewKeyring(mk)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func newManager(t *testing.T, store storage.KeyStore, kr *seal.Keyring, clk *clock, alg string) *signer.Manager {
	t.Helper()
	m, err := signer.New(store, kr, signer.Config{Algorithm: alg})
	if err != nil {
		t.Fatal(err)
	}
	m.Now = clk.Now
	m.Logger = slog.New(slog.DiscardHandler)
	if err := m.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	return m
}

// serve starts an HTTP server with the discovery handler whose issuer is
// the server's own URL, as in production.
func serve(t *testing.T, keys signer.KeySet) (*httptest.Server, *discovery.Handler) {
	t.Helper()
	h := &discovery.Handler{Keys: keys, Supported: testSupported()}
	mux := http.NewServeMux()
	h.Mount(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	h.Issuer = srv.URL
	return srv, h
}

func testSupported() discovery.Supported {
	return discovery.Supported{
		GrantTypes:               []string{oauth2.GrantTypeTokenExchange, oauth2.GrantTypeClientCredentials},
		TokenEndpointAuthMethods: []string{oauth2.AuthMethodClientSecretBasic, oauth2.AuthMethodClientSecretPost},
		Scopes:                   []string{"openid"},
		Claims:                   discovery.DefaultClaims,
	}
}

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// TestJWKSHasNoPrivateParameters parses the JWKS generically and checks no
// key ever carries a private or symmetric parameter, for every algorithm
// and every key state (RFC 7518 §6.2.2, §6.3.2, §6.4.1; RFC 8037).
func TestJWKSHasNoPrivateParameters(t *testing.T) {
	store := newStore(t)
	clk := clocktest.New(t0)
	kr := newKeyring(t)
	// A set with keys of all three algorithms in all three states: the
	// deployment moved RS256 → EdDSA → ES256.
	for i, alg := range []string{signer.RS256, signer.EdDSA, signer.ES256} {
		m := newManager(t, store, kr, clk, alg)
		clk.Set(t0.Add(time.Duration(i+1) * 2 * time.Hour))
		if _, err := m.Rotate(t.Context(), clk.Now()); err != nil {
			t.Fatal(err)
		}
	}
	m := newManager(t, store, kr, clk, signer.ES256)
	srv, _ := serve(t, m)
	resp, body := get(t, srv.URL+discovery.PathJWKS)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET jwks: %s", resp.Status)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=300" {
		t.Errorf("Cache-Control = %q, want public, max-age=300 (shorter than the 1 h publish-ahead)", cc)
	}
	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	rows, _ := store.ListSigningKeys(t.Context())
	if len(doc.Keys) != len(rows) || len(rows) < 5 {
		t.Fatalf("JWKS has %d keys, store %d; want every published key", len(doc.Keys), len(rows))
	}
	states := map[string]storage.KeyState{}
	for _, r := range rows {
		states[r.ID] = r.State
	}
	algs := map[string]bool{}
	for _, k := range doc.Keys {
		for _, p := range []string{"d", "p", "q", "dp", "dq", "qi", "k", "oth"} {
			if _, ok := k[p]; ok {
				t.Errorf("key %v publishes private parameter %q", k["kid"], p)
			}
		}
		kid, _ := k["kid"].(string)
		if _, ok := states[kid]; !ok {
			t.Errorf("JWKS key %q is not in the store", kid)
		}
		if k["use"] != "sig" || k["alg"] == nil {
			t.Errorf("key %s: use=%v alg=%v, want use sig and an alg", kid, k["use"], k["alg"])
		}
		algs[k["alg"].(string)] = true
	}
	if len(algs) != 3 {
		t.Errorf("JWKS algorithms = %v, want all three", algs)
	}
	// The kids are distinct RFC 7638 thumbprints (duplicates impossible).
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatal(err)
	}
	for _, k := range set.Keys {
		if !k.IsPublic() {
			t.Errorf("go-jose sees key %s as private", k.KeyID)
		}
	}
}

// TestMetadataGolden pins the discovery documents (run with -update to
// rewrite testdata/).
func TestMetadataGolden(t *testing.T) {
	st, err := signer.NewStatic(signer.ES256)
	if err != nil {
		t.Fatal(err)
	}
	h := &discovery.Handler{Issuer: "https://sts.example.com", Keys: st, Supported: testSupported()}
	mux := http.NewServeMux()
	h.Mount(mux)
	for _, path := range []string{discovery.PathOpenIDConfiguration, discovery.PathOAuthServer} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Header().Get("Content-Type"))
		}
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, rec.Body.Bytes(), "", "  "); err != nil {
			t.Fatal(err)
		}
		golden := filepath.Join("testdata", "metadata.json")
		if *update {
			if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test -update)", err)
		}
		if !bytes.Equal(want, pretty.Bytes()) {
			t.Errorf("GET %s differs from %s (run go test -update):\n%s", path, golden, pretty.Bytes())
		}
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, discovery.PathJWKS, nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST jwks = %d, want 405", rec.Code)
	}
}

// TestGoOIDCVerifiesOurIDTokens uses github.com/coreos/go-oidc/v3 as the
// judge: discovery and JWKS over real HTTP, then ID-token verification.
func TestGoOIDCVerifiesOurIDTokens(t *testing.T) {
	for _, alg := range []string{signer.ES256, signer.RS256, signer.EdDSA} {
		t.Run(alg, func(t *testing.T) {
			clk := clocktest.New(time.Now().Truncate(time.Second))
			m := newManager(t, newStore(t), newKeyring(t), clk, alg)
			srv, _ := serve(t, m)
			iss := &tokens.Issuer{Signer: m, IssuerURL: srv.URL, Now: clk.Now}

			provider, err := oidc.NewProvider(t.Context(), srv.URL)
			if err != nil {
				t.Fatalf("oidc.NewProvider: %v", err)
			}
			verifier := provider.Verifier(&oidc.Config{ClientID: "api", Now: clk.Now})
			raw, _, err := iss.MintIDToken(t.Context(), tokens.IDClaims{
				Subject:   tokens.SubjectV2("org-1", "user", "7c0f3b5e"),
				Audience:  tokens.Audience{"api"},
				Expiry:    tokens.NewNumericDate(clk.Now().Add(time.Hour)),
				OrgID:     "org-1",
				Principal: "7c0f3b5e",
				Email:     "alice@example.com",
			})
			if err != nil {
				t.Fatal(err)
			}
			idt, err := verifier.Verify(t.Context(), raw)
			if err != nil {
				t.Fatalf("go-oidc Verify: %v", err)
			}
			var c tokens.IDClaims
			if err := idt.Claims(&c); err != nil || c.OrgID != "org-1" || idt.Subject != "org:org-1/user:7c0f3b5e" {
				t.Errorf("claims = %+v, %v", c, err)
			}
			// Issued with an access token, it carries that token's at_hash by
			// the algorithm's hash (SHA-512 for EdDSA), which go-oidc checks
			// (OIDC Core §3.1.3.6).
			withAT, _, err := iss.MintIDTokenWith(t.Context(), tokens.IDClaims{Subject: "alice", Audience: tokens.Audience{"api"},
				Expiry: tokens.NewNumericDate(clk.Now().Add(time.Hour))}, "access-token-1")
			if err != nil {
				t.Fatal(err)
			}
			idtAT, err := verifier.Verify(t.Context(), withAT)
			if err != nil {
				t.Fatalf("go-oidc Verify (at_hash): %v", err)
			}
			if err := idtAT.VerifyAccessToken("access-token-1"); err != nil {
				t.Errorf("go-oidc VerifyAccessToken: %v", err)
			}
			if err := idtAT.VerifyAccessToken("access-token-2"); err == nil {
				t.Error("go-oidc VerifyAccessToken accepted another access token")
			}
			// A different audience is refused by the real client too.
			other := provider.Verifier(&oidc.Config{ClientID: "other", Now: clk.Now})
			if _, err := other.Verify(t.Context(), raw); err == nil {
				t.Error("go-oidc accepted a token for another audience")
			}
		})
	}
}

// TestRotationWithCachedJWKS: a verifier that fetched our JWKS once and
// never refetches keeps verifying tokens of the old key after a rotation,
// and already knows the new key when it starts signing, because the next
// key was published ≥ PublishAhead earlier (docs/security.md D-05). The
// verifier is go-oidc over a static copy of the fetched JWKS.
func TestRotationWithCachedJWKS(t *testing.T) {
	store := newStore(t)
	start := time.Now().Truncate(time.Second)
	clk := clocktest.New(start)
	m := newManager(t, store, newKeyring(t), clk, signer.ES256)
	srv, _ := serve(t, m)
	iss := &tokens.Issuer{Signer: m, IssuerURL: srv.URL, Now: clk.Now}
	cfg := m.Config()

	// cachedVerifier fetches the JWKS now and keeps that copy forever.
	cachedVerifier := func() *oidc.IDTokenVerifier {
		_, body := get(t, srv.URL+discovery.PathJWKS)
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(body, &set); err != nil {
			t.Fatal(err)
		}
		ks := &oidc.StaticKeySet{}
		for _, k := range set.Keys {
			ks.PublicKeys = append(ks.PublicKeys, k.Key)
		}
		return oidc.NewVerifier(srv.URL, ks, &oidc.Config{ClientID: "api", Now: clk.Now, SupportedSigningAlgs: []string{"ES256"}})
	}
	mint := func() string {
		raw, _, err := iss.MintIDToken(t.Context(), tokens.IDClaims{Subject: "alice", Audience: tokens.Audience{"api"}, Expiry: tokens.NewNumericDate(clk.Now().Add(cfg.MaxTokenLifetime))})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	ourVerifier := &tokens.Verifier{Keys: m, Issuer: srv.URL, Now: clk.Now}
	mintAccess := func() string {
		raw, _, err := iss.MintAccessToken(t.Context(), tokens.AccessClaims{Subject: "alice", Audience: tokens.Audience{"api"}, Expiry: tokens.NewNumericDate(clk.Now().Add(15 * time.Minute))})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}

	// The verifier caches the JWKS when the first key starts signing and
	// never refetches.
	early := cachedVerifier()
	oldKID := m.ActiveKeyID()

	// One minute before the scheduled rotation the old key signs tokens
	// valid for the maximum lifetime.
	clk.Set(start.Add(cfg.RotationPeriod - time.Minute))
	if err := m.Tick(t.Context()); err != nil {
		t.Fatal(err)
	}
	oldToken, oldAccess := mint(), mintAccess()

	// The schedule rotates; the early cache is now 30 days old.
	clk.Set(start.Add(cfg.RotationPeriod))
	if err := m.Tick(t.Context()); err != nil {
		t.Fatal(err)
	}
	if m.ActiveKeyID() == oldKID {
		t.Fatal("no rotation happened")
	}
	clk.Set(start.Add(cfg.RotationPeriod + time.Minute))
	// The replica's key-set checks read the set in the meantime; without
	// a read for that long it would sign nothing (docs/security.md F-109).
	if err := m.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	// The old cache already has the new key: it was published at start.
	if _, err := early.Verify(t.Context(), mint()); err != nil {
		t.Errorf("cached JWKS (fetched before rotation) rejects a token of the new key: %v", err)
	}
	if _, err := early.Verify(t.Context(), oldToken); err != nil {
		t.Errorf("cached JWKS rejects a token of the old key after rotation: %v", err)
	}
	// A verifier that refreshes after the rotation still finds the
	// retired key, so its tokens keep verifying until they expire.
	fresh := cachedVerifier()
	if _, err := fresh.Verify(t.Context(), oldToken); err != nil {
		t.Errorf("JWKS fetched after rotation rejects a token of the retired key: %v", err)
	}
	if _, err := ourVerifier.VerifyAccessToken(t.Context(), oldAccess, "api"); err != nil {
		t.Errorf("our verifier rejects an access token of the retired key: %v", err)
	}
	// Until the last token of the retired key has expired (plus leeway).
	clk.Set(start.Add(cfg.RotationPeriod - time.Minute + cfg.MaxTokenLifetime))
	if err := m.Tick(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := cachedVerifier().Verify(t.Context(), oldToken); err != nil {
		t.Errorf("retired key unpublished before its last token expired: %v", err)
	}

	// The next key published by this rotation is in the JWKS at least
	// PublishAhead before any scheduled or on-demand rotation lets it sign.
	clk.Set(start.Add(cfg.RotationPeriod + cfg.PublishAhead - time.Second))
	if err := m.Tick(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Rotate(t.Context(), clk.Now()); err == nil {
		t.Error("Rotate activated a next key published less than PublishAhead ago")
	}
}

// TestClaimsSupportedListsIDTokenClaims: claims_supported, read with
// go-oidc, names every claim of an ID token the server mints as
// IdentityService/GetIDToken does for several audiences (azp among
// them, OIDC Core §2), the token itself verified by go-oidc for one of
// its audiences: a relying party that checks the list against what it
// needs finds nothing the tokens carry missing.
func TestClaimsSupportedListsIDTokenClaims(t *testing.T) {
	clk := clocktest.New(time.Now().Truncate(time.Second))
	m := newManager(t, newStore(t), newKeyring(t), clk, signer.ES256)
	srv, _ := serve(t, m)
	iss := &tokens.Issuer{Signer: m, IssuerURL: srv.URL, Now: clk.Now}
	provider, err := oidc.NewProvider(t.Context(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Claims []string `json:"claims_supported"`
	}
	if err := provider.Claims(&meta); err != nil {
		t.Fatal(err)
	}
	raw, _, err := iss.MintIDToken(t.Context(), tokens.IDClaims{
		Subject: tokens.SubjectV2("org-1", "user", "7c0f3b5e"), Audience: tokens.Audience{"rp-1", "rp-2"},
		Expiry: tokens.NewNumericDate(clk.Now().Add(time.Hour)), OrgID: "org-1", Principal: "USER",
		Name: "Ada", Email: "ada@example.com", Act: &tokens.Actor{Subject: "sa-1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	idt, err := provider.Verifier(&oidc.Config{ClientID: "rp-2", Now: clk.Now}).Verify(t.Context(), raw)
	if err != nil {
		t.Fatalf("go-oidc Verify: %v", err)
	}
	var carried map[string]any
	if err := idt.Claims(&carried); err != nil {
		t.Fatal(err)
	}
	if carried["azp"] != "rp-1" {
		t.Fatalf("azp = %v, want rp-1 (the first of several audiences)", carried["azp"])
	}
	for name := range carried {
		if !slices.Contains(meta.Claims, name) {
			t.Errorf("the ID token carries %q, which claims_supported %v does not list", name, meta.Claims)
		}
	}
}
