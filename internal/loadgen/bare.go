package loadgen

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Bare is the floor of the token exchange (docs/performance.md): it answers
// the same form POST as the exchange with the least work a token service
// can do, with the standard library only: verify one RS256 JWT
// (crypto/rsa VerifyPKCS1v15) against a fixed JWKS (iss, aud, exp, nbf)
// and sign one ES256 JWT (crypto/ecdsa Sign), encoding/json for both. No
// policy, storage, audit, rate limit, logging or metrics.
type Bare struct {
	keys     stdKeys
	issuer   string
	audience string
	signer   *es256Signer
}

// NewBare returns a Bare handler trusting jwks for tokens from issuer to
// audience; it signs with a fresh P-256 key.
func NewBare(jwks []byte, issuer, audience string) (*Bare, error) {
	keys, err := parseJWKS(jwks)
	if err != nil {
		return nil, fmt.Errorf("bare: %w", err)
	}
	s, err := newES256Signer("bare-1", "at+jwt")
	if err != nil {
		return nil, err
	}
	return &Bare{keys: keys, issuer: issuer, audience: audience, signer: s}, nil
}

// exchangeClaims are the claims of the floor's exchanged token.
type exchangeClaims struct {
	Iss string `json:"iss"`
	Sub string `json:"sub"`
	Aud string `json:"aud,omitempty"`
	Iat int64  `json:"iat"`
	Exp int64  `json:"exp"`
	Jti string `json:"jti"`
}

func (b *Bare) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !readForm(w, r) {
		return
	}
	now := time.Now()
	claims, err := verifyJWT(b.keys, r.PostForm.Get("subject_token"), "RS256", b.issuer, b.audience, now)
	if err != nil {
		http.Error(w, "invalid subject token: "+err.Error(), http.StatusBadRequest)
		return
	}
	out, err := b.signer.sign(exchangeClaims{Iss: "bare", Sub: claims.Sub, Aud: r.PostForm.Get("audience"),
		Iat: now.Unix(), Exp: now.Add(15 * time.Minute).Unix(), Jti: rand.Text()})
	if err != nil {
		http.Error(w, "sign", http.StatusInternalServerError)
		return
	}
	writeJSON(w, tokenResponse{AccessToken: out, IssuedTokenType: "urn:ietf:params:oauth:token-type:access_token", TokenType: "Bearer", ExpiresIn: 900})
}

// tokenResponse is RFC 6749 §5.1 (and RFC 8693 §2.2.1's issued_token_type).
type tokenResponse struct {
	AccessToken     string `json:"access_token"`
	IssuedTokenType string `json:"issued_token_type,omitempty"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int    `json:"expires_in"`
}

// writeJSON answers 200 with v as JSON, not to be cached.
func writeJSON(w http.ResponseWriter, v any) {
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Cache-Control"] = []string{"no-store"}
	_ = json.NewEncoder(w).Encode(v)
}
