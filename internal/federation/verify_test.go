package federation

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/opensts/sts/internal/storage"
)

func TestVerifyValid(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t)
	clk := newFakeClock()
	v := testVerifier(clk)
	k := testKeys()
	for _, tc := range []struct {
		name string
		alg  jose.SignatureAlgorithm
		key  any
		kid  string
	}{
		{"RS256", jose.RS256, k.rsa, kidRSA},
		{"ES256", jose.ES256, k.ec, kidEC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ti.claims(clk)
			c["groups"] = []string{"a", "b"}
			c["n"] = 7
			id, err := v.Verify(t.Context(), ti.provider(), sign(t, tc.alg, tc.key, tc.kid, c, nil))
			if err != nil {
				t.Fatalf("Verify() = %v", err)
			}
			now := clk.Now().Unix()
			want := &Identity{
				Issuer: ti.URL, Subject: "repo:acme/app:ref:refs/heads/main", Audience: []string{"sts"},
				Expiry: time.Unix(now+300, 0), IssuedAt: time.Unix(now-10, 0), NotBefore: time.Unix(now-10, 0),
				JTI: "j1", KeyID: tc.kid, Algorithm: string(tc.alg),
			}
			if diff := cmp.Diff(want, id, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Claims" }, cmp.Ignore())); diff != "" {
				t.Errorf("Verify() identity (-want +got):\n%s", diff)
			}
			if id.Claims["repository_owner"] != "acme" || id.Claims["n"] != int64(7) || !cmp.Equal(id.Claims["groups"], []any{"a", "b"}) {
				t.Errorf("Verify() claims = %v", id.Claims)
			}
		})
	}
	if got := ti.discoveryHits.Load() + ti.jwksHits.Load(); got != 2 {
		t.Errorf("upstream requests = %d, want 2 (one discovery, one JWKS, then cached)", got)
	}
}

// TestVerifyAttacks covers the docs/security.md catalogue (T-02–T-45); each case
// names its number. Every one must be refused with the given reason.
func TestVerifyAttacks(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t)
	clk := newFakeClock()
	v := testVerifier(clk)
	k := testKeys()
	now := clk.Now().Unix()
	with := func(mod func(map[string]any)) map[string]any { c := ti.claims(clk); mod(c); return c }
	rs := func(c any) string { return sign(t, jose.RS256, k.rsa, kidRSA, c, nil) }
	tests, jkuHits := verifyAttackCases(t, ti, clk)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := ti.provider()
			if tc.prov != nil {
				tc.prov(&p)
			}
			id, err := v.Verify(t.Context(), p, tc.token)
			if id != nil || ReasonOf(err) != tc.want {
				t.Errorf("Verify() = %v, %v (reason %q); want reason %q", id, err, ReasonOf(err), tc.want)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "federation: ") {
				t.Errorf("error %q lacks the federation: prefix", err)
			}
		})
	}
	if n := jkuHits.Load(); n != 0 {
		t.Errorf("jku/x5u target fetched %d times, want 0", n)
	}
	// Boundary: exp + leeway one second after now verifies (T-38).
	if _, err := v.Verify(t.Context(), ti.provider(), rs(with(func(c map[string]any) { c["exp"] = now - 59 }))); err != nil {
		t.Errorf("Verify(exp = now-59s) = %v, want nil (within leeway)", err)
	}
	// One key, no kid: refused unless the provider allows a missing kid.
	one := newTestIssuer(t)
	one.setKeys(jose.JSONWebKey{Key: k.rsa.Public(), Use: "sig"})
	noKID := sign(t, jose.RS256, k.rsa, "", one.claims(clk), nil)
	if _, err := v.Verify(t.Context(), one.provider(), noKID); ReasonOf(err) != ReasonKIDMissing {
		t.Errorf("Verify(no kid, one key) = %v, want %s", err, ReasonKIDMissing)
	}
	lax := one.provider()
	lax.AllowMissingKID = true
	if _, err := v.Verify(t.Context(), lax, noKID); err != nil {
		t.Errorf("Verify(no kid, one key, allow_missing_kid) = %v, want nil", err)
	}
}

// attackCase is one token of the docs/security.md catalogue and the reason
// it must be refused with.
type attackCase struct {
	name  string
	token string
	prov  func(p *storage.Provider)
	want  Reason
}

// verifyAttackCases builds the catalogue of TestVerifyAttacks (T-02–T-45);
// jkuHits counts requests to the server that jku and x5u name.
func verifyAttackCases(t *testing.T, ti *testIssuer, clk *fakeClock) (tests []attackCase, jkuHits *atomic.Int64) {
	t.Helper()
	k := testKeys()
	now := clk.Now().Unix()
	good := func() map[string]any { return ti.claims(clk) }
	with := func(mod func(map[string]any)) map[string]any { c := good(); mod(c); return c }
	rs := func(c any) string { return sign(t, jose.RS256, k.rsa, kidRSA, c, nil) }
	payloadJSON := func(c map[string]any) string { b, _ := json.Marshal(c); return string(b) }

	pubDER, _ := x509.MarshalPKIXPublicKey(k.rsa.Public())
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	pubJWK, _ := json.Marshal(jose.JSONWebKey{Key: k.rsa.Public(), KeyID: kidRSA})
	hs256 := func(secret []byte) string {
		hdr := `{"alg":"HS256","typ":"JWT","kid":"` + kidRSA + `"}`
		e := base64.RawURLEncoding
		input := e.EncodeToString([]byte(hdr)) + "." + e.EncodeToString([]byte(payloadJSON(good())))
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(input))
		return input + "." + e.EncodeToString(m.Sum(nil))
	}
	valid := rs(good())
	parts := strings.Split(valid, ".")

	// jku target: must never be fetched.
	jkuHits = new(atomic.Int64)
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { jkuHits.Add(1) }))
	t.Cleanup(attacker.Close)

	return []attackCase{
		// T-02–T-05 request shape
		{"T-02 100 KB token", valid[:len(valid)-1] + strings.Repeat("A", 100<<10), nil, ReasonTokenTooLarge},
		{"T-03 mostly dots", "a" + strings.Repeat(".", 100000), nil, ReasonTokenTooLarge},
		{"T-03 too many dots", valid + ".x", nil, ReasonTokenMalformed},
		{"T-04 two segments", parts[0] + "." + parts[1], nil, ReasonTokenMalformed},
		{"T-04 five segments (JWE shape)", "a.b.c.d.e", nil, ReasonTokenMalformed},
		{"T-04 empty signature", parts[0] + "." + parts[1] + ".", nil, ReasonTokenMalformed},
		{"T-05 padding", parts[0] + "=." + parts[1] + "." + parts[2], nil, ReasonTokenMalformed},
		{"T-05 plus in signature", parts[0] + "." + parts[1] + "." + strings.Replace(parts[2], parts[2][:1], "+", 1), nil, ReasonTokenMalformed},
		{"T-05 newline in payload", parts[0] + "." + parts[1][:4] + "\n" + parts[1][4:] + "." + parts[2], nil, ReasonTokenMalformed},
		{"T-28 JSON serialization", `{"payload":"` + parts[1] + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`, nil, ReasonTokenMalformed},
		// T-11 alg none
		{"T-11 alg none", rawToken(`{"alg":"none","kid":"rsa-1"}`, payloadJSON(good()), []byte("x")), nil, ReasonAlgNotAllowed},
		{"T-11 alg None", rawToken(`{"alg":"None","kid":"rsa-1"}`, payloadJSON(good()), []byte("x")), nil, ReasonAlgNotAllowed},
		{"T-11 alg NONE", rawToken(`{"alg":"NONE","kid":"rsa-1"}`, payloadJSON(good()), []byte("x")), nil, ReasonAlgNotAllowed},
		{"T-11 alg nOnE", rawToken(`{"alg":"nOnE","kid":"rsa-1"}`, payloadJSON(good()), []byte("x")), nil, ReasonAlgNotAllowed},
		{"T-11 alg none empty signature", rawToken(`{"alg":"none"}`, payloadJSON(good()), nil), nil, ReasonTokenMalformed},
		{"T-11 alg rs256 lower case", rawToken(`{"alg":"rs256","kid":"rsa-1"}`, payloadJSON(good()), []byte("x")), nil, ReasonAlgNotAllowed},
		// T-12 key confusion
		{"T-12 HS256 keyed with RSA public PEM", hs256(pubPEM), nil, ReasonAlgNotAllowed},
		{"T-12 HS256 keyed with RSA public DER", hs256(pubDER), nil, ReasonAlgNotAllowed},
		{"T-12 HS256 keyed with RSA public JWK", hs256(pubJWK), nil, ReasonAlgNotAllowed},
		{"T-12 HS256 even if configured", hs256(pubPEM), func(p *storage.Provider) { p.Algorithms = []string{"HS256", "RS256"} }, ReasonAlgNotAllowed},
		// T-13 alg/key mismatch
		{"T-13 ES256 header on RSA kid", sign(t, jose.ES256, k.ec, kidRSA, good(), nil), nil, ReasonKeyMismatch},
		{"T-13 RS384 with key bound to RS256", sign(t, jose.RS384, k.rsa, kidRSA, good(), nil), nil, ReasonKeyMismatch},
		{"T-13 PS256 where only RS256 configured", sign(t, jose.PS256, k.rsa, kidRSA, good(), nil), func(p *storage.Provider) { p.Algorithms = []string{"RS256"} }, ReasonAlgNotAllowed},
		// T-14–T-21 header
		{"T-14 embedded jwk", sign(t, jose.RS256, k.rsa2, "", good(), map[jose.HeaderKey]any{"jwk": json.RawMessage(pubJWK)}), nil, ReasonHeaderRejected},
		{"T-15 jku elsewhere", sign(t, jose.RS256, k.rsa2, "evil", good(), map[jose.HeaderKey]any{"jku": attacker.URL + "/jwks"}), nil, ReasonHeaderRejected},
		{"T-15 x5u metadata", sign(t, jose.RS256, k.rsa2, "evil", good(), map[jose.HeaderKey]any{"x5u": "http://169.254.169.254/latest"}), nil, ReasonHeaderRejected},
		{"T-15 x5c", sign(t, jose.RS256, k.rsa2, "evil", good(), map[jose.HeaderKey]any{"x5c": []string{"AAAA"}}), nil, ReasonHeaderRejected},
		{"T-16 kid number", signRaw(t, k.rsa, `{"alg":"RS256","kid":7}`, payloadJSON(good())), nil, ReasonHeaderRejected},
		{"T-16 kid 10 KB", signRaw(t, k.rsa, `{"alg":"RS256","kid":"`+strings.Repeat("k", 10<<10)+`"}`, payloadJSON(good())), nil, ReasonHeaderRejected},
		{"T-16 kid path traversal", signRaw(t, k.rsa, `{"alg":"RS256","kid":"../../../../dev/null"}`, payloadJSON(good())), nil, ReasonKIDUnknown},
		{"T-18 kid missing with several keys", sign(t, jose.RS256, k.rsa, "", good(), nil), nil, ReasonKIDMissing},
		{"T-19 crit exp", signRaw(t, k.rsa, `{"alg":"RS256","kid":"rsa-1","crit":["exp"],"exp":1}`, payloadJSON(good())), nil, ReasonHeaderRejected},
		{"T-20 typ at+jwt", signRaw(t, k.rsa, `{"alg":"RS256","kid":"rsa-1","typ":"at+jwt"}`, payloadJSON(good())), nil, ReasonTokenTypeInvalid},
		{"T-21 cty JWT", signRaw(t, k.rsa, `{"alg":"RS256","kid":"rsa-1","cty":"JWT"}`, payloadJSON(good())), nil, ReasonHeaderRejected},
		// T-23–T-27 JSON
		{"T-23 duplicate header alg", signRaw(t, k.rsa, `{"alg":"RS256","alg":"none","kid":"rsa-1"}`, payloadJSON(good())), nil, ReasonTokenMalformed},
		{"T-23 duplicate sub", signRaw(t, k.rsa, `{"alg":"RS256","kid":"rsa-1"}`, strings.Replace(payloadJSON(good()), `"sub":`, `"sub":"admin","sub":`, 1)), nil, ReasonTokenMalformed},
		{"T-24 case-variant exp", signRaw(t, k.rsa, `{"alg":"RS256","kid":"rsa-1"}`, strings.Replace(payloadJSON(good()), `"exp":`, `"EXP":1,"exp":`, 1)), nil, ReasonTokenMalformed},
		{"T-24 case-variant header", signRaw(t, k.rsa, `{"ALG":"none","alg":"RS256","kid":"rsa-1"}`, payloadJSON(good())), nil, ReasonTokenMalformed},
		{"T-24 only upper-case EXP", rs(with(func(c map[string]any) { c["EXP"] = c["exp"]; delete(c, "exp") })), nil, ReasonClaimInvalid},
		{"T-25 depth 40", rs(with(func(c map[string]any) { c["x"] = json.RawMessage(strings.Repeat("[", 40) + strings.Repeat("]", 40)) })), nil, ReasonTokenMalformed},
		{"T-25 array of 10000", rs(with(func(c map[string]any) { c["x"] = make([]int, 10000) })), nil, ReasonTokenTooLarge},
		{"T-25 array of 300", rs(with(func(c map[string]any) { c["x"] = make([]int, 300) })), nil, ReasonTokenMalformed},
		{"T-26 invalid UTF-8", signRaw(t, k.rsa, `{"alg":"RS256","kid":"rsa-1"}`, strings.Replace(payloadJSON(good()), `"acme"`, "\"ac\xffme\"", 1)), nil, ReasonTokenMalformed},
		{"T-26 lone surrogate", signRaw(t, k.rsa, `{"alg":"RS256","kid":"rsa-1"}`, strings.Replace(payloadJSON(good()), `"acme"`, `"ac\ud800me"`, 1)), nil, ReasonTokenMalformed},
		{"T-27 trailing data", signRaw(t, k.rsa, `{"alg":"RS256","kid":"rsa-1"}`, payloadJSON(good())+`{}`), nil, ReasonTokenMalformed},
		// signatures
		{"tampered payload", parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(payloadJSON(with(func(c map[string]any) { c["sub"] = "admin" })))) + "." + parts[2], nil, ReasonSignatureInvalid},
		{"other key under a known kid", sign(t, jose.RS256, k.rsa2, kidRSA, good(), nil), nil, ReasonSignatureInvalid},
		{"T-30 ES256 signature wrong length", func() string {
			s := strings.Split(sign(t, jose.ES256, k.ec, kidEC, good(), nil), ".")
			sig, _ := base64.RawURLEncoding.DecodeString(s[2])
			return s[0] + "." + s[1] + "." + base64.RawURLEncoding.EncodeToString(sig[:63])
		}(), nil, ReasonSignatureInvalid},
		{"T-29 ES256 r=s=0", func() string {
			s := strings.Split(sign(t, jose.ES256, k.ec, kidEC, good(), nil), ".")
			return s[0] + "." + s[1] + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 64))
		}(), nil, ReasonSignatureInvalid},
		// T-37–T-44 claims
		{"T-37 exp missing", rs(with(func(c map[string]any) { delete(c, "exp") })), nil, ReasonClaimInvalid},
		{"T-38 expired", rs(with(func(c map[string]any) { c["exp"] = now - 120 })), nil, ReasonTokenExpired},
		{"T-38 exp + leeway == now", rs(with(func(c map[string]any) { c["exp"] = now - 60 })), nil, ReasonTokenExpired},
		{"T-39 ten-year lifetime", rs(with(func(c map[string]any) { c["exp"] = now + 10*365*86400 })), nil, ReasonTokenLifetimeTooLong},
		{"T-40 iat missing", rs(with(func(c map[string]any) { delete(c, "iat") })), nil, ReasonClaimInvalid},
		{"T-40 iat in the future", rs(with(func(c map[string]any) { c["iat"] = now + 120 })), nil, ReasonTokenNotYetValid},
		{"T-40 iat older than 24 h", rs(with(func(c map[string]any) { c["iat"] = now - 25*3600; c["nbf"] = now - 25*3600 })), nil, ReasonTokenTooOld},
		{"T-41 nbf in the future", rs(with(func(c map[string]any) { c["nbf"] = now + 120 })), nil, ReasonTokenNotYetValid},
		{"T-42 exp as string", rs(with(func(c map[string]any) { c["exp"] = fmt.Sprint(now + 300) })), nil, ReasonClaimInvalid},
		{"T-42 exp as float", rs(with(func(c map[string]any) { c["exp"] = float64(now) + 300.5 })), nil, ReasonClaimInvalid},
		{"T-42 exp negative", rs(with(func(c map[string]any) { c["exp"] = -1 })), nil, ReasonClaimInvalid},
		{"T-42 exp 1e400", signRaw(t, k.rsa, `{"alg":"RS256","kid":"rsa-1"}`, strings.Replace(payloadJSON(good()), `"exp":`, `"exp":1e400,"x":`, 1)), nil, ReasonTokenMalformed},
		{"T-42 exp 2^63", rs(with(func(c map[string]any) { c["exp"] = uint64(1) << 63 })), nil, ReasonClaimInvalid},
		{"T-42 exp null", rs(with(func(c map[string]any) { c["exp"] = nil })), nil, ReasonClaimInvalid},
		{"T-43 aud missing", rs(with(func(c map[string]any) { delete(c, "aud") })), nil, ReasonClaimInvalid},
		{"T-43 aud other", rs(with(func(c map[string]any) { c["aud"] = "other" })), nil, ReasonAudienceMismatch},
		{"T-43 aud empty list", rs(with(func(c map[string]any) { c["aud"] = []string{} })), nil, ReasonClaimInvalid},
		{"T-43 aud prefix", rs(with(func(c map[string]any) { c["aud"] = "st" })), nil, ReasonAudienceMismatch},
		{"T-43 aud superstring", rs(with(func(c map[string]any) { c["aud"] = "sts-other" })), nil, ReasonAudienceMismatch},
		{"T-43 aud non-string member", rs(with(func(c map[string]any) { c["aud"] = []any{"sts", 1} })), nil, ReasonClaimInvalid},
		{"T-43 provider without audiences", rs(good()), func(p *storage.Provider) { p.Audiences = nil }, ReasonAudienceMismatch},
		{"T-44 iss trailing slash", rs(with(func(c map[string]any) { c["iss"] = ti.URL + "/" })), nil, ReasonIssuerMismatch},
		{"T-44 iss upper case", rs(with(func(c map[string]any) { c["iss"] = strings.ToUpper(ti.URL) })), nil, ReasonIssuerMismatch},
		{"T-44 iss https", rs(with(func(c map[string]any) { c["iss"] = strings.Replace(ti.URL, "http:", "https:", 1) })), nil, ReasonIssuerMismatch},
		{"T-45 iss of another provider", rs(good()), func(p *storage.Provider) { p.Issuer = "https://other.example" }, ReasonIssuerMismatch},
		{"sub missing", rs(with(func(c map[string]any) { delete(c, "sub") })), nil, ReasonClaimInvalid},
		{"disabled provider", rs(good()), func(p *storage.Provider) { p.Disabled = true }, ReasonProviderDisabled},
	}, jkuHits
}

// TestVerifyMultipleAudiences: a token with several aud values is refused
// even when one of them is accepted, unless the provider allows it.
func TestVerifyMultipleAudiences(t *testing.T) {
	clk := newFakeClock()
	ti := newTestIssuer(t)
	v := testVerifier(clk)
	c := ti.claims(clk)
	c["aud"] = []any{"sts", "https://other.example"}
	tok := sign(t, jose.RS256, testKeys().rsa, kidRSA, c, nil)
	if _, err := v.Verify(t.Context(), ti.provider(), tok); ReasonOf(err) != ReasonAudienceMismatch {
		t.Errorf("Verify(two audiences) = %v, want %s", err, ReasonAudienceMismatch)
	}
	c["aud"] = []any{"sts"}
	if _, err := v.Verify(t.Context(), ti.provider(), sign(t, jose.RS256, testKeys().rsa, kidRSA, c, nil)); err != nil {
		t.Errorf("Verify(aud array of one) = %v, want nil", err)
	}
	p := ti.provider()
	p.AllowMultipleAudiences = true
	if _, err := v.Verify(t.Context(), p, tok); err != nil {
		t.Errorf("Verify(two audiences, allow_multiple_audiences) = %v, want nil", err)
	}
}

// TestVerifyKeyWithoutAlgIsPinned: a JWK without alg verifies only its key
// type's default algorithm (RS256 for RSA), never PS256 too.
func TestVerifyKeyWithoutAlgIsPinned(t *testing.T) {
	clk := newFakeClock()
	ti := newTestIssuer(t)
	ti.setKeys(jose.JSONWebKey{Key: testKeys().rsa.Public(), KeyID: kidRSA, Use: "sig"},
		jose.JSONWebKey{Key: testKeys().ec.Public(), KeyID: kidEC, Use: "sig"})
	v := testVerifier(clk)
	if _, err := v.Verify(t.Context(), ti.provider(), sign(t, jose.RS256, testKeys().rsa, kidRSA, ti.claims(clk), nil)); err != nil {
		t.Errorf("RS256 with an alg-less RSA key = %v, want nil", err)
	}
	if _, err := v.Verify(t.Context(), ti.provider(), sign(t, jose.PS256, testKeys().rsa, kidRSA, ti.claims(clk), nil)); ReasonOf(err) != ReasonKeyMismatch {
		t.Errorf("PS256 with an alg-less RSA key = %v, want %s", err, ReasonKeyMismatch)
	}
	if _, err := v.Verify(t.Context(), ti.provider(), sign(t, jose.ES256, testKeys().ec, kidEC, ti.claims(clk), nil)); err != nil {
		t.Errorf("ES256 with an alg-less P-256 key = %v, want nil", err)
	}
}
