package federation

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/opensts/sts/internal/jws"
	"github.com/opensts/sts/internal/storage"
)

// Verification defaults (docs/design.md#limits).
const (
	DefaultLeeway      = 60 * time.Second
	DefaultMaxTokenAge = 24 * time.Hour
	maxNumericDate     = 1 << 53
)

// Identity is a verified subject token.
type Identity struct {
	Issuer    string
	Subject   string
	Audience  []string
	Expiry    time.Time
	IssuedAt  time.Time
	NotBefore time.Time // zero when absent
	JTI       string    // "" when absent
	KeyID     string
	Algorithm string
	// Claims is the whole verified payload, decoded strictly: strings,
	// bools, int64 or float64 numbers, []any, map[string]any and nil. It is
	// what the pool's CEL policy sees as assertion. Do not modify it.
	Claims map[string]any
}

// Verifier checks subject tokens against a provider. The zero value of each
// field means its default; Keys must be set.
type Verifier struct {
	Keys         *Cache
	Now          func() time.Time
	Leeway       time.Duration // default 60 s
	MaxTokenAge  time.Duration // iat age and exp−iat cap, default 24 h
	MaxTokenSize int           // default 16 KiB
	// Verified, when set, lets a token verified before under the same
	// provider and key skip the signature check (nil: every token is
	// verified; see VerifiedCache).
	Verified *VerifiedCache
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// Verify checks raw against provider p and returns the identity it asserts.
// The order puts cheap checks first and the signature before any claim is
// trusted: size and shape, header, alg allowlist, iss, key lookup (with at
// most one rate-limited refetch for an unknown kid), key/alg binding,
// signature (answered by v.Verified when it holds this token, provider and
// key), then exp, nbf, iat, token age, aud and sub. Every error is an
// *Error with a Reason.
func (v *Verifier) Verify(ctx context.Context, p storage.Provider, raw string) (*Identity, error) {
	if p.Disabled {
		return nil, newError(ReasonProviderDisabled, "provider is disabled", nil)
	}
	t, err := parseCompact(raw, cmp.Or(v.MaxTokenSize, DefaultMaxTokenSize))
	if err != nil {
		return nil, err
	}
	return v.verify(ctx, p, t)
}

// VerifyParsed is Verify for a token already parsed with [Parse] (to pick
// the provider from its unverified iss and aud), so it is decoded once. It
// applies the verifier's own size limit, then every check of Verify.
func (v *Verifier) VerifyParsed(ctx context.Context, p storage.Provider, tok *Token) (*Identity, error) {
	if p.Disabled {
		return nil, newError(ReasonProviderDisabled, "provider is disabled", nil)
	}
	if max := cmp.Or(v.MaxTokenSize, DefaultMaxTokenSize); len(tok.t.raw) > max {
		return nil, newError(ReasonTokenTooLarge, fmt.Sprintf("token is %d bytes, at most %d allowed", len(tok.t.raw), max), nil)
	}
	return v.verify(ctx, p, tok.t)
}

func (v *Verifier) verify(ctx context.Context, p storage.Provider, t *compactJWS) (*Identity, error) {
	allowed := p.Algorithms
	if len(allowed) == 0 {
		allowed = DefaultAlgorithms
	}
	if !slices.Contains(allowed, t.alg) || !SupportedAlgorithm(t.alg) {
		return nil, newError(ReasonAlgNotAllowed, fmt.Sprintf("alg %q is not allowed for this provider", truncate(t.alg)), nil)
	}
	iss, ok := t.claims["iss"].(string)
	if !ok {
		return nil, newError(ReasonClaimInvalid, "iss is missing or not a string", nil)
	}
	if iss != p.Issuer { // exact: no trailing-slash, case or port normalisation (T-44)
		return nil, newError(ReasonIssuerMismatch, "iss does not equal the provider's issuer", nil)
	}

	k, err := v.key(ctx, p, t)
	if err != nil {
		return nil, err
	}
	if (k.alg != "" && k.alg != t.alg) || !keyFits(t.alg, k.pub) {
		return nil, newError(ReasonKeyMismatch, fmt.Sprintf("key %q cannot verify alg %s", truncate(k.kid), t.alg), nil)
	}
	// The cache may answer for the signature alone: the checks above and
	// the claims below run on every request (docs/security.md T-95).
	var digest [32]byte
	cached := false
	if v.Verified != nil {
		digest = verifiedDigest(&p, t.raw)
		cached = v.Verified.verified(digest, k, v.now())
	}
	if !cached {
		if err := jws.Verify(t.alg, k.pub, t.signingInput, t.signature); err != nil {
			return nil, newError(ReasonSignatureInvalid, "signature does not verify", nil)
		}
	}

	id := &Identity{Issuer: iss, KeyID: k.kid, Algorithm: t.alg, Claims: t.claims}
	if err := v.checkClaims(id, t.claims, p); err != nil {
		return nil, err
	}
	if v.Verified != nil && !cached && !p.OneTimeUse {
		v.Verified.add(digest, k, id.Expiry, v.now())
	}
	return id, nil
}

// key finds the verification key, refetching once (subject to the cache's
// cooldown) when the kid is unknown.
func (v *Verifier) key(ctx context.Context, p storage.Provider, t *compactJWS) (*key, error) {
	if v.Keys == nil {
		return nil, newError(ReasonJWKSUnavailable, "verifier has no key cache", nil)
	}
	snap, err := v.Keys.keysFor(ctx, p, false)
	if err != nil {
		return nil, err
	}
	if k, ok := snap.keys.lookup(t.kid, t.hasKID, p.AllowMissingKID); ok {
		return k, nil
	}
	if !t.hasKID {
		if !p.AllowMissingKID {
			return nil, newError(ReasonKIDMissing, "token has no kid and the provider does not allow a missing kid", nil)
		}
		return nil, newError(ReasonKIDMissing, fmt.Sprintf("token has no kid and the key set has %d keys", len(snap.keys.keys)), nil)
	}
	if len(p.JWKS) == 0 {
		if snap, err = v.Keys.keysFor(ctx, p, true); err != nil {
			return nil, err
		}
		if k, ok := snap.keys.lookup(t.kid, true, false); ok {
			return k, nil
		}
		if snap.lastErr != nil {
			// We could not find out whether the issuer rotated: our
			// failure, not the caller's (F-07).
			return nil, newError(ReasonJWKSUnavailable, fmt.Sprintf("kid %q unknown and the key set could not be refreshed", truncate(t.kid)), snap.lastErr)
		}
	}
	return nil, newError(ReasonKIDUnknown, fmt.Sprintf("kid %q is not in the issuer's key set", truncate(t.kid)), nil)
}

func (v *Verifier) checkClaims(id *Identity, claims map[string]any, p storage.Provider) error {
	accepted := p.Audiences
	now := v.now()
	leeway := cmp.Or(v.Leeway, DefaultLeeway)
	maxAge := cmp.Or(v.MaxTokenAge, DefaultMaxTokenAge)

	exp, ok, err := numericDate(claims, "exp")
	if err != nil {
		return err
	}
	if !ok {
		return newError(ReasonClaimInvalid, "exp is required", nil)
	}
	if !now.Before(exp.Add(leeway)) { // invalid on or after exp (+ leeway)
		return newError(ReasonTokenExpired, "token has expired", nil)
	}
	id.Expiry = exp

	nbf, ok, err := numericDate(claims, "nbf")
	if err != nil {
		return err
	}
	if ok {
		if nbf.After(now.Add(leeway)) {
			return newError(ReasonTokenNotYetValid, "nbf is in the future", nil)
		}
		id.NotBefore = nbf
	}

	// iat is required: the age limit must not be skippable by omitting it
	// (T-40, Zitadel GHSA-wxg7-w2v3-w38g).
	iat, ok, err := numericDate(claims, "iat")
	if err != nil {
		return err
	}
	if !ok {
		return newError(ReasonClaimInvalid, "iat is required", nil)
	}
	if iat.After(now.Add(leeway)) {
		return newError(ReasonTokenNotYetValid, "iat is in the future", nil)
	}
	if now.Sub(iat) > maxAge+leeway {
		return newError(ReasonTokenTooOld, fmt.Sprintf("token was issued more than %s ago", maxAge), nil)
	}
	if exp.Sub(iat) > maxAge {
		return newError(ReasonTokenLifetimeTooLong, fmt.Sprintf("token lifetime exceeds %s", maxAge), nil)
	}
	id.IssuedAt = iat

	aud, err := audiences(claims)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(aud, func(a string) bool { return slices.Contains(accepted, a) }) {
		return newError(ReasonAudienceMismatch, "no aud value is accepted by this provider", nil)
	}
	if len(aud) > 1 && !p.AllowMultipleAudiences {
		// A token meant for several services is a bearer for each of them;
		// exchanging it here is only allowed where the provider says so.
		return newError(ReasonAudienceMismatch, fmt.Sprintf("aud names %d audiences and the provider does not allow several", len(aud)), nil)
	}
	id.Audience = aud

	sub, ok := claims["sub"].(string)
	if !ok || sub == "" {
		return newError(ReasonClaimInvalid, "sub is missing or not a non-empty string", nil)
	}
	id.Subject = sub
	if v, present := claims["jti"]; present {
		jti, ok := v.(string)
		if !ok {
			return newError(ReasonClaimInvalid, "jti is not a string", nil)
		}
		id.JTI = jti
	}
	return nil
}

// numericDate reads an integer NumericDate in [0, 2^53) (T-42). Strings,
// floats, booleans, null and out-of-range numbers are refused.
func numericDate(claims map[string]any, name string) (time.Time, bool, error) {
	v, present := claims[name]
	if !present {
		return time.Time{}, false, nil
	}
	n, ok := v.(int64)
	if !ok || n < 0 || n >= maxNumericDate {
		return time.Time{}, false, newError(ReasonClaimInvalid, name+" is not an integer NumericDate", nil)
	}
	return time.Unix(n, 0), true, nil
}

// FieldError is one problem ValidateProvider found, with the provider
// field it concerns (issuer, jwks_uri, audiences, algorithms, jwks), so
// callers can point at the field; its text is Err's alone.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Err.Error() }

func (e *FieldError) Unwrap() error { return e.Err }

// ValidateProvider checks a provider's configuration for use with Verify:
// an absolute https issuer (http only with allowHTTP, for tests and dev),
// at least one audience, only supported algorithms, and an uploaded JWKS
// that parses. Config loading calls it so mistakes fail start-up. Each
// problem is a *FieldError; they are joined under one error naming the
// provider.
func ValidateProvider(p storage.Provider, allowHTTP bool) error {
	var errs []error
	add := func(field string, err error) { errs = append(errs, &FieldError{Field: field, Err: err}) }
	u, err := url.Parse(p.Issuer)
	switch {
	case err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "":
		add("issuer", fmt.Errorf("issuer %q is not an absolute URL without query or fragment", p.Issuer))
	case u.Scheme != "https" && !(allowHTTP && u.Scheme == "http"):
		add("issuer", fmt.Errorf("issuer %q must use https", p.Issuer))
	}
	if p.JWKSURI != "" {
		if ju, err := url.Parse(p.JWKSURI); err != nil || ju.Host == "" || (ju.Scheme != "https" && !(allowHTTP && ju.Scheme == "http")) {
			add("jwks_uri", fmt.Errorf("jwks_uri %q must be an absolute https URL", p.JWKSURI))
		}
	}
	if len(p.Audiences) == 0 {
		add("audiences", errors.New("at least one audience is required"))
	}
	for _, a := range p.Algorithms {
		if !SupportedAlgorithm(a) {
			add("algorithms", fmt.Errorf("algorithm %q is not supported (allowed: %v)", a, DefaultAlgorithms))
		}
	}
	if len(p.JWKS) > 0 {
		if _, err := parseJWKS(p.JWKS, DefaultMaxKeys); err != nil {
			add("jwks", fmt.Errorf("uploaded jwks: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("federation: provider %s/%s: %w", p.PoolID, p.ID, err)
	}
	return nil
}
