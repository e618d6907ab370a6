package tokens

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/opensts/sts/internal/signer"
)

// JOSE typ values (RFC 9068 §2.1, RFC 7519 §5.1).
const (
	typeAccessToken = "at+jwt"
	typeJWT         = "JWT"
)

// Issuer mints our tokens. Fill the exported fields; it is safe for
// concurrent use.
type Issuer struct {
	// Signer signs with the active key (usually a *signer.Manager).
	Signer signer.Signer
	// IssuerURL is the iss of every token, exactly as configured.
	IssuerURL string
	// Now is the clock; it defaults to time.Now.
	Now func() time.Time
}

func (i *Issuer) now() time.Time {
	if i.Now != nil {
		return i.Now()
	}
	return time.Now()
}

// NewJTI returns a random token ID with 130 bits from crypto/rand.
func NewJTI() string { return rand.Text() }

// MintAccessToken signs c as an RFC 9068 access token (typ at+jwt) and
// returns it with the claims as signed. It fills iss, iat (now), nbf (iat)
// and jti (random) when they are empty; the caller sets sub, aud, exp and
// the rest. It fails when sub, aud or exp is missing or exp is not after
// iat, and with an error wrapping signer.ErrNoSigningKey when nothing can
// sign.
func (i *Issuer) MintAccessToken(ctx context.Context, c AccessClaims) (string, AccessClaims, error) {
	if err := i.fill(&c.Issuer, &c.IssuedAt, &c.NotBefore, &c.ID); err != nil {
		return "", c, err
	}
	if err := checkMint(c.Subject, c.Audience, c.IssuedAt, c.Expiry); err != nil {
		return "", c, err
	}
	payload, err := marshalAccess(&c)
	if err != nil {
		return "", c, fmt.Errorf("tokens: marshal claims: %w", err)
	}
	tok, err := i.signPayload(ctx, typeAccessToken, "access token", payload)
	return tok, c, err
}

// MintIDToken signs c as an OIDC ID token (typ JWT), filling iss, iat and
// nbf like MintAccessToken (jti too).
func (i *Issuer) MintIDToken(ctx context.Context, c IDClaims) (string, IDClaims, error) {
	if err := i.prepareID(&c); err != nil {
		return "", c, err
	}
	tok, err := i.sign(ctx, typeJWT, "id token", &c)
	return tok, c, err
}

// MintIDTokenWith is MintIDToken for an ID token issued with accessToken
// (the token endpoint's, OIDC Core §3.1.3.3): it carries at_hash, the
// left half of the hash of accessToken by the signing algorithm's hash
// function, base64url-encoded (§3.1.3.6), so that a relying party can
// tell the access token is the one issued with it. The Signer must be a
// [signer.AlgSigner]: the hash depends on the key that signs.
func (i *Issuer) MintIDTokenWith(ctx context.Context, c IDClaims, accessToken string) (string, IDClaims, error) {
	if err := i.prepareID(&c); err != nil {
		return "", c, err
	}
	s, ok := i.Signer.(signer.AlgSigner)
	if !ok || accessToken == "" {
		return "", c, errors.New("tokens: at_hash needs an access token and a signer that tells its algorithm")
	}
	tok, err := s.SignFor(ctx, typeJWT, func(alg string) ([]byte, error) {
		h, err := AccessTokenHash(alg, accessToken)
		if err != nil {
			return nil, err
		}
		c.AccessTokenHash = h
		return json.Marshal(&c)
	})
	if err != nil {
		return "", c, fmt.Errorf("tokens: sign id token: %w", err)
	}
	return tok, c, nil
}

// prepareID fills and checks an ID token's claims before it is signed.
func (i *Issuer) prepareID(c *IDClaims) error {
	if err := i.fill(&c.Issuer, &c.IssuedAt, &c.NotBefore, &c.ID); err != nil {
		return err
	}
	if err := checkMint(c.Subject, c.Audience, c.IssuedAt, c.Expiry); err != nil {
		return err
	}
	switch {
	case c.AuthorizedParty == "" && len(c.Audience) > 1:
		c.AuthorizedParty = c.Audience[0]
	case c.AuthorizedParty != "" && !slices.Contains(c.Audience, c.AuthorizedParty):
		return fmt.Errorf("tokens: azp %q is not one of the audiences", c.AuthorizedParty)
	}
	return nil
}

// AccessTokenHash is the at_hash of accessToken in an ID token signed
// with alg (OIDC Core §3.1.3.6): the left half of its hash by the hash
// function of alg's JWS algorithm, base64url without padding. EdDSA has
// no hash in its name; SHA-512 is the one go-oidc uses for it.
func AccessTokenHash(alg, accessToken string) (string, error) {
	var sum []byte
	switch alg {
	case "RS256", "ES256", "PS256":
		s := sha256.Sum256([]byte(accessToken))
		sum = s[:]
	case "RS384", "ES384", "PS384":
		s := sha512.Sum384([]byte(accessToken))
		sum = s[:]
	case "RS512", "ES512", "PS512", "EdDSA":
		s := sha512.Sum512([]byte(accessToken))
		sum = s[:]
	default:
		return "", fmt.Errorf("tokens: no at_hash for algorithm %q", alg)
	}
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2]), nil
}

// sign encodes claims and signs them with the active key under typ.
func (i *Issuer) sign(ctx context.Context, typ, what string, claims any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("tokens: marshal claims: %w", err)
	}
	return i.signPayload(ctx, typ, what, payload)
}

// signPayload signs the encoded claims with the active key under typ.
func (i *Issuer) signPayload(ctx context.Context, typ, what string, payload []byte) (string, error) {
	tok, err := i.Signer.Sign(ctx, typ, payload)
	if err != nil {
		return "", fmt.Errorf("tokens: sign %s: %w", what, err)
	}
	return tok, nil
}

func (i *Issuer) fill(iss *string, iat, nbf *NumericDate, jti *string) error {
	if i.IssuerURL == "" {
		return errors.New("tokens: issuer url not configured")
	}
	if *iss != "" && *iss != i.IssuerURL {
		return fmt.Errorf("tokens: iss %q is not our issuer", *iss)
	}
	*iss = i.IssuerURL
	if *iat == 0 {
		*iat = NewNumericDate(i.now())
	}
	if *nbf == 0 {
		*nbf = *iat
	}
	if *jti == "" {
		*jti = NewJTI()
	}
	return nil
}

func checkMint(sub string, aud Audience, iat, exp NumericDate) error {
	switch {
	case sub == "":
		return errors.New("tokens: sub is required")
	case len(aud) == 0:
		return errors.New("tokens: aud is required")
	case exp <= iat:
		return errors.New("tokens: exp must be after iat")
	}
	return nil
}
