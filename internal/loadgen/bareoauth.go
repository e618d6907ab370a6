package loadgen

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// maxForm bounds the request body the bare handlers read, as the server's
// own body limit does.
const maxForm = 64 << 10

// readForm does what every bare handler does first and what any endpoint
// must: POST only, a bounded body, a parsed form. It answers the error
// itself and reports whether to go on.
func readForm(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return false
	}
	return true
}

// leeway is the clock skew the bare verification tolerates on exp and nbf.
const leeway = time.Minute

// BareVerify is the comparison handler for introspection (docs/performance.md, target
// ≥ 80 % of its throughput): it reads the same form POST as an RFC 7662
// introspection and verifies the one ES256 JWT in the token parameter
// against a fixed JWKS (signature, iss, exp and nbf with leeway, any
// audience). No client authentication, revocation, storage, logging or
// metrics: the Authorization header the generator sends is ignored.
type BareVerify struct {
	keys   jose.JSONWebKeySet
	issuer string
}

// NewBareVerify returns a BareVerify trusting the ES256 keys of jwks (the
// server's /.well-known/jwks.json) for tokens from issuer.
func NewBareVerify(jwks []byte, issuer string) (*BareVerify, error) {
	b := &BareVerify{issuer: issuer}
	if err := json.Unmarshal(jwks, &b.keys); err != nil {
		return nil, fmt.Errorf("bare verify: jwks: %w", err)
	}
	if len(b.keys.Keys) == 0 {
		return nil, fmt.Errorf("bare verify: jwks has no keys")
	}
	return b, nil
}

// inactive is the whole answer for any token that does not verify
// (RFC 7662 §2.2: no other member is returned).
var inactive = []byte(`{"active":false}` + "\n")

func (b *BareVerify) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !readForm(w, r) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	claims, ok := b.verify(r.PostForm.Get("token"), time.Now())
	if !ok {
		_, _ = w.Write(inactive)
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"active": true, "sub": claims.Subject, "exp": claims.Expiry, "aud": claims.Audience})
}

// verify checks raw's ES256 signature with the key its kid names, then iss,
// exp (required) and nbf; the audience may be anything.
func (b *BareVerify) verify(raw string, now time.Time) (*jwt.Claims, bool) {
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil || len(tok.Headers) != 1 {
		return nil, false
	}
	keys := b.keys.Key(tok.Headers[0].KeyID)
	if len(keys) == 0 {
		return nil, false
	}
	var claims jwt.Claims
	if err := tok.Claims(keys[0].Key, &claims); err != nil || claims.Expiry == nil {
		return nil, false
	}
	if err := claims.ValidateWithLeeway(jwt.Expected{Issuer: b.issuer, Time: now}, leeway); err != nil {
		return nil, false
	}
	return &claims, true
}

// BareSign is the comparison handler for client_credentials (docs/performance.md,
// target ≤ 1.5× its CPU per request): it reads the same form POST as the
// grant and signs one ES256 access JWT (RFC 9068 typ at+jwt) with a fresh
// P-256 key. No client authentication, storage, rate limits, audit,
// logging or metrics: the Authorization header is ignored.
type BareSign struct {
	signer jose.Signer
}

// NewBareSign returns a BareSign with a fresh P-256 key.
func NewBareSign() (*BareSign, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", "bare-1"))
	if err != nil {
		return nil, err
	}
	return &BareSign{signer: s}, nil
}

// accessClaims is what BareSign puts in its token: the RFC 9068 §2.2
// members an access JWT carries.
type accessClaims struct {
	jwt.Claims
	ClientID string `json:"client_id"`
	Scope    string `json:"scope,omitempty"`
}

func (b *BareSign) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !readForm(w, r) {
		return
	}
	now := time.Now()
	tok, err := jwt.Signed(b.signer).Claims(accessClaims{
		Claims: jwt.Claims{
			Issuer: "bare", Subject: "bare-subject", Audience: jwt.Audience{"bare"},
			IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(15 * time.Minute)), ID: rand.Text(),
		},
		ClientID: "bare", Scope: r.PostForm.Get("scope"),
	}).Serialize()
	if err != nil {
		http.Error(w, "sign", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 900})
}
