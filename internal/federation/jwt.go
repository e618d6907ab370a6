package federation

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// Limits on subject tokens (docs/design.md#limits, docs/security.md T-02, T-16).
const (
	DefaultMaxTokenSize = 16 << 10
	maxKIDLength        = 256
)

// rejectedHeaders are JOSE header parameters we refuse outright rather than
// ignore: keys come only from the provider's configured source, never from
// the token (T-14, T-15); no extension is understood, so crit is fatal
// (T-19); nested or compressed content is not accepted (T-21, T-22).
var rejectedHeaders = []string{"crit", "jku", "x5u", "jwk", "x5c", "cty", "zip", "enc", "b64"}

// compactJWS is a parsed but unverified token.
type compactJWS struct {
	header       map[string]any
	claims       map[string]any
	alg          string
	kid          string
	hasKID       bool
	raw          string
	signingInput string // header.payload, as received (RFC 7515 §5.2)
	signature    []byte // decoded
}

// Token is a subject token whose size, shape and header passed the checks
// of Verify, decoded but not verified: nothing it says may be trusted
// before [Verifier.VerifyParsed] accepts it.
type Token struct{ t *compactJWS }

// Parse decodes raw with the same limits as PeekIssuer (DefaultMaxTokenSize,
// strict base64url and JSON, rejected headers) so the caller can pick the
// provider from its unverified iss and aud and then verify the same decoded
// token with VerifyParsed instead of decoding it again.
func Parse(raw string) (*Token, error) {
	t, err := parseCompact(raw, DefaultMaxTokenSize)
	if err != nil {
		return nil, err
	}
	return &Token{t: t}, nil
}

// Issuer returns the unverified iss, refusing a token without one as
// PeekIssuer does.
func (t *Token) Issuer() (string, error) {
	iss, ok := t.t.claims["iss"].(string)
	if !ok || iss == "" {
		return "", newError(ReasonClaimInvalid, "iss is missing or not a string", nil)
	}
	return iss, nil
}

// Audiences returns the unverified aud as PeekIssuer does.
func (t *Token) Audiences() ([]string, error) { return audiences(t.t.claims) }

// parseCompact checks the shape of raw before decoding anything: at most
// maxSize bytes, exactly two dots, strict unpadded base64url (T-02–T-05), then
// decodes header and claims with decodeObject. It does not verify anything.
func parseCompact(raw string, maxSize int) (*compactJWS, error) {
	if len(raw) > maxSize {
		return nil, newError(ReasonTokenTooLarge, fmt.Sprintf("token is %d bytes, at most %d allowed", len(raw), maxSize), nil)
	}
	if strings.Count(raw, ".") != 2 {
		return nil, newError(ReasonTokenMalformed, "token is not a compact JWS (want exactly 3 segments)", nil)
	}
	h64, rest, _ := strings.Cut(raw, ".")
	p64, s64, _ := strings.Cut(rest, ".")
	if h64 == "" || p64 == "" || s64 == "" {
		return nil, newError(ReasonTokenMalformed, "token has an empty segment", nil)
	}
	hdrBytes, err := decodeSegment(h64)
	if err != nil {
		return nil, newError(ReasonTokenMalformed, "header is not base64url", err)
	}
	payload, err := decodeSegment(p64)
	if err != nil {
		return nil, newError(ReasonTokenMalformed, "payload is not base64url", err)
	}
	if err := checkBase64(s64); err != nil {
		return nil, newError(ReasonTokenMalformed, "signature is not base64url", err)
	}
	// Not Strict: like go-jose, which decoded the signature before.
	sig, err := base64.RawURLEncoding.DecodeString(s64)
	if err != nil {
		return nil, newError(ReasonTokenMalformed, "signature is not base64url", err)
	}
	t := &compactJWS{raw: raw, signingInput: raw[:len(h64)+1+len(p64)], signature: sig}
	if t.header, err = decodeObject(hdrBytes); err != nil {
		return nil, newError(ReasonTokenMalformed, "header is not a valid JSON object", err)
	}
	if t.claims, err = decodeObject(payload); err != nil {
		return nil, newError(ReasonTokenMalformed, "claims are not a valid JSON object", err)
	}
	if err := t.checkHeader(); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *compactJWS) checkHeader() error {
	for _, name := range rejectedHeaders {
		if _, ok := t.header[name]; ok {
			return newError(ReasonHeaderRejected, fmt.Sprintf("header parameter %q is not accepted", name), nil)
		}
	}
	alg, ok := t.header["alg"].(string)
	if !ok || alg == "" {
		return newError(ReasonTokenMalformed, "header has no alg string", nil)
	}
	t.alg = alg
	if v, ok := t.header["kid"]; ok {
		kid, isString := v.(string)
		if !isString || kid == "" || len(kid) > maxKIDLength {
			return newError(ReasonHeaderRejected, fmt.Sprintf("kid must be a string of 1 to %d bytes", maxKIDLength), nil)
		}
		t.kid, t.hasKID = kid, true
	}
	if v, ok := t.header["typ"]; ok {
		typ, isString := v.(string)
		if !isString {
			return newError(ReasonTokenMalformed, "typ is not a string", nil)
		}
		// Our own access tokens (RFC 9068) must not pass as external
		// subject tokens (T-20).
		switch strings.ToLower(typ) {
		case "at+jwt", "application/at+jwt":
			return newError(ReasonTokenTypeInvalid, "typ "+typ+" is an access token, not an identity assertion", nil)
		}
	}
	return nil
}

// decodeSegment decodes strict unpadded base64url. encoding/base64 skips
// CR and LF, so the alphabet is checked first.
func decodeSegment(s string) ([]byte, error) {
	if err := checkBase64(s); err != nil {
		return nil, err
	}
	return strictBase64URL.DecodeString(s)
}

// strictBase64URL is made once: Strict returns a fresh copy each call.
var strictBase64URL = base64.RawURLEncoding.Strict()

// base64URL marks the bytes of the base64url alphabet (RFC 4648 §5).
var base64URL = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") {
		t[c] = true
	}
	return t
}()

func checkBase64(s string) error {
	for i := 0; i < len(s); i++ {
		if !base64URL[s[i]] {
			return fmt.Errorf("byte %d is not in the base64url alphabet", i)
		}
	}
	if len(s)%4 == 1 {
		return fmt.Errorf("impossible base64 length %d", len(s))
	}
	return nil
}

// PeekIssuer returns the unverified iss and aud of raw so the caller can pick
// the pool and provider before verifying. Nothing it returns may be trusted;
// it applies the same size and shape limits as Verify, so it is cheap and
// safe to call on any input.
func PeekIssuer(raw string) (iss string, aud []string, err error) {
	t, err := Parse(raw)
	if err != nil {
		return "", nil, err
	}
	if iss, err = t.Issuer(); err != nil {
		return "", nil, err
	}
	if aud, err = t.Audiences(); err != nil {
		return "", nil, err
	}
	return iss, aud, nil
}

// audiences reads aud as a string or a non-empty array of strings.
func audiences(claims map[string]any) ([]string, error) {
	switch v := claims["aud"].(type) {
	case string:
		if v == "" {
			break
		}
		return []string{v}, nil
	case []any:
		if len(v) == 0 {
			break
		}
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok || s == "" {
				return nil, newError(ReasonClaimInvalid, "aud has a member that is not a non-empty string", nil)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, newError(ReasonClaimInvalid, "aud is missing, empty or not a string or array", nil)
}
