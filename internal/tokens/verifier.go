package tokens

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"time"

	josejson "github.com/go-jose/go-jose/v4/json"

	"github.com/opensts/sts/internal/jws"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/sts"
)

// Limits on what we parse before the signature is checked.
const (
	// MaxTokenSize caps a token before any decoding (docs/security.md T-02,
	// CVE-2025-30204): 16 KiB, docs/design.md#limits.
	MaxTokenSize = 16 << 10
	// maxKIDLen caps the kid header (docs/security.md T-16).
	maxKIDLen = 256
	// DefaultLeeway is the clock skew allowed on exp, nbf and iat.
	DefaultLeeway = 60 * time.Second
	// DefaultMaxLifetime is the longest exp − iat we accept (docs/design.md#limits).
	DefaultMaxLifetime = 12 * time.Hour
)

// keyLoader is a key set that can look in storage again for a kid it does
// not know (*signer.Manager: a forced rotation on another replica); err is
// set when it could not look (storage down).
type keyLoader interface {
	ResolveKey(ctx context.Context, kid string) (_ signer.PublicKey, ok bool, err error)
}

// allowedHeaders is the whole protected header of the tokens we mint.
// Anything else (crit, jwk, jku, x5u, x5c, cty, b64, zip, …) is refused:
// we never use it, and each is a known attack surface (docs/security.md T-14,
// T-15, T-19, T-21).
var allowedHeaders = map[string]bool{"alg": true, "kid": true, "typ": true}

// ourAlgorithms are the only algorithms any of our keys can have: a header
// alg outside it is refused before any key is looked at, so none and HS*
// can never be accepted (docs/security.md T-11, T-12).
var ourAlgorithms = map[string]bool{signer.ES256: true, signer.RS256: true, signer.EdDSA: true}

// Verifier verifies our own access tokens. Fill the exported fields; it is
// safe for concurrent use.
type Verifier struct {
	// Keys resolves kids to our published keys (next, active, retired).
	Keys signer.KeySet
	// Issuer is the exact iss our tokens carry; compared byte for byte,
	// so a trailing slash or another case differs (docs/security.md T-44).
	Issuer string
	// Leeway is the clock skew allowed; 0 means DefaultLeeway.
	Leeway time.Duration
	// MaxLifetime bounds exp − iat; 0 means DefaultMaxLifetime.
	MaxLifetime time.Duration
	// Revocations is consulted after every other check passed. nil skips
	// the check; production wires StoreRevocations or a cache over it.
	Revocations RevocationChecker
	// Sources is consulted last: a token whose principal is disabled or
	// deleted, or whose personal access token is deleted or regenerated,
	// is refused. nil skips the check; production wires StoreSources.
	Sources SourceChecker
	// Now is the clock; it defaults to time.Now.
	Now func() time.Time
}

// VerifyAccessToken verifies raw as one of our access tokens for audience
// and returns its claims. Errors: [sts.Unauthenticated] for every token
// problem (the cause wraps ErrMalformed, ErrType, ErrUnknownKey, … — see
// [Reason]); [sts.Unavailable] when the revocation or source check
// fails (fail closed).
func (v *Verifier) VerifyAccessToken(ctx context.Context, raw, audience string) (*AccessClaims, error) {
	if audience == "" {
		return nil, &sts.Error{Code: sts.Internal, Message: "internal error", Err: errors.New("tokens: verify without an audience")}
	}
	return v.verify(ctx, raw, audience)
}

// VerifyAccessTokenAnyAudience is VerifyAccessToken without the audience
// check, for RFC 7662 introspection, which reports on a token whatever it
// is meant for.
func (v *Verifier) VerifyAccessTokenAnyAudience(ctx context.Context, raw string) (*AccessClaims, error) {
	return v.verify(ctx, raw, "")
}

func (v *Verifier) verify(ctx context.Context, raw, audience string) (*AccessClaims, error) {
	payload, kid, err := v.verifySignature(ctx, raw, typeAccessToken)
	if err != nil {
		return nil, err
	}
	// 5. Claims, decoded case-sensitively with duplicates rejected, as
	// go-jose's json decodes them (decodeAccessClaims).
	var c AccessClaims
	if err := decodeAccessClaims(payload, &c); err != nil {
		return nil, invalid(ErrMalformed, "claims: %v", err)
	}
	if err := v.checkClaims(&c, audience); err != nil {
		return nil, err
	}
	// A token exchanged from this one names its key (src_kid), so that it
	// ends with the key (docs/security.md T-192).
	c.KeyID = kid
	// 6. Revocation last: it is the only step that may touch storage.
	if v.Revocations != nil {
		revoked, err := v.Revocations.IsRevoked(ctx, &c)
		if err != nil {
			return nil, &sts.Error{Code: sts.Unavailable, Message: "token revocation check unavailable", Err: err}
		}
		if revoked {
			return nil, invalid(ErrRevoked, "jti %s", c.ID)
		}
	}
	// 7. Source: what the token derives from still stands (a cached
	// lookup within its TTL).
	if v.Sources != nil {
		if err := v.Sources.CheckSource(ctx, &c); err != nil {
			return nil, err
		}
	}
	return &c, nil
}

// VerifyIDTokenHint verifies raw as an ID token we issued, for the
// id_token_hint of an RP-initiated logout (OpenID Connect RP-Initiated
// Logout 1.0 §2). Signature, header (typ "JWT"), iss, sub and aud are
// checked as for any of our tokens; exp is not, because the hint names a
// sign-in that may have outlived its ID token, and the spec asks the
// provider to accept such hints. It must never be used to authenticate
// anyone (docs/security.md T-97).
func (v *Verifier) VerifyIDTokenHint(ctx context.Context, raw string) (*IDClaims, error) {
	payload, _, err := v.verifySignature(ctx, raw, typeJWT)
	if err != nil {
		return nil, err
	}
	var c IDClaims
	if err := josejson.Unmarshal(payload, &c); err != nil {
		return nil, invalid(ErrMalformed, "claims: %v", err)
	}
	switch {
	case c.Issuer != v.Issuer:
		return nil, invalid(ErrIssuer, "iss %q", c.Issuer)
	case c.Subject == "" || len(c.Audience) == 0:
		return nil, invalid(ErrMalformed, "sub or aud missing")
	}
	return &c, nil
}

// verifySignature runs steps 1–4 of every verification: shape, header
// (with typ), key and signature. It returns the decoded payload and the
// kid of the key that verified it.
func (v *Verifier) verifySignature(ctx context.Context, raw, typ string) (_ []byte, kid string, _ error) {
	// 1. Cheap shape checks before any decoding (docs/security.md T-02, T-03, T-04):
	// bounded size, exactly three compact segments. JWE (5 parts) and the
	// JSON serialisation (T-28) never get further.
	if len(raw) > MaxTokenSize {
		return nil, "", invalid(ErrMalformed, "token of %d bytes exceeds %d", len(raw), MaxTokenSize)
	}
	if strings.Count(raw, ".") != 2 {
		return nil, "", invalid(ErrMalformed, "not a compact jws")
	}
	// 2. Our own strict header check on the protected header, byte-exact
	// names only (T-23, T-24: go-jose's decoder rejects duplicate and
	// matches names case-sensitively).
	alg, kid, err := checkHeader(raw[:strings.IndexByte(raw, '.')], typ)
	if err != nil {
		return nil, "", err
	}
	// 3. Key by kid from our set only; the key's own alg must be the
	// header's (T-12, T-13, T-14, T-16, T-18).
	key, ok := v.Keys.PublicKey(kid)
	if kl, isLoader := v.Keys.(keyLoader); !ok && isLoader {
		var err error
		if key, ok, err = kl.ResolveKey(ctx, kid); !ok && err != nil {
			// Maybe ours, a key this replica has not loaded: cannot tell,
			// which is 503, never "invalid" (docs/security.md F-45).
			return nil, "", &sts.Error{Code: sts.Unavailable, Message: "signing keys unavailable", Err: err}
		}
	}
	if !ok {
		return nil, "", invalid(ErrUnknownKey, "kid %q", kid)
	}
	if key.Algorithm != alg || !ourAlgorithms[alg] {
		return nil, "", invalid(ErrAlgorithm, "alg %q for key %s of %s", alg, kid, key.Algorithm)
	}
	// 4. Signature over the received header.payload, with the key bound to
	// exactly the header's alg (step 3). The token was decoded once, here,
	// and is not handed to go-jose for a second parse (internal/jws: the
	// recorded exception to docs/design.md#hand-written-code).
	dot := strings.LastIndexByte(raw, '.')
	payload, err := strictBase64URL.DecodeString(raw[strings.IndexByte(raw, '.')+1 : dot])
	if err != nil {
		return nil, "", invalid(ErrMalformed, "payload encoding")
	}
	sig, err := strictBase64URL.DecodeString(raw[dot+1:])
	if err != nil {
		return nil, "", invalid(ErrMalformed, "signature encoding")
	}
	if err := jws.Verify(alg, key.Key, raw[:dot], sig); err != nil {
		return nil, "", invalid(ErrSignature, "key %s", kid)
	}
	return payload, kid, nil
}

// strictBase64URL is made once: Strict returns a fresh copy, allocated,
// at each call.
var strictBase64URL = base64.RawURLEncoding.Strict()

// checkHeader decodes the protected header and enforces our profile:
// exactly alg, kid and typ, typ the one asked for ("at+jwt" for access
// tokens, RFC 9068 §4, docs/security.md T-20; "JWT" for ID tokens), alg
// one of ours, kid a bounded non-empty string.
func checkHeader(seg, want string) (alg, kid string, err error) {
	b, err := strictBase64URL.DecodeString(seg)
	if err != nil {
		return "", "", invalid(ErrMalformed, "header encoding")
	}
	// The header we mint: three plain strings that pass every check below.
	// Anything else takes the go-jose path, for the same result and error.
	if alg, kid, typ, ok := fastHeader(b); ok && ourAlgorithms[alg] && typ == want && kid != "" && len(kid) <= maxKIDLen {
		return alg, kid, nil
	}
	var h map[string]josejson.RawMessage
	if err := josejson.Unmarshal(b, &h); err != nil {
		return "", "", invalid(ErrMalformed, "header: %v", err)
	}
	for name := range h {
		if !allowedHeaders[name] {
			return "", "", invalid(ErrHeader, "header %q", name)
		}
	}
	var typ string
	if err := josejson.Unmarshal(h["alg"], &alg); err != nil || !ourAlgorithms[alg] {
		return "", "", invalid(ErrAlgorithm, "alg %.32q", string(h["alg"]))
	}
	if err := josejson.Unmarshal(h["typ"], &typ); err != nil || typ != want {
		return "", "", invalid(ErrType, "typ %.32q", string(h["typ"]))
	}
	if err := josejson.Unmarshal(h["kid"], &kid); err != nil || kid == "" || len(kid) > maxKIDLen {
		return "", "", invalid(ErrUnknownKey, "kid missing or not a short string")
	}
	return alg, kid, nil
}

func (v *Verifier) checkClaims(c *AccessClaims, audience string) error {
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	leeway := v.Leeway
	if leeway == 0 {
		leeway = DefaultLeeway
	}
	maxLife := v.MaxLifetime
	if maxLife == 0 {
		maxLife = DefaultMaxLifetime
	}
	switch {
	case c.Issuer != v.Issuer:
		return invalid(ErrIssuer, "iss %q", c.Issuer)
	case c.Subject == "" || c.ID == "":
		return invalid(ErrMalformed, "sub or jti missing")
	case c.Expiry <= 0 || c.IssuedAt <= 0 || c.NotBefore < 0:
		// exp and iat are required (T-37, T-40); a negative date is junk.
		return invalid(ErrMalformed, "exp or iat missing")
	case !now.Before(c.Expiry.Time().Add(leeway)):
		// Invalid on or after exp (RFC 7519 §4.1.4), plus leeway (T-38).
		return invalid(ErrExpired, "exp %d", c.Expiry)
	case c.NotBefore != 0 && now.Add(leeway).Before(c.NotBefore.Time()):
		return invalid(ErrNotYetValid, "nbf %d", c.NotBefore)
	case now.Add(leeway).Before(c.IssuedAt.Time()):
		return invalid(ErrIssuedInFuture, "iat %d", c.IssuedAt)
	case c.Expiry.Time().Sub(c.IssuedAt.Time()) > maxLife:
		return invalid(ErrLifetime, "exp - iat > %s", maxLife)
	case len(c.Audience) == 0:
		return invalid(ErrAudience, "aud missing")
	case audience != "" && !c.Audience.Contains(audience):
		// Exact element match, never substring or prefix (T-43).
		return invalid(ErrAudience, "aud %q", []string(c.Audience))
	}
	return nil
}
