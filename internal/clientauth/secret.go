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
// mistyped secret never reaches storage, docs/security.md T-65, T-66), then an
// HMAC digest compared in constant time with the stored one (T-67). The
// plaintext is never logged or stored.
//
// The record may come from the per-node cache; a refusal never does: it is
// judged again on the stored row, so a secret rotated or a client
// re-enabled on another replica works here at once, and every refusal
// costs one storage read whether or not the client exists.
func (a *Authenticator) secretCheck(ctx context.Context, id, sec, method string) (*Result, error) {
	formatErr := secret.PrefixClientSecret.Parse(sec)
	// HashSecret's value (Digest is DigestSum as a slice), as an array
	// on the stack: it is only compared (docs/performance.md).
	digest := secret.DigestSum(a.Pepper, sec)
	res, cached, err := a.judgeSecret(ctx, id, digest[:], formatErr, method, true)
	if cached && err != nil {
		res, _, err = a.judgeSecret(ctx, id, digest[:], formatErr, method, false)
	}
	return res, err
}

func (a *Authenticator) judgeSecret(ctx context.Context, id string, digest []byte, formatErr error, method string, useCache bool) (*Result, bool, error) {
	c, cached, err := a.loadClientFrom(ctx, id, useCache)
	if oe, ok := errors.AsType[*oauth2.Error](err); ok && oe.Code != oauth2.ErrorInvalidClient {
		return nil, cached, err
	}
	stored := dummyDigest
	if err == nil {
		stored = c.SecretDigest
	}
	match := secret.Equal(digest, stored)
	switch {
	case err != nil:
		return nil, cached, err
	case formatErr != nil:
		return nil, cached, invalidClient(errors.New("client secret malformed"))
	case c.AuthMethod != method:
		// Pinned to the registered token_endpoint_auth_method (RFC 7591
		// §2): a basic client's secret in the body, or a post client's in
		// the header, is refused like a wrong secret.
		return nil, cached, invalidClient(errors.New("client registered for " + c.AuthMethod + ", not " + method))
	case !match:
		return nil, cached, invalidClient(errors.New("client secret mismatch"))
	}
	return &Result{Client: c, Method: method}, cached, nil
}
