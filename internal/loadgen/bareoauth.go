package loadgen

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"net/url"
	"time"
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

// BareVerify is the floor of introspection (docs/performance.md): it reads
// the same form POST as an RFC 7662 introspection and verifies the one
// ES256 JWT in the token parameter (crypto/ecdsa Verify) against a fixed
// JWKS (signature, iss, exp and nbf with leeway, any audience). No client
// authentication, revocation, storage, logging or metrics: the
// Authorization header the generator sends is ignored.
type BareVerify struct {
	keys   stdKeys
	issuer string
}

// NewBareVerify returns a BareVerify trusting the ES256 keys of jwks (the
// server's /.well-known/jwks.json) for tokens from issuer.
func NewBareVerify(jwks []byte, issuer string) (*BareVerify, error) {
	keys, err := parseJWKS(jwks)
	if err != nil {
		return nil, fmt.Errorf("bare verify: %w", err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("bare verify: jwks has no keys")
	}
	return &BareVerify{keys: keys, issuer: issuer}, nil
}

// inactive is the whole answer for any token that does not verify
// (RFC 7662 §2.2: no other member is returned).
var inactive = []byte(`{"active":false}` + "\n")

// introspection is the RFC 7662 §2.2 answer for an active token.
type introspection struct {
	Active bool     `json:"active"`
	Sub    string   `json:"sub"`
	Exp    int64    `json:"exp"`
	Aud    audience `json:"aud"`
}

func (b *BareVerify) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !readForm(w, r) {
		return
	}
	c, err := verifyJWT(b.keys, r.PostForm.Get("token"), "ES256", b.issuer, "", time.Now())
	if err != nil {
		h := w.Header()
		h["Content-Type"] = []string{"application/json"}
		h["Cache-Control"] = []string{"no-store"}
		_, _ = w.Write(inactive)
		return
	}
	var aud any = c.Aud
	if len(c.Aud) == 1 {
		aud = c.Aud[0]
	}
	writeJSON(w, map[string]any{"active": true, "sub": c.Sub, "exp": *c.Exp, "aud": aud})
}

// BareSign is the floor of client_credentials (docs/performance.md): it
// reads the same form POST as the grant, authenticates the client with
// HTTP Basic (RFC 6749 §2.3.1: form-urlencoded id and secret) by comparing
// the SHA-256 of the secret with the expected digest in constant time, and
// signs one ES256 access JWT (RFC 9068 typ at+jwt) with a fresh P-256 key.
// No storage, rate limits, audit, logging or metrics.
type BareSign struct {
	clientID string
	digest   [sha256.Size]byte
	signer   *es256Signer
}

// NewBareSign returns a BareSign accepting clientID with secret, with a
// fresh P-256 key. Only the secret's digest is kept.
func NewBareSign(clientID, secret string) (*BareSign, error) {
	s, err := newES256Signer("bare-1", "at+jwt")
	if err != nil {
		return nil, err
	}
	return &BareSign{clientID: clientID, digest: sha256.Sum256([]byte(secret)), signer: s}, nil
}

// accessClaims is what BareSign puts in its token: the RFC 9068 §2.2
// members an access JWT carries.
type accessClaims struct {
	Iss      string `json:"iss"`
	Sub      string `json:"sub"`
	Aud      string `json:"aud"`
	Iat      int64  `json:"iat"`
	Exp      int64  `json:"exp"`
	Jti      string `json:"jti"`
	ClientID string `json:"client_id"`
	Scope    string `json:"scope,omitempty"`
}

// authenticate checks the HTTP Basic client credentials.
func (b *BareSign) authenticate(r *http.Request) bool {
	id, sec, ok := r.BasicAuth()
	if !ok {
		return false
	}
	id, err1 := url.QueryUnescape(id)
	sec, err2 := url.QueryUnescape(sec)
	if err1 != nil || err2 != nil {
		return false
	}
	d := sha256.Sum256([]byte(sec))
	return subtle.ConstantTimeCompare(d[:], b.digest[:])&subtle.ConstantTimeCompare([]byte(id), []byte(b.clientID)) == 1
}

func (b *BareSign) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !readForm(w, r) {
		return
	}
	if !b.authenticate(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="bare"`)
		http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
		return
	}
	now := time.Now()
	tok, err := b.signer.sign(accessClaims{Iss: "bare", Sub: "bare-subject", Aud: "bare",
		Iat: now.Unix(), Exp: now.Add(15 * time.Minute).Unix(), Jti: rand.Text(),
		ClientID: b.clientID, Scope: r.PostForm.Get("scope")})
	if err != nil {
		http.Error(w, "sign", http.StatusInternalServerError)
		return
	}
	writeJSON(w, tokenResponse{AccessToken: tok, TokenType: "Bearer", ExpiresIn: 900})
}
