package grants

import (
	"context"
	"errors"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
)

// JWTBearer is the RFC 7523 §2.1 grant: an external JWT assertion judged
// exactly like an RFC 8693 subject token of type …:jwt (same pool, provider,
// CEL condition, mapping, scope/audience/lifetime rules and client
// policy), because it is the same trust decision in another envelope.
type JWTBearer struct {
	TokenExchange *TokenExchange
}

var _ Grant = (*JWTBearer)(nil)

// Type implements [Grant].
func (g *JWTBearer) Type() string { return oauth2.GrantTypeJWTBearer }

// ClientAuth implements [Grant]: as token exchange, the pool decides
// (RFC 7523 §3.1: client authentication is optional for this grant).
func (g *JWTBearer) ClientAuth() ClientAuthPolicy { return ClientAuthPerPool }

// paysWithPool: the assertion is the exchange's subject token.
func (g *JWTBearer) paysWithPool() {}

// judgesNamedPool: the exchange judges the assertion at a named pool.
func (g *JWTBearer) judgesNamedPool() {}

// Exchange implements [Grant]. RFC 7523 §3.1 answers a bad assertion with
// invalid_grant, where token exchange says invalid_request; the reason is
// the exchange's.
func (g *JWTBearer) Exchange(ctx context.Context, req *Request, client *storage.Client) (*Response, error) {
	// The client check (grant type, pool, scopes, audiences) runs inside
	// the exchange, with this request's grant type.
	assertion := req.form.Get("assertion")
	if assertion == "" {
		return nil, badRequest(ReasonParameterMissing, errors.New("assertion is required"))
	}
	if req.SubjectToken != "" || req.ActorToken != "" {
		return nil, badRequest(ReasonMalformed, errors.New("subject_token or actor_token with jwt-bearer"))
	}
	sub := *req
	// requested_token_type is the exchange's to judge and echo, as at
	// token exchange (docs/security.md T-53).
	sub.SubjectToken, sub.SubjectTokenType = assertion, oauth2.TokenTypeJWT
	resp, err := g.TokenExchange.Exchange(ctx, &sub, client)
	req.trace = sub.trace
	if e, ok := errors.AsType[*oauth2.Error](err); ok && isTokenRefusal(e) {
		out := *e
		out.Code = oauth2.ErrorInvalidGrant
		return nil, &out
	}
	if err != nil {
		return nil, err
	}
	return resp, nil
}
