package loadgen

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// The floor's JWT code: the standard library only (crypto/rsa,
// crypto/ecdsa, encoding/json, encoding/base64), no JOSE library, so that
// the bare handlers cost what the cryptography and the encoding cost and
// nothing more. TestStdJWTAgainstGoJose judges it with go-jose.

var b64 = base64.RawURLEncoding

// stdKeys are the public keys of a JWKS by kid: *rsa.PublicKey or
// *ecdsa.PublicKey (P-256).
type stdKeys map[string]crypto.PublicKey

// parseJWKS reads the RSA and P-256 keys of a JWKS document; keys of other
// types are skipped.
func parseJWKS(doc []byte) (stdKeys, error) {
	var set struct {
		Keys []struct {
			Kty, Kid, Crv, N, E, X, Y string
		} `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		return nil, err
	}
	keys := stdKeys{}
	for _, k := range set.Keys {
		switch k.Kty {
		case "RSA":
			n, err1 := b64.DecodeString(k.N)
			e, err2 := b64.DecodeString(k.E)
			if err := errors.Join(err1, err2); err != nil || len(e) == 0 || len(e) > 4 {
				return nil, fmt.Errorf("jwks: RSA key %q: bad n or e", k.Kid)
			}
			keys[k.Kid] = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		case "EC":
			x, err1 := b64.DecodeString(k.X)
			y, err2 := b64.DecodeString(k.Y)
			if err := errors.Join(err1, err2); err != nil || k.Crv != "P-256" || len(x) != 32 || len(y) != 32 {
				return nil, fmt.Errorf("jwks: EC key %q: want P-256 x and y", k.Kid)
			}
			// Uncompressed point: 0x04 || X || Y; ParseUncompressedPublicKey
			// checks that it is on the curve.
			pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
			if err != nil {
				return nil, fmt.Errorf("jwks: EC key %q: %w", k.Kid, err)
			}
			keys[k.Kid] = pub
		}
	}
	return keys, nil
}

// audience is the JWT aud claim: one string or an array of them.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(a))
}

func (a audience) has(want string) bool {
	for _, s := range a {
		if s == want {
			return true
		}
	}
	return false
}

// stdClaims are the registered claims the floor checks (RFC 7519 §4.1).
type stdClaims struct {
	Iss string   `json:"iss"`
	Sub string   `json:"sub"`
	Aud audience `json:"aud"`
	Exp *int64   `json:"exp"`
	Nbf *int64   `json:"nbf"`
}

// verifyJWT checks raw, a compact JWS with alg (RS256 or ES256), against
// the key its kid names, then iss, exp (required), nbf with leeway and, if
// aud is not empty, that aud is among the audiences.
func verifyJWT(keys stdKeys, raw, alg, iss, aud string, now time.Time) (*stdClaims, error) {
	h, rest, ok1 := strings.Cut(raw, ".")
	p, s, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.IndexByte(s, '.') >= 0 {
		return nil, errors.New("not a compact JWS")
	}
	hdr, err := b64.DecodeString(h)
	if err != nil {
		return nil, errors.New("header encoding")
	}
	var head struct{ Alg, Kid string }
	if err := json.Unmarshal(hdr, &head); err != nil || head.Alg != alg {
		return nil, errors.New("header")
	}
	sig, err := b64.DecodeString(s)
	if err != nil {
		return nil, errors.New("signature encoding")
	}
	digest := sha256.Sum256([]byte(raw[:len(h)+1+len(p)]))
	switch k := keys[head.Kid].(type) {
	case *rsa.PublicKey:
		if alg != "RS256" || rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], sig) != nil {
			return nil, errors.New("bad signature")
		}
	case *ecdsa.PublicKey:
		if alg != "ES256" || len(sig) != 64 ||
			!ecdsa.Verify(k, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			return nil, errors.New("bad signature")
		}
	default:
		return nil, errors.New("unknown kid")
	}
	payload, err := b64.DecodeString(p)
	if err != nil {
		return nil, errors.New("payload encoding")
	}
	var c stdClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, errors.New("claims")
	}
	t := now.Unix()
	switch {
	case c.Iss != iss:
		return nil, errors.New("issuer")
	case c.Exp == nil || t > *c.Exp+int64(leeway/time.Second):
		return nil, errors.New("expired")
	case c.Nbf != nil && t < *c.Nbf-int64(leeway/time.Second):
		return nil, errors.New("not yet valid")
	case aud != "" && !c.Aud.has(aud):
		return nil, errors.New("audience")
	}
	return &c, nil
}

// es256Signer signs compact ES256 JWS with one P-256 key and a fixed
// header.
type es256Signer struct {
	key    *ecdsa.PrivateKey
	header string // base64url of the protected header, with the dot
}

func newES256Signer(kid, typ string) (*es256Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	hdr, err := json.Marshal(map[string]string{"alg": "ES256", "kid": kid, "typ": typ})
	if err != nil {
		return nil, err
	}
	return &es256Signer{key: key, header: b64.EncodeToString(hdr) + "."}, nil
}

// sign returns header.payload.signature for the JSON encoding of claims;
// the signature is R || S, 32 bytes each (RFC 7518 §3.4).
func (s *es256Signer) sign(claims any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := make([]byte, 0, len(s.header)+b64.EncodedLen(len(payload))+1+86)
	input = append(input, s.header...)
	input = b64.AppendEncode(input, payload)
	digest := sha256.Sum256(input)
	r, ss, err := ecdsa.Sign(rand.Reader, s.key, digest[:])
	if err != nil {
		return "", err
	}
	var sig [64]byte
	r.FillBytes(sig[:32])
	ss.FillBytes(sig[32:])
	input = append(input, '.')
	return string(b64.AppendEncode(input, sig[:])), nil
}
