package clientauth

import (
	"context"
	"errors"
	"net/url"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/secret"
)

// dummyDigest is compared against when the client is unknown, so that an
// unknown client ID costs the same HMAC as a known one.
var dummyDigest = make([]byte, 32)

// secretBasic handles client_secret_basic (RFC 6749 §2.3.1): the ID and
// secret are form-urlencoded before base64, so decode them again.
func (a *Authenticator) secretBasic(ctx context.Context, user, pass, formID string) (*Result, error) {
	id, err1 := url.QueryUnescape(user)
	sec, err2 := url.QueryUnescape(pass)
	if err1 != nil || err2 != nil {
		return nil, invalidClient(errors.New("basic credentials not form-encoded"))
	}
	if formID != "" && formID != id {
		return nil, oauth2.NewError(oauth2.ErrorInvalidRequest, "client_id does not match the authorization header")
	}
	return a.secretCheck(ctx, id, sec, oauth2.AuthMethodClientSecretBasic)
}

// secretCheck verifies a client secret: format first (a truncated or
// mistyped secret never reaches storage, SECURITY.md b.65, b.66), then an
// HMAC digest compared in constant time with the stored one (b.67). The
// plaintext is never logged or stored.
func (a *Authenticator) secretCheck(ctx context.Context, id, sec, method string) (*Result, error) {
	formatErr := secret.PrefixClientSecret.Parse(sec)
	c, err := a.loadClient(ctx, id)
	if oe, ok := errors.AsType[*oauth2.Error](err); ok && oe.Code != oauth2.ErrorInvalidClient {
		return nil, err
	}
	stored := dummyDigest
	if err == nil {
		stored = c.SecretDigest
	}
	match := secret.Equal(a.HashSecret(sec), stored)
	switch {
	case err != nil:
		return nil, err
	case formatErr != nil:
		return nil, invalidClient(errors.New("client secret malformed"))
	case c.AuthMethod != oauth2.AuthMethodClientSecretBasic && c.AuthMethod != oauth2.AuthMethodClientSecretPost:
		return nil, invalidClient(errors.New("client does not use a secret"))
	case !match:
		return nil, invalidClient(errors.New("client secret mismatch"))
	}
	return &Result{Client: c, Method: method}, nil
}
