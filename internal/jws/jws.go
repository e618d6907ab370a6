package jws

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"math/big"
)

// ErrSignature is the one answer to a signature that does not verify, for
// whatever reason (wrong key type or curve, wrong length, bad signature,
// unknown alg).
var ErrSignature = errors.New("signature does not verify")

// Verify checks a JWS signature (RFC 7518 §3) over signingInput, the
// header and payload segments exactly as received. It does what go-jose's
// verifiers do for these algorithms, without parsing the token a second
// time: the caller has already decoded the token strictly and bound the
// key to exactly one alg.
func Verify(alg string, pub crypto.PublicKey, signingInput string, sig []byte) error {
	var h crypto.Hash
	switch alg {
	case "RS256", "PS256", "ES256":
		h = crypto.SHA256
	case "RS384", "PS384", "ES384":
		h = crypto.SHA384
	case "RS512", "PS512", "ES512":
		h = crypto.SHA512
	case "EdDSA":
		k, ok := pub.(ed25519.PublicKey)
		if !ok || !ed25519.Verify(k, []byte(signingInput), sig) {
			return ErrSignature
		}
		return nil
	default:
		return ErrSignature
	}
	hasher := h.New()
	hasher.Write([]byte(signingInput))
	digest := hasher.Sum(nil)
	switch k := pub.(type) {
	case *rsa.PublicKey:
		switch alg[:2] {
		case "RS":
			return rsa.VerifyPKCS1v15(k, h, digest, sig)
		case "PS":
			return rsa.VerifyPSS(k, h, digest, sig, nil)
		}
	case *ecdsa.PublicKey:
		if alg[:2] != "ES" {
			return ErrSignature
		}
		var size int
		switch {
		case alg == "ES256" && k.Curve == elliptic.P256():
			size = 32
		case alg == "ES384" && k.Curve == elliptic.P384():
			size = 48
		case alg == "ES512" && k.Curve == elliptic.P521():
			size = 66
		default:
			return ErrSignature
		}
		if len(sig) != 2*size {
			return ErrSignature
		}
		r := new(big.Int).SetBytes(sig[:size])
		s := new(big.Int).SetBytes(sig[size:])
		if !ecdsa.Verify(k, digest, r, s) {
			return ErrSignature
		}
		return nil
	}
	return ErrSignature
}
