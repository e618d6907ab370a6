package clients

import (
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/sts"
)

// Bounds on what a client may register (docs/design.md#limits: every stored
// value is bounded). Scope and audience lengths match what the token
// endpoint accepts in a request, so every allowed value can be asked for.
const (
	MaxNameLen     = sts.MaxNameBytes
	MaxListLen     = 100 // entries in grant_types, pools, audiences, scopes
	MaxScopeLen    = 128
	MaxAudienceLen = 512
	MaxPoolIDLen   = 128
	MaxJWKSBytes   = 64 << 10
	MaxURILen      = 2048
	maxIDLen       = 128
)

// GrantTypes are the grants of the token endpoint a client may be allowed.
var GrantTypes = []string{
	oauth2.GrantTypeClientCredentials,
	oauth2.GrantTypeRefreshToken,
	oauth2.GrantTypeTokenExchange,
	oauth2.GrantTypeJWTBearer,
	oauth2.GrantTypeAuthorizationCode,
}

// AuthMethods are the client authentication methods a client may register.
var AuthMethods = []string{
	oauth2.AuthMethodClientSecretBasic,
	oauth2.AuthMethodClientSecretPost,
	oauth2.AuthMethodPrivateKeyJWT,
	oauth2.AuthMethodNone,
}

// publicGrants are the grants a public client (auth method none) may hold:
// those that can run without client authentication. A public client is
// identified by its client_id, never authenticated (RFC 6749 §2.1).
// The authorization_code grant is one of them: a public client redeems its
// codes with PKCE instead of a secret (RFC 7636, docs/security.md T-90).
var publicGrants = []string{oauth2.GrantTypeTokenExchange, oauth2.GrantTypeJWTBearer, oauth2.GrantTypeAuthorizationCode}

// checkPublicGrants refuses, for a public client, a grant that needs an
// authenticated client.
func checkPublicGrants(method string, grants []string) error {
	if method != oauth2.AuthMethodNone {
		return nil
	}
	for _, g := range grants {
		if !slices.Contains(publicGrants, g) {
			return invalid("grant_types: a public client (auth_method none) cannot use %s, which needs client authentication", g)
		}
	}
	return nil
}

// checkRequirePKCE refuses require_pkce false for a public client: RFC
// 9700 §2.1.1 requires PKCE of every public client and only recommends it
// for a confidential one, which then binds its codes with the OpenID
// Connect nonce (docs/security.md T-90).
func checkRequirePKCE(method string, require bool) error {
	if !require && method == oauth2.AuthMethodNone {
		return invalid("require_pkce: a public client (auth_method none) must use PKCE; only a confidential client may set require_pkce false (RFC 9700 §2.1.1)")
	}
	return nil
}

// UsesSecret reports whether clients of auth method m authenticate with a
// client secret.
func UsesSecret(m string) bool {
	return m == oauth2.AuthMethodClientSecretBasic || m == oauth2.AuthMethodClientSecretPost
}

// Field names in messages are the sts.v1.ClientService proto field names,
// so a caller sees which field to fix.

func invalid(format string, args ...any) error { return sts.Errorf(sts.Invalid, format, args...) }

// quote echoes caller input in a message, shortened.
func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strconv.Quote(s)
}

func checkID(id string) error {
	switch {
	case id == "":
		return invalid("client_id required")
	case len(id) > maxIDLen:
		return sts.Errorf(sts.NotFound, "client not found")
	}
	return nil
}

func checkName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if len(name) > MaxNameLen {
		return "", invalid("name: at most %d bytes of text without control characters", MaxNameLen)
	}
	// docs/security.md T-135: no bidi controls or invisible formatting.
	if err := sts.CheckDisplayText("name", name); err != nil {
		return "", err
	}
	return name, nil
}

func checkAuthMethod(m string) (string, error) {
	if m == "" {
		return oauth2.AuthMethodClientSecretBasic, nil
	}
	if !slices.Contains(AuthMethods, m) {
		return "", invalid("auth_method: unknown method %s (want client_secret_basic, client_secret_post, private_key_jwt or none)", quote(m))
	}
	return m, nil
}

// checkList bounds a list, checks each entry with ok and drops duplicates,
// keeping the first occurrence's order.
func checkList(field string, in []string, ok func(string) bool, rule string) ([]string, error) {
	if len(in) > MaxListLen {
		return nil, invalid("%s: at most %d entries, got %d", field, MaxListLen, len(in))
	}
	out := make([]string, 0, len(in))
	for i, v := range in {
		if !ok(v) {
			return nil, invalid("%s[%d]: %s is not %s", field, i, quote(v), rule)
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out, nil
}

func checkGrantTypes(in []string) ([]string, error) {
	out, err := checkList("grant_types", in, func(g string) bool { return slices.Contains(GrantTypes, g) },
		"a grant type of the token endpoint ("+strings.Join(GrantTypes, ", ")+")")
	if err == nil && len(out) == 0 {
		err = invalid("grant_types: at least one required (%s)", strings.Join(GrantTypes, ", "))
	}
	return out, err
}

func checkPools(in []string) ([]string, error) {
	return checkList("pools", in, poolIDOK, "a pool ID (1 to 128 letters, digits, '.', '_' or '-')")
}

func checkAudiences(in []string) ([]string, error) {
	return checkList("audiences", in, audienceOK, "an audience (1 to 512 bytes without spaces or control characters)")
}

func checkScopes(in []string) ([]string, error) {
	return checkList("scopes", in, scopeOK, "a scope (1 to 128 printable ASCII characters without spaces, '\"' or '\\')")
}

// scopeOK is RFC 6749 §3.3 scope-token: 1*( %x21 / %x23-5B / %x5D-7E ).
func scopeOK(s string) bool {
	if s == "" || len(s) > MaxScopeLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

func audienceOK(s string) bool {
	return s != "" && len(s) <= MaxAudienceLen && utf8.ValidString(s) &&
		strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) < 0
}

// poolIDOK is the pool ID syntax the token endpoint accepts
// (trust.ValidID).
func poolIDOK(s string) bool {
	if s == "" || len(s) > MaxPoolIDLen {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// Keys are the registered keys of a private_key_jwt client: exactly one
// of JWKS (a JSON Web Key Set of public keys) and JWKSURI.
type Keys struct {
	JWKS    []byte
	JWKSURI string
}

// checkKeys validates the keys of a client with auth method m.
func checkKeys(m string, k Keys) error {
	if m != oauth2.AuthMethodPrivateKeyJWT {
		if len(k.JWKS) > 0 || k.JWKSURI != "" {
			return invalid("jwks and jwks_uri apply only to private_key_jwt clients")
		}
		return nil
	}
	if (len(k.JWKS) == 0) == (k.JWKSURI == "") {
		return invalid("private_key_jwt needs exactly one of jwks and jwks_uri")
	}
	if len(k.JWKS) > 0 {
		if len(k.JWKS) > MaxJWKSBytes {
			return invalid("jwks: at most %d bytes", MaxJWKSBytes)
		}
		if err := clientauth.ValidateJWKS(k.JWKS); err != nil {
			return invalid("jwks: not a JSON Web Key Set of valid public keys: %v", err)
		}
		return nil
	}
	return checkJWKSURI(k.JWKSURI)
}

// checkJWKSURI accepts an absolute https URL without user info or
// fragment; plain http only to a loopback host (development, with
// federation.allow_loopback on the server).
func checkJWKSURI(raw string) error {
	u, err := url.Parse(raw)
	ok := err == nil && len(raw) <= MaxURILen && u.Host != "" && u.User == nil && u.Fragment == "" &&
		(u.Scheme == "https" || u.Scheme == "http" && loopbackHost(u.Hostname()))
	if !ok {
		return invalid("jwks_uri: %s is not an absolute https URL of at most %d bytes (plain http only to a loopback address)", quote(raw), MaxURILen)
	}
	return nil
}

// checkFetch holds a jwks_uri to the fetching client's rule
// (Service.CheckJWKSURI), after checkKeys has judged its form.
func (s *Service) checkFetch(k Keys) error {
	if k.JWKSURI == "" || s.CheckJWKSURI == nil {
		return nil
	}
	if err := s.CheckJWKSURI(k.JWKSURI); err != nil {
		return invalid("jwks_uri: %s: the key-set fetch would refuse it: %v", quote(k.JWKSURI), err)
	}
	return nil
}

// MaxRedirectURIs bounds the redirect URIs of one client.
const MaxRedirectURIs = 20

// checkRedirectURIs validates the redirect URIs of the authorization_code
// grant, which are matched exactly (docs/security.md T-73, T-92): each is an
// absolute https URL, or plain http to a loopback host (native apps,
// RFC 8252 §7.3), without user info or fragment (RFC 6749 §3.1.2); a
// public client (authMethod none: a native app) may also register a
// private-use URI scheme redirect (PrivateUseRedirectURIOK, RFC 8252
// §7.1). A client with the grant needs at least one.
func checkRedirectURIs(in []string, grants []string, authMethod string) ([]string, error) {
	if len(in) > MaxRedirectURIs {
		return nil, invalid("redirect_uris: at most %d entries, got %d", MaxRedirectURIs, len(in))
	}
	ok, rule := RedirectURIOK, "an absolute https URL without fragment or user info (plain http only to 127.0.0.1, [::1] or localhost)"
	if authMethod == oauth2.AuthMethodNone {
		ok = func(raw string) bool { return RedirectURIOK(raw) || PrivateUseRedirectURIOK(raw) }
		rule += ", or a private-use scheme of a reverse domain name (com.example.app:/path)"
	}
	out, err := checkList("redirect_uris", in, ok, rule)
	if err != nil {
		return nil, err
	}
	if slices.Contains(grants, oauth2.GrantTypeAuthorizationCode) && len(out) == 0 {
		return nil, invalid("redirect_uris: a client with the authorization_code grant needs at least one")
	}
	return out, nil
}

// RedirectURIOK reports whether raw may be registered as a redirect URI.
func RedirectURIOK(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || len(raw) > MaxURILen || u.Host == "" || u.User != nil || u.Fragment != "" || strings.Contains(raw, "#") || u.Opaque != "" {
		return false
	}
	if strings.IndexFunc(raw, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return false
	}
	return u.Scheme == "https" || u.Scheme == "http" && loopbackHost(u.Hostname())
}

// PrivateUseRedirectURIOK reports whether raw is a private-use URI scheme
// redirect a native app may register (RFC 8252 §7.1): a scheme that is a
// reverse domain name (it holds a "."; §8.4), then ":/" and a path, no
// authority (com.example.app:/oauth2/cb), no fragment, no space or
// control character. Only a public client may (checkRedirectURIs): any
// app on the device can claim the scheme, so the code it receives is
// guarded by PKCE alone.
func PrivateUseRedirectURIOK(raw string) bool {
	scheme, rest, ok := strings.Cut(raw, ":")
	if !ok || len(raw) > MaxURILen || !strings.Contains(scheme, ".") || !strings.HasPrefix(rest, "/") || strings.HasPrefix(rest, "//") ||
		strings.ContainsAny(raw, "#\\") || strings.IndexFunc(raw, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return false
	}
	u, err := url.Parse(raw)
	return err == nil && u.Scheme == scheme && u.Host == "" && u.User == nil && u.Opaque == "" &&
		!strings.HasPrefix(scheme, ".") && !strings.HasSuffix(scheme, ".") && !strings.Contains(scheme, "..")
}

func loopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
