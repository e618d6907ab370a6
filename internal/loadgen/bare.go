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

// Bare is the comparison handler of the benchmark target (docs/performance.md): it
// answers the same form POST as the exchange with the least work a token
// service can do, verifying one RS256 JWT against a fixed JWKS (iss, aud,
// exp) and signing one ES256 JWT. No policy, storage, audit, rate limit,
// logging or metrics: the floor a full exchange is measured against.
type Bare struct {
	keys     jose.JSONWebKeySet
	issuer   string
	audience string
	signer   jose.Signer
}

// NewBare returns a Bare handler trusting jwks for tokens from issuer to
// audience; it signs with a fresh P-256 key.
func NewBare(jwks []byte, issuer, audience string) (*Bare, error) {
	b := &Bare{issuer: issuer, audience: audience}
	if err := json.Unmarshal(jwks, &b.keys); err != nil {
		return nil, fmt.Errorf("bare: jwks: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	b.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", "bare-1"))
	if err != nil {
		return nil, err
	}
	return b, nil
}

func (b *Bare) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !readForm(w, r) {
		return
	}
	tok, err := jwt.ParseSigned(r.PostForm.Get("subject_token"), []jose.SignatureAlgorithm{jose.RS256})
	if err != nil || len(tok.Headers) != 1 {
		http.Error(w, "malformed token", http.StatusBadRequest)
		return
	}
	keys := b.keys.Key(tok.Headers[0].KeyID)
	if len(keys) == 0 {
		http.Error(w, "unknown kid", http.StatusBadRequest)
		return
	}
	var claims jwt.Claims
	if err := tok.Claims(keys[0].Key, &claims); err != nil {
		http.Error(w, "bad signature", http.StatusBadRequest)
		return
	}
	now := time.Now()
	if err := claims.ValidateWithLeeway(jwt.Expected{Issuer: b.issuer, AnyAudience: jwt.Audience{b.audience}, Time: now}, time.Minute); err != nil {
		http.Error(w, "invalid claims", http.StatusBadRequest)
		return
	}
	out, err := jwt.Signed(b.signer).Claims(jwt.Claims{
		Issuer: "bare", Subject: claims.Subject, Audience: jwt.Audience{r.PostForm.Get("audience")},
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(15 * time.Minute)), ID: rand.Text(),
	}).Serialize()
	if err != nil {
		http.Error(w, "sign", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token": out, "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
		"token_type": "Bearer", "expires_in": 900,
	})
}
