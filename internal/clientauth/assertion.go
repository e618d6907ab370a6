package clientauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
)

// assertionAlgs are the only algorithms a client assertion may use:
// asymmetric ones, so none and HS* (key confusion) never verify
// (docs/security.md T-11, T-12).
var assertionAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// AssertionAlgorithms are the names of assertionAlgs, for discovery's
// *_endpoint_auth_signing_alg_values_supported: listing fewer than are
// taken turns away a client that must sign with one left out (PS256
// under FAPI), listing more would promise what is refused
// (docs/security.md T-217).
func AssertionAlgorithms() []string {
	out := make([]string, len(assertionAlgs))
	for i, a := range assertionAlgs {
		out[i] = string(a)
	}
	return out
}

// assertionClaims are the claims RFC 7523 §3 requires of a client
// assertion.
type assertionClaims struct {
	Issuer    string           `json:"iss"`
	Subject   string           `json:"sub"`
	Audience  jwt.Audience     `json:"aud"`
	Expiry    *jwt.NumericDate `json:"exp"`
	NotBefore *jwt.NumericDate `json:"nbf"`
	IssuedAt  *jwt.NumericDate `json:"iat"`
	ID        string           `json:"jti"`
}

// privateKeyJWT handles private_key_jwt (RFC 7523 §2.2, §3): a JWT signed
// with a key the client registered, whose iss and sub are its client_id,
// whose one aud is our issuer or token endpoint, short-lived and used once.
func (a *Authenticator) privateKeyJWT(ctx context.Context, form url.Values) (*Result, error) {
	if form.Get("client_assertion_type") != oauth2.ClientAssertionTypeJWTBearer {
		return nil, invalidClient(errors.New("unsupported client_assertion_type"))
	}
	raw := form.Get("client_assertion")
	// Cheap shape checks before any decoding (docs/security.md T-02, T-03, T-04).
	if len(raw) > maxAssertionLen || strings.Count(raw, ".") != 2 {
		return nil, invalidClient(errors.New("client assertion malformed"))
	}
	tok, err := jwt.ParseSigned(raw, assertionAlgs)
	if err != nil {
		return nil, invalidClient(fmt.Errorf("client assertion: %w", err))
	}
	h := tok.Headers[0]
	if err := checkHeader(raw[:strings.IndexByte(raw, '.')]); err != nil {
		return nil, err
	}
	var unverified assertionClaims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, invalidClient(fmt.Errorf("client assertion claims: %w", err))
	}
	// RFC 7523 §3 item 2: for client authentication sub is the client_id.
	id := unverified.Subject
	if cid := form.Get("client_id"); cid != "" && cid != id {
		return nil, invalidClient(errors.New("client_id differs from assertion sub"))
	}
	c, err := a.loadClient(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.AuthMethod != oauth2.AuthMethodPrivateKeyJWT {
		return nil, invalidClient(errors.New("client does not use private_key_jwt"))
	}
	keys, err := a.clientKeys(ctx, c, h.KeyID)
	if err != nil {
		return nil, err
	}
	var claims assertionClaims
	verified := false
	for _, k := range keys {
		if k.Algorithm != "" && k.Algorithm != h.Algorithm {
			continue
		}
		if err := tok.Claims(k.Key, &claims); err == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, invalidClient(errors.New("client assertion signature invalid"))
	}
	earliest, exp, err := a.checkAssertion(&c, &claims)
	if err != nil {
		return nil, err
	}
	// RFC 7523 §3 item 7: jti single use, across replicas through the
	// shared used-jti store (docs/security.md T-48). Namespaced by client so
	// two clients' jti never collide. One that may have been presented
	// before a restore counts as used (F-62).
	switch err := a.Store.MarkUsed(ctx, "client_assertion:"+c.ID+":"+claims.ID, earliest, exp); {
	case errors.Is(err, storage.ErrAlreadyExists):
		return nil, invalidClient(errors.New("client assertion replayed"))
	case err != nil:
		return nil, unavailable(err)
	}
	return &Result{Client: c, Method: oauth2.AuthMethodPrivateKeyJWT}, nil
}

// refusedHeaders name keys or processing the token itself chooses: an
// attacker's key (jwk, jku, x5u, x5c; docs/security.md T-14, T-15) or
// extensions we do not implement (crit, T-19).
var refusedHeaders = []string{"jwk", "jku", "x5u", "x5c", "crit", "b64", "zip"}

func checkHeader(seg string) error {
	b, err := base64.RawURLEncoding.Strict().DecodeString(seg)
	if err != nil {
		return invalidClient(errors.New("assertion header encoding"))
	}
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(b, &hdr); err != nil {
		return invalidClient(errors.New("assertion header json"))
	}
	for _, name := range refusedHeaders {
		if _, ok := hdr[name]; ok {
			return invalidClient(fmt.Errorf("assertion header %q refused", name))
		}
	}
	return nil
}

// checkAssertion checks the claims of a verified assertion and returns
// the earliest moment it can have been presented (iat less the leeway;
// without iat, its exp less the longest lifetime accepted) and how long
// its jti must be remembered (docs/security.md F-62).
func (a *Authenticator) checkAssertion(c *storage.Client, cl *assertionClaims) (earliest, until time.Time, err error) {
	now := a.now()
	leeway := a.Leeway
	if leeway == 0 {
		leeway = DefaultLeeway
	}
	maxLife := a.MaxAssertionLifetime
	if maxLife == 0 {
		maxLife = DefaultMaxAssertionLifetime
	}
	// We must be the one audience: an aud that also names someone else
	// may have been written by another authorization server that made the
	// client sign for our endpoint (audience injection,
	// draft-ietf-oauth-rfc7523bis; docs/security.md T-125).
	audOK := len(cl.Audience) == 1 && cl.Audience[0] != "" &&
		(cl.Audience[0] == a.Issuer || !a.IssuerAudienceOnly && cl.Audience[0] == a.TokenEndpoint)
	var start time.Time
	switch {
	case cl.Issuer != c.ID || cl.Subject != c.ID:
		return time.Time{}, time.Time{}, invalidClient(errors.New("assertion iss/sub is not the client"))
	case !audOK:
		return time.Time{}, time.Time{}, invalidClient(fmt.Errorf("assertion aud %q", []string(cl.Audience)))
	case cl.Expiry == nil:
		return time.Time{}, time.Time{}, invalidClient(errors.New("assertion without exp"))
	case cl.ID == "" || len(cl.ID) > 256 || strings.IndexByte(cl.ID, 0) >= 0:
		// A jti holding a NUL is no usable one: no stored text holds it
		// (PostgreSQL refuses it), so it could never be spent, and the
		// store's refusal would read as an outage, a 503 retried for ever
		// (docs/security.md T-240).
		return time.Time{}, time.Time{}, invalidClient(errors.New("assertion jti missing, too long or holding a NUL"))
	case !now.Before(cl.Expiry.Time().Add(leeway)):
		return time.Time{}, time.Time{}, invalidClient(errors.New("assertion expired"))
	case cl.NotBefore != nil && now.Add(leeway).Before(cl.NotBefore.Time()):
		return time.Time{}, time.Time{}, invalidClient(errors.New("assertion not yet valid"))
	case cl.IssuedAt != nil && now.Add(leeway).Before(cl.IssuedAt.Time()):
		return time.Time{}, time.Time{}, invalidClient(errors.New("assertion issued in the future"))
	}
	start = now
	if cl.IssuedAt != nil {
		start = cl.IssuedAt.Time()
	}
	if cl.Expiry.Time().Sub(start) > maxLife {
		// A long-lived assertion is a reusable credential; keep it short.
		return time.Time{}, time.Time{}, invalidClient(fmt.Errorf("assertion lifetime above %s", maxLife))
	}
	earliest = cl.Expiry.Time().Add(-maxLife)
	if cl.IssuedAt != nil {
		earliest = cl.IssuedAt.Time().Add(-leeway)
	}
	return earliest, cl.Expiry.Time().Add(leeway), nil
}
