package federation

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	jose "github.com/go-jose/go-jose/v4"
)

// DefaultAlgorithms are accepted when a provider lists none. Only
// asymmetric signature algorithms exist here at all: none and HS* can never
// be configured (docs/security.md T-11, T-12).
var DefaultAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// keyFits reports whether a key of this type may verify alg (T-13).
func keyFits(alg string, key crypto.PublicKey) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		switch alg {
		case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
			return true
		}
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return k.Curve == elliptic.P256()
		case "ES384":
			return k.Curve == elliptic.P384()
		case "ES512":
			return k.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// defaultAlgorithm is the one algorithm a key without alg verifies.
func defaultAlgorithm(key crypto.PublicKey) string {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return "RS256"
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return "ES256"
		case elliptic.P384():
			return "ES384"
		case elliptic.P521():
			return "ES512"
		}
	case ed25519.PublicKey:
		return "EdDSA"
	}
	return ""
}

// SupportedAlgorithm reports whether alg may appear in a provider's
// allowlist.
func SupportedAlgorithm(alg string) bool { return slices.Contains(DefaultAlgorithms, alg) }

// Limits on key sets (docs/design.md#limits, docs/security.md T-33).
const (
	DefaultMaxKeys = 100
	minRSABits     = 2048
	maxRSABits     = 8192
)

// key is one verification key, bound to at most one algorithm.
type key struct {
	kid string
	alg string // the JWK's alg, or its key type's default when it named none
	pub crypto.PublicKey
}

// keySet is an immutable, validated JWKS.
type keySet struct {
	byKID   map[string]*key
	keys    []*key
	skipped []string // why keys were left out (for logs; never fatal)
}

// lookup returns the key for kid. Without a kid, only a one-key set
// answers, and only when the provider allows a missing kid.
func (s *keySet) lookup(kid string, hasKID, allowMissing bool) (*key, bool) {
	if hasKID {
		k, ok := s.byKID[kid]
		return k, ok
	}
	if allowMissing && len(s.keys) == 1 {
		return s.keys[0], true
	}
	return nil, false
}

// parseJWKS validates a JWKS document. Keys that are unusable for signature
// verification (use=enc, key_ops without verify, private or symmetric, RSA
// under 2048 bits or with a bad exponent, EC points not on their curve,
// unknown kty, an alg that does not fit the key) are left out and listed in
// skipped; the rest of the set stays usable (T-32–T-34). The whole document
// is refused when it is not strict JSON, has more than maxKeys keys, has two
// different keys under one kid (T-35), or leaves no usable key.
func parseJWKS(body []byte, maxKeys int) (*keySet, error) {
	doc, err := decodeObject(body)
	if err != nil {
		return nil, fmt.Errorf("jwks is not a valid JSON object: %w", err)
	}
	raw, ok := doc["keys"].([]any)
	if !ok {
		return nil, errors.New("jwks has no keys array")
	}
	if len(raw) > maxKeys {
		return nil, fmt.Errorf("jwks has %d keys, at most %d allowed", len(raw), maxKeys)
	}
	// Re-read each key as raw JSON for go-jose; decodeObject above has
	// already refused duplicates, bad UTF-8 and deep nesting.
	var rawKeys struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &rawKeys); err != nil || len(rawKeys.Keys) != len(raw) {
		return nil, errors.New("jwks keys are not JSON objects")
	}
	set := &keySet{byKID: make(map[string]*key)}
	thumbs := make(map[string][]byte)
	for i, member := range raw {
		m, ok := member.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("jwks key %d is not an object", i)
		}
		k, why := parseKey(m, rawKeys.Keys[i])
		if k == nil {
			set.skipped = append(set.skipped, fmt.Sprintf("key %d (kid %q): %s", i, truncate(kidOf(m)), why))
			continue
		}
		tp, err := (&jose.JSONWebKey{Key: k.pub}).Thumbprint(crypto.SHA256)
		if err != nil {
			set.skipped = append(set.skipped, fmt.Sprintf("key %d: thumbprint: %v", i, err))
			continue
		}
		if k.kid != "" {
			if prev, dup := thumbs[k.kid]; dup {
				if string(prev) != string(tp) || set.byKID[k.kid].alg != k.alg {
					return nil, fmt.Errorf("jwks has two different keys with kid %q", truncate(k.kid))
				}
				continue // the same key published twice
			}
			thumbs[k.kid] = tp
			set.byKID[k.kid] = k
		}
		set.keys = append(set.keys, k)
	}
	if len(set.keys) == 0 {
		return nil, fmt.Errorf("jwks has no usable signature keys (%d skipped)", len(set.skipped))
	}
	return set, nil
}

func kidOf(m map[string]any) string {
	s, _ := m["kid"].(string)
	return s
}

// parseKey returns the key, or nil and why it is not usable.
func parseKey(m map[string]any, raw json.RawMessage) (*key, string) {
	if use, ok := m["use"]; ok && use != "sig" {
		return nil, "use is not sig"
	}
	if ops, ok := m["key_ops"]; ok {
		list, _ := ops.([]any)
		if !slices.Contains(list, any("verify")) {
			return nil, "key_ops lacks verify"
		}
	}
	kid, hasKID := m["kid"]
	if hasKID {
		s, ok := kid.(string)
		if !ok || s == "" || len(s) > maxKIDLength {
			return nil, "kid is not a usable string"
		}
	}
	alg := ""
	if v, ok := m["alg"]; ok {
		s, isString := v.(string)
		if !isString || !SupportedAlgorithm(s) {
			return nil, "alg is not a supported signature algorithm"
		}
		alg = s
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(raw); err != nil {
		return nil, err.Error()
	}
	if !jwk.IsPublic() {
		return nil, "not a public key (private or symmetric keys are never used)"
	}
	switch pub := jwk.Key.(type) {
	case *rsa.PublicKey:
		if n := pub.N.BitLen(); n < minRSABits || n > maxRSABits {
			return nil, fmt.Sprintf("RSA modulus of %d bits (want %d–%d)", n, minRSABits, maxRSABits)
		}
		if pub.E < 3 || pub.E%2 == 0 {
			return nil, "RSA public exponent is not an odd number ≥ 3"
		}
	case *ecdsa.PublicKey:
		// go-jose checks the point is on the declared curve; crypto/ecdh
		// also refuses the point at infinity and non-canonical encodings.
		if _, err := pub.ECDH(); err != nil {
			return nil, "invalid EC public key: " + err.Error()
		}
	case ed25519.PublicKey:
		if len(pub) != ed25519.PublicKeySize {
			return nil, "bad Ed25519 key size"
		}
	default:
		return nil, fmt.Sprintf("unsupported key type %T", jwk.Key)
	}
	if alg != "" && !keyFits(alg, jwk.Key) {
		return nil, "alg " + alg + " does not fit the key"
	}
	if alg == "" {
		// One algorithm per key: without alg an RSA key would verify
		// RS256 and PS256 alike. Pin the key type's usual algorithm
		// (docs/configuration.md): RS256 for RSA, ES256/ES384/ES512 by curve,
		// EdDSA for Ed25519. A provider signing otherwise must publish alg.
		if alg = defaultAlgorithm(jwk.Key); alg == "" {
			return nil, "no algorithm for this key type"
		}
	}
	return &key{kid: jwk.KeyID, alg: alg, pub: jwk.Key}, ""
}

// digestJWKS keys the cache of uploaded key sets.
func digestJWKS(b []byte) [32]byte { return sha256.Sum256(b) }
