package grants

import (
	"cmp"
	"context"
	"errors"

	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
	"github.com/opensts/sts/internal/tokens"
)

// PATAuthenticator checks a personal access token (pat.Service).
type PATAuthenticator interface {
	Authenticate(ctx context.Context, secret string) (pat.Authenticated, error)
}

// Reasons of PAT subject tokens.
const (
	ReasonPATInvalid     = "pat_invalid"
	ReasonPATUnavailable = "pat_unavailable"
	ReasonPATDisabled    = "pat_exchange_disabled"
)

// patSource is the src.iss of tokens exchanged from a PAT; src.sub is the
// PAT's ID, never its secret.
const patSource = "urn:opensts:pat"

// pat turns a personal access token into a subject: the token's owner, its
// organization and principal kind, its scopes as the ceiling and its expiry
// as the bound, so the short-lived access token that reaches resource
// servers carries no more than the PAT and never outlives it. Every bad PAT
// (malformed, unknown, expired, deleted, owner disabled) is one reason, as
// on the API (docs/security.md T-65–T-69). Without an authenticated
// client, the owner's rate-limit bucket pays for the exchange (T-239).
func (g *TokenExchange) pat(ctx context.Context, req *Request, raw string, client *storage.Client) (*subject, error) {
	if g.PATs == nil {
		return nil, badSubject(ReasonPATDisabled, errors.New("personal access tokens are not exchanged here"))
	}
	if err := req.payLimits(); err != nil { // before the PAT is looked up
		return nil, err
	}
	au, err := g.PATs.Authenticate(ctx, raw)
	if err != nil {
		if sts.ErrorCode(err) == sts.Unavailable {
			return nil, unavailable(ReasonPATUnavailable, err)
		}
		return nil, badSubject(ReasonPATInvalid, err)
	}
	if client == nil {
		// No client paid for this request: the PAT's owner does, as on
		// the bearer API (docs/security.md T-239).
		if err := req.rate.payCredential("", au.Principal.ID); err != nil {
			return nil, err
		}
	}
	req.trace.org, req.trace.srcIss, req.trace.srcSub = au.OrgID, patSource, au.TokenID
	req.trace.actor = "principal:" + au.Principal.ID
	return &subject{
		iss: patSource, rawSub: au.TokenID,
		sub: au.Principal.ID, org: au.OrgID, principal: string(au.Principal.Kind),
		src:    &tokens.Source{Issuer: patSource, Subject: au.TokenID},
		exp:    au.ExpiresAt,
		scopes: au.Scopes,
		// The issued token names its PAT and the PAT's generation, so
		// deleting or regenerating the PAT ends it (tokens.SourceChecker).
		patID: au.TokenID, patGen: au.Generation, apiScopes: true,
		maxLifetime: cmp.Or(g.PATMaxLifetime, DefaultPATMaxLifetime),
	}, nil
}
