package grants

import (
	"encoding/base64"
	"encoding/json"
	"strings"

	"github.com/opensts/sts/internal/federation"
	"github.com/opensts/sts/internal/tokens"
)

// peek returns the unverified iss and aud of a compact JWS, only to choose
// the pool and provider whose keys will verify it. It is the fast path of
// federation.PeekIssuer (which decodes header and claims strictly, work
// Verify then repeats): size and segment count are checked before any
// decoding (SECURITY b.2, b.3), then only the payload is decoded, into two
// fields. Nothing it returns is trusted: Verify re-reads iss and aud
// strictly (exact case, no duplicates, b.23–b.24) and compares them with
// the selected provider's, so a token that fools peek is refused there.
// ok is false when the fast path cannot tell; the caller then asks
// PeekIssuer, which also says why.
func peek(raw string) (iss string, aud []string, ok bool) {
	if len(raw) > tokens.MaxTokenSize || strings.Count(raw, ".") != 2 {
		return "", nil, false
	}
	i := strings.IndexByte(raw, '.')
	j := strings.LastIndexByte(raw, '.')
	payload, err := base64.RawURLEncoding.DecodeString(raw[i+1 : j])
	if err != nil {
		return "", nil, false
	}
	var c struct {
		Iss string          `json:"iss"`
		Aud json.RawMessage `json:"aud"`
	}
	if json.Unmarshal(payload, &c) != nil || c.Iss == "" {
		return "", nil, false
	}
	var a tokens.Audience
	if json.Unmarshal(c.Aud, &a) != nil || len(a) == 0 {
		return "", nil, false
	}
	return c.Iss, a, true
}

// peekIssuer is peek with federation.PeekIssuer as the slow path that
// classifies a malformed token with its stable reason.
func peekIssuer(raw string) (string, []string, error) {
	if iss, aud, ok := peek(raw); ok {
		return iss, aud, nil
	}
	return federation.PeekIssuer(raw)
}
