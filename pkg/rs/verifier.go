package rs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Defaults of Verifier.
const (
	DefaultRefreshInterval = time.Hour
	DefaultMinRefetch      = 30 * time.Second
	DefaultLeeway          = 60 * time.Second
	DefaultFetchTimeout    = 5 * time.Second
	maxJWKSSize            = 256 << 10
	maxTokenSize           = 16 << 10
)

// Errors returned by Verify; wrap-checked with errors.Is.
var (
	ErrInvalidToken = errors.New("rs: invalid token")
	ErrKeys         = errors.New("rs: keys unavailable")
)

// Claims are the verified claims of an sts access token that a resource
// server usually needs.
type Claims struct {
	Issuer    string           `json:"iss"`
	Subject   string           `json:"sub"`
	Audience  jwt.Audience     `json:"aud"`
	Expiry    *jwt.NumericDate `json:"exp"`
	NotBefore *jwt.NumericDate `json:"nbf"`
	IssuedAt  *jwt.NumericDate `json:"iat"`
	ID        string           `json:"jti"`
	ClientID  string           `json:"client_id"`
	Scope     string           `json:"scope"`
	OrgID     string           `json:"org_id"`
	Pool      string           `json:"pool"`
	Provider  string           `json:"provider"`
	CAB       json.RawMessage  `json:"cab,omitempty"`

	// Boundary is the parsed cab claim, nil when the token has none.
	Boundary *AccessBoundary `json:"-"`
}

// Allowed reports whether the token's Credential Access Boundary makes
// permission available on resource. A token without a boundary is not
// restricted by one (true): the resource server's own authorization of
// the subject and scope still applies.
func (c *Claims) Allowed(resource, permission string) bool {
	if c.CAB == nil {
		return true
	}
	return c.Boundary != nil && c.Boundary.Allows(resource, permission)
}

// Verifier verifies sts access tokens. Set Issuer and Audience; the other
// fields have defaults. It is safe for concurrent use.
type Verifier struct {
	// Issuer is the exact iss (the sts issuer URL); required.
	Issuer string
	// Audience is this resource server's audience; required.
	Audience string
	// OrgID, when set, is the organization whose tokens are accepted: a
	// token whose org_id is another (or none) is ErrInvalidToken. Set it
	// whenever the sts serves more than one organization: an audience
	// is not owned by one, so another organization's pools and clients
	// can be given this Audience and mint tokens for it with a subject
	// and scopes of their own choosing (docs/security.md A-63).
	OrgID string
	// JWKSURL defaults to Issuer + "/.well-known/jwks.json".
	JWKSURL string
	// HTTPClient fetches the JWKS; default http.DefaultClient.
	HTTPClient *http.Client
	// FetchTimeout bounds each JWKS fetch whatever HTTPClient is, 0 means
	// DefaultFetchTimeout.
	FetchTimeout time.Duration
	// RefreshInterval is how long a fetched key set is used before it is
	// refetched; MinRefetch spaces refetches for unknown kids.
	RefreshInterval time.Duration
	MinRefetch      time.Duration
	Leeway          time.Duration
	Now             func() time.Time

	mu       sync.Mutex // guards the fields below, never held across a fetch
	keys     *jose.JSONWebKeySet
	fetched  time.Time  // when keys was fetched
	tried    time.Time  // when the last fetch started
	fetchErr error      // the last fetch's error, nil after a good one
	inflight *fetchCall // the fetch under way, nil when none is
}

var algorithms = []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.EdDSA}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// Verify checks raw: compact JWS with typ at+jwt (RFC 9068 §4), a key from
// the issuer's JWKS, exact iss, Audience in aud, exp/nbf with leeway, and
// org_id when OrgID is set.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	// Both are required, checked before any key work. go-jose skips the
	// iss check when the expected issuer is empty, so without Issuer any
	// iss signed by a key at JWKSURL would pass (docs/security.md T-76).
	if v.Issuer == "" || v.Audience == "" {
		return nil, fmt.Errorf("%w: verifier needs Issuer and Audience", ErrInvalidToken)
	}
	if len(raw) > maxTokenSize {
		return nil, fmt.Errorf("%w: too large", ErrInvalidToken)
	}
	tok, err := jwt.ParseSigned(raw, algorithms)
	if err != nil || len(tok.Headers) != 1 {
		return nil, fmt.Errorf("%w: malformed", ErrInvalidToken)
	}
	h := tok.Headers[0]
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "at+jwt" {
		return nil, fmt.Errorf("%w: typ is not at+jwt", ErrInvalidToken)
	}
	key, err := v.key(ctx, h.KeyID)
	if err != nil {
		return nil, err
	}
	var c Claims
	if err := tok.Claims(key.Key, &c); err != nil {
		return nil, fmt.Errorf("%w: signature", ErrInvalidToken)
	}
	leeway := v.Leeway
	if leeway == 0 {
		leeway = DefaultLeeway
	}
	now := v.now()
	if c.Expiry == nil {
		return nil, fmt.Errorf("%w: exp missing", ErrInvalidToken)
	}
	// iss, aud, and nbf (RFC 7519 §4.1.5, docs/security.md T-41), exp and
	// iat within the leeway.
	exp := jwt.Expected{Issuer: v.Issuer, AnyAudience: jwt.Audience{v.Audience}, Time: now}
	std := jwt.Claims{Issuer: c.Issuer, Audience: c.Audience, Expiry: c.Expiry, NotBefore: c.NotBefore, IssuedAt: c.IssuedAt}
	if err := std.ValidateWithLeeway(exp, leeway); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	// Invalid on and after exp (RFC 7519 §4.1.4) plus the leeway, the
	// boundary sts's own verifier keeps (docs/security.md T-38); go-jose
	// still accepts a token at exactly exp + leeway.
	if !now.Before(c.Expiry.Time().Add(leeway)) {
		return nil, fmt.Errorf("%w: expired", ErrInvalidToken)
	}
	if v.OrgID != "" && c.OrgID != v.OrgID {
		return nil, fmt.Errorf("%w: org_id is not this resource server's organization", ErrInvalidToken)
	}
	if c.CAB != nil {
		if c.Boundary, err = ParseBoundary(c.CAB); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
		}
	}
	return &c, nil
}

// Allowed verifies raw and reports whether it may use permission on
// resource (see [Claims.Allowed]). A token that does not verify is an
// error, never a false.
func (v *Verifier) Allowed(ctx context.Context, raw, resource, permission string) (bool, error) {
	c, err := v.Verify(ctx, raw)
	if err != nil {
		return false, err
	}
	return c.Allowed(resource, permission), nil
}
