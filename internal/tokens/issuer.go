package tokens

import (
	"context"
	"crypto/rand"
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
	if err := i.fill(&c.Issuer, &c.IssuedAt, &c.NotBefore, &c.ID); err != nil {
		return "", c, err
	}
	if err := checkMint(c.Subject, c.Audience, c.IssuedAt, c.Expiry); err != nil {
		return "", c, err
	}
	switch {
	case c.AuthorizedParty == "" && len(c.Audience) > 1:
		c.AuthorizedParty = c.Audience[0]
	case c.AuthorizedParty != "" && !slices.Contains(c.Audience, c.AuthorizedParty):
		return "", c, fmt.Errorf("tokens: azp %q is not one of the audiences", c.AuthorizedParty)
	}
	tok, err := i.sign(ctx, typeJWT, "id token", &c)
	return tok, c, err
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
