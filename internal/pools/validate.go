package pools

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/opensts/sts/internal/federation"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/policy"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// Bounds on what a pool or provider may hold.
const (
	// MaxJWKSBytes caps an uploaded JWKS: the cap of the file's
	// jwks_file (config.DefaultJWKSFileMax).
	MaxJWKSBytes   = 256 << 10
	MaxDisplayName = sts.MaxNameBytes
	maxPrincipalID = 128
)

// recordID is the ID rule of the configuration file (config.ValidRecordID).
var recordID = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

const recordIDRule = "lower-case letters, digits, - and _, starting with a letter or digit, at most 63"

// ValidID reports whether id is a valid pool or provider ID.
func ValidID(id string) bool { return recordID.MatchString(id) }

// Field names in messages are the sts.v1.PoolService proto field names,
// so a caller sees which field to fix.

func invalid(format string, args ...any) error { return sts.Errorf(sts.Invalid, format, args...) }

// quote echoes caller input in a message, shortened.
func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strconv.Quote(s)
}

// checkNewID validates the ID of a record being created.
func checkNewID(field, kind, id string) error {
	if id == "" {
		return invalid("%s required", field)
	}
	if !ValidID(id) {
		return invalid("%s: %s ID %s must be %s characters", field, kind, quote(id), recordIDRule)
	}
	return nil
}

// checkRef validates the ID of a record being looked up: empty is bad
// input, an ID no record can have is not found.
func checkRef(field, kind, id string) error {
	if id == "" {
		return invalid("%s required", field)
	}
	if !ValidID(id) {
		return sts.Errorf(sts.NotFound, "%s %s not found", kind, quote(id))
	}
	return nil
}

// Bounds of a pool's downstream audiences: an audience is what a token
// request may name, so the token endpoint's bounds apply.
const (
	MaxPoolAudiences = 20
	MaxAudienceLen   = 512
)

// ReservedScopeRule says why a pool's scopes may not hold a scope
// (storage.PoolMayGrant; docs/security.md A-68).
const ReservedScopeRule = "a pool never grants it: its tokens would introspect every token of the organization; " +
	"give the resource server that introspects a client holding it"

// OfflineDefaultRule says why a pool's google_default_scopes may not hold
// offline_access (docs/security.md T-151).
const OfflineDefaultRule = "a default scope never holds it: a refresh token is issued only to a request that names offline_access"

// poolSets says which of the fields held to a rule newer than some stored
// pools a create or an update sets: an update that leaves such a field as
// stored is not refused for it, so `sts pool disable` works on any pool.
type poolSets struct {
	// name: the display_name's characters (docs/security.md T-135).
	name bool
	// scopes: no reserved scope (docs/security.md A-68); a pool stored
	// with one grants it no more (storage.PoolMayGrant).
	scopes bool
	// googleScopes: no offline_access among google_default_scopes
	// (docs/security.md T-151); a pool stored with it leaves it out of
	// the default.
	googleScopes bool
}

// poolCreate sets every field.
var poolCreate = poolSets{name: true, scopes: true, googleScopes: true}

// checkPool validates everything about p that needs no storage read: its
// ID, fields and CEL (compiled with the service's compiler). The rules
// newer than some stored pools apply to the fields sets names.
func (s *Service) checkPool(p storage.Pool, sets poolSets) error {
	if err := checkNewID("pool_id", "pool", p.ID); err != nil {
		return err
	}
	if strings.TrimSpace(p.OrgID) == "" {
		return invalid("organization_id required")
	}
	if len(p.DisplayName) > MaxDisplayName {
		return invalid("display_name: at most %d bytes of text without control characters", MaxDisplayName)
	}
	// docs/security.md T-135: no bidi controls or invisible formatting.
	if sets.name {
		if err := sts.CheckDisplayText("display_name", p.DisplayName); err != nil {
			return err
		}
	}
	if p.MaxTokenLifetime < 0 || p.MaxTokenLifetime > s.limits.MaxTokenLifetime {
		return invalid("max_token_lifetime: must be between 0s (the default) and keys.max_token_lifetime (%s), got %s",
			s.limits.MaxTokenLifetime, p.MaxTokenLifetime)
	}
	for i, sc := range p.Scopes {
		if sc == "" || strings.ContainsAny(sc, " \t\n\"\\") {
			return invalid("scopes[%d]: a scope is a non-empty token without spaces, quotes or backslashes, got %s", i, quote(sc))
		}
		if sets.scopes && !storage.PoolMayGrant(sc) {
			return invalid("scopes[%d]: %s: %s", i, quote(sc), ReservedScopeRule)
		}
	}
	if len(p.Audiences) > MaxPoolAudiences {
		return invalid("audiences: at most %d, got %d", MaxPoolAudiences, len(p.Audiences))
	}
	for i, a := range p.Audiences {
		if a == "" || len(a) > MaxAudienceLen || strings.IndexFunc(a, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0 {
			return invalid("audiences[%d]: an audience is 1 to %d printable ASCII characters without spaces, got %s", i, MaxAudienceLen, quote(a))
		}
		if slices.Contains(p.Audiences[:i], a) {
			return invalid("audiences[%d]: %s is listed twice", i, quote(a))
		}
	}
	for i, sc := range p.GoogleDefaultScopes {
		if !slices.Contains(p.Scopes, sc) {
			return invalid("google_default_scopes[%d]: %s is not one of the pool's scopes", i, quote(sc))
		}
		if sets.googleScopes && sc == oauth2.ScopeOfflineAccess {
			return invalid("google_default_scopes[%d]: %s: %s", i, quote(sc), OfflineDefaultRule)
		}
	}
	if len(p.PrincipalID) > maxPrincipalID || strings.TrimSpace(p.PrincipalID) != p.PrincipalID {
		return invalid("principal_id: %s is not a principal ID", quote(p.PrincipalID))
	}
	return compileErr(s.compiler, p)
}

// compileErr compiles p's CEL and returns the failure as bad input naming
// the pool and the field (`pool "ci": condition: …`).
func compileErr(c *policy.Compiler, p storage.Pool) error {
	if _, err := c.Compile(p); err != nil {
		if pe, ok := errors.AsType[*policy.Error](err); ok {
			return invalid("pool %q: %s: %v", pe.Pool, pe.Field, pe.Err)
		}
		return sts.Wrap(sts.Internal, err, "compile pool policy")
	}
	return nil
}

// needsCondition returns the first provider of providers whose issuer is
// shared by many tenants, when p has no condition.
func needsCondition(p storage.Pool, providers []storage.Provider) (storage.Provider, bool) {
	if strings.TrimSpace(p.Condition) != "" {
		return storage.Provider{}, false
	}
	for _, pr := range providers {
		if policy.IsSharedIssuer(pr.Issuer) {
			return pr, true
		}
	}
	return storage.Provider{}, false
}

// Problem is one thing wrong with a provider: the field (issuer,
// jwks_uri, audiences, algorithms, jwks) and a message that names the
// value.
type Problem struct {
	Field   string
	Message string
}

// String is the message led by the field, unless the message already
// starts with it.
func (p Problem) String() string {
	if p.Field == "" || strings.HasPrefix(p.Message, p.Field+" ") || strings.HasPrefix(p.Message, p.Field+":") {
		return p.Message
	}
	return p.Field + ": " + p.Message
}

// ProviderProblems checks p's issuer, keys, audiences and algorithms —
// federation.ValidateProvider, plus: the URLs the keys are fetched from
// (the jwks_uri, or the issuer's discovery when there is none; nothing
// when the keys are uploaded) must be ones the federation client calls
// (federation.ProviderClient(allowLoopback, allowPrivate).CheckURL: https
// to an address the dialer accepts; with allowLoopback,
// federation.allow_loopback, also plain http to a loopback host; with
// allowPrivate, federation.allow_private, private addresses,
// docs/security.md T-59); plain http is
// only ever to a loopback host; and no audience may be empty. The
// configuration file's providers are checked with it too. It needs no
// storage read.
func ProviderProblems(p storage.Provider, allowLoopback, allowPrivate bool) []Problem {
	return providerProblems(p, federation.ProviderClient(allowLoopback, allowPrivate), true)
}

// providerProblems is ProviderProblems; the URLs the keys are fetched from
// are judged by the fetcher's rule only when fetch is set: an update that
// leaves issuer, jwks_uri and jwks as stored is not refused for a URL an
// older version accepted, so `sts provider disable` works on any provider.
func providerProblems(p storage.Provider, client federation.ClientOptions, fetch bool) []Problem {
	var out []Problem
	reported := map[string]bool{}
	if err := federation.ValidateProvider(p, client.AllowLoopback); err != nil {
		for _, e := range flatten(errors.Unwrap(err)) {
			field := ""
			if fe, ok := errors.AsType[*federation.FieldError](e); ok {
				field = fe.Field
			}
			reported[field] = true
			out = append(out, Problem{Field: field, Message: e.Error()})
		}
		if len(out) == 0 {
			out = append(out, Problem{Message: err.Error()})
		}
	}
	for _, f := range []struct {
		field, raw string
		fetched    bool
	}{
		{"issuer", p.Issuer, len(p.JWKS) == 0 && p.JWKSURI == ""},
		{"jwks_uri", p.JWKSURI, len(p.JWKS) == 0},
	} {
		if f.raw == "" || reported[f.field] {
			continue
		}
		// Plain http names a loopback host, whether the URL is fetched or
		// only a name (uploaded keys, an issuer beside a jwks_uri).
		if u, err := url.Parse(f.raw); err == nil && u.Scheme == "http" && !federation.LoopbackHost(u.Hostname()) {
			out = append(out, Problem{Field: f.field, Message: fmt.Sprintf("%q: plain http is allowed only to a loopback address", f.raw)})
			continue
		}
		if fetch && f.fetched {
			if err := client.CheckURL(f.raw); err != nil {
				out = append(out, Problem{Field: f.field, Message: fmt.Sprintf("%q: the key fetcher would not call it: %v", f.raw, err)})
			}
		}
	}
	for i, a := range p.Audiences {
		if strings.TrimSpace(a) == "" {
			field := fmt.Sprintf("audiences[%d]", i)
			out = append(out, Problem{Field: field, Message: field + ": an audience must not be empty"})
		}
	}
	return out
}

func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// checkProvider validates everything about p that needs no storage read;
// setsKeys: see providerProblems' fetch. setsIssuer judges p's issuer
// against our own: at creation and when an update sets it, never on the
// issuer an update leaves as stored (one stored by the CLI's direct mode,
// which has no OwnIssuer, can still be disabled through the API).
func (s *Service) checkProvider(p storage.Provider, setsKeys, setsIssuer bool) error {
	if p.PoolID == "" {
		return invalid("pool_id required")
	}
	if err := checkNewID("provider_id", "provider", p.ID); err != nil {
		return err
	}
	if len(p.JWKS) > MaxJWKSBytes {
		return invalid("jwks: at most %d KiB, got %d bytes", MaxJWKSBytes>>10, len(p.JWKS))
	}
	if own := s.limits.OwnIssuer; setsIssuer && federation.SameIssuer(p.Issuer, own) {
		// Our tokens come back as our own (subject_token_type
		// access_token), with their sources and our key set; as a
		// provider's they would leave both behind (docs/security.md A-56).
		// Spelled otherwise (case, default port, trailing slash) it is
		// still ours to whoever normalises issuers.
		return invalid("provider %s/%s: issuer: %q is this server's own issuer; exchange its tokens as access tokens instead", p.PoolID, p.ID, p.Issuer)
	}
	if setsIssuer && s.limits.OwnIssuer != "" && p.Issuer != "" {
		// Not in plain form it may still be ours to a relying party
		// that normalises otherwise, and so may the act entries without
		// iss its tokens carry (docs/security.md A-56, T-166).
		if err := federation.PlainIssuer(p.Issuer); err != nil {
			return invalid("provider %s/%s: issuer: %q is not in plain form: %v", p.PoolID, p.ID, p.Issuer, err)
		}
	}
	if probs := providerProblems(p, federation.ProviderClient(s.limits.AllowLoopback, s.limits.AllowPrivate), setsKeys); len(probs) > 0 {
		msgs := make([]string, len(probs))
		for i, pr := range probs {
			msgs[i] = pr.String()
		}
		return invalid("provider %s/%s: %s", p.PoolID, p.ID, strings.Join(msgs, "; "))
	}
	return nil
}
