package jws

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
)

// ES256Signer signs compact JWS (RFC 7515 §7.1) with one P-256 key under
// a fixed protected header: the ES256 mint path of our access and ID
// tokens. It does what go-jose's ES256 signer does (SHA-256 over
// header.payload, crypto/ecdsa Sign, R || S as 32 bytes each, RFC 7518
// §3.4) in one buffer, without go-jose's reflection-based re-encoding of
// the header for every token. sign_test.go has go-jose verify its tokens.
type ES256Signer struct {
	key    *ecdsa.PrivateKey
	prefix []byte // base64url(header) + "."
}

// NewES256Signer returns a signer whose protected header is
// {"alg":"ES256","kid":kid,"typ":typ} (typ left out when empty).
func NewES256Signer(key *ecdsa.PrivateKey, kid, typ string) (*ES256Signer, error) {
	if key == nil || key.Curve != elliptic.P256() {
		return nil, errors.New("jws: ES256 needs a P-256 key")
	}
	h := struct {
		Alg string `json:"alg"`
		Kid string `json:"kid,omitempty"`
		Typ string `json:"typ,omitempty"`
	}{"ES256", kid, typ}
	hdr, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	enc := base64.RawURLEncoding
	prefix := enc.AppendEncode(make([]byte, 0, enc.EncodedLen(len(hdr))+1), hdr)
	return &ES256Signer{key: key, prefix: append(prefix, '.')}, nil
}

// Sign returns header.payload.signature, reading the signature's
// randomness from rand (crypto/rand.Reader in production; crypto/ecdsa
// mixes it with the key and digest).
func (s *ES256Signer) Sign(rand io.Reader, payload []byte) (string, error) {
	enc := base64.RawURLEncoding
	buf := make([]byte, 0, len(s.prefix)+enc.EncodedLen(len(payload))+1+enc.EncodedLen(64))
	buf = append(buf, s.prefix...)
	buf = enc.AppendEncode(buf, payload)
	digest := sha256.Sum256(buf)
	r, ss, err := ecdsa.Sign(rand, s.key, digest[:])
	if err != nil {
		return "", err
	}
	var sig [64]byte
	r.FillBytes(sig[:32])
	ss.FillBytes(sig[32:])
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, sig[:])
	return string(buf), nil
}
