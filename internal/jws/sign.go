package jws

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"sync"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
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
//
// The token is built in a pooled buffer, so the only copy allocated is
// the string returned, and the signature is read from SignASN1's DER
// without the two big.Int values of ecdsa.Sign: five allocations fewer a
// token (docs/performance.md, "client_credentials, sixth pass").
func (s *ES256Signer) Sign(rand io.Reader, payload []byte) (string, error) {
	enc := base64.RawURLEncoding
	bp := signBuffers.Get().(*[]byte)
	defer putSignBuffer(bp)
	buf := slices.Grow((*bp)[:0], len(s.prefix)+enc.EncodedLen(len(payload))+1+enc.EncodedLen(64))
	buf = append(buf, s.prefix...)
	buf = enc.AppendEncode(buf, payload)
	digest := sha256.Sum256(buf)
	*bp = buf
	der, err := ecdsa.SignASN1(rand, s.key, digest[:])
	if err != nil {
		return "", err
	}
	var sig [64]byte
	if !rawSignature(der, &sig) {
		return "", errors.New("jws: ecdsa.SignASN1 wrote an unreadable signature")
	}
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, sig[:])
	*bp = buf
	return string(buf), nil
}

// signBuffers hold the tokens being signed; putSignBuffer clears the
// token out of a buffer before it is reused, and keeps none larger than
// maxPooledSignBuffer, so one large token does not pin its buffer.
var signBuffers = sync.Pool{New: func() any { return new([]byte) }}

const maxPooledSignBuffer = 8 << 10

func putSignBuffer(bp *[]byte) {
	if cap(*bp) > maxPooledSignBuffer {
		return
	}
	clear(*bp)
	*bp = (*bp)[:0]
	signBuffers.Put(bp)
}

// rawSignature writes the DER ECDSA signature der (SEQUENCE of INTEGER
// r, INTEGER s) into sig as R || S, 32 bytes each, big-endian (RFC 7518
// §3.4), as ecdsa.Sign's values with FillBytes would be.
func rawSignature(der []byte, sig *[64]byte) bool {
	var inner, r, s cryptobyte.String
	in := cryptobyte.String(der)
	if !in.ReadASN1(&inner, asn1.SEQUENCE) || !in.Empty() ||
		!inner.ReadASN1(&r, asn1.INTEGER) || !inner.ReadASN1(&s, asn1.INTEGER) || !inner.Empty() {
		return false
	}
	return fillScalar(sig[:32], r) && fillScalar(sig[32:], s)
}

// fillScalar writes the positive DER INTEGER content v right-aligned
// into dst, which must be long enough for it once its sign byte is gone.
func fillScalar(dst []byte, v []byte) bool {
	if len(v) == 0 || v[0]&0x80 != 0 {
		return false // empty or negative
	}
	if len(v) > 1 && v[0] == 0 {
		v = v[1:]
	}
	if len(v) > len(dst) {
		return false
	}
	copy(dst[len(dst)-len(v):], v)
	return true
}
