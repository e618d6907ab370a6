package api

import (
	"encoding/json"
	"slices"

	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
	"github.com/opensts/sts/internal/tokens"
)

// maxSources bounds each list of sources an exchange token's access token
// carries, as token exchange bounds src_jti and the other src_ lists
// (docs/design.md#lifetimes): a longer chain is refused rather than cut,
// since a dropped link would be a source that no longer ends it.
const maxSources = 16

// maxSourceBytes bounds the JSON of the sources an exchange token records,
// which the access token it buys carries: with the claims every bought
// token has (an issuer URL of up to 1 KiB as iss and aud) and the largest
// signature we make, that token stays within tokens.MaxTokenSize, which
// our verifier accepts. The sources are not the credential's claims as
// they stand: its client's entry names its scope and audiences again,
// query-escaped, so a credential well within the size can record
// sources that are not (docs/security.md T-220).
const maxSourceBytes = 8 << 10

// exchangeClaims are the source claims an exchange token records for the
// access token it buys (storage.ExchangeToken.Claims): what the
// credential that created it derives from, in the claims' own names.
type exchangeClaims struct {
	SourceJTIs      []string `json:"src_jti,omitempty"`
	SourceClientIDs []string `json:"src_client_id,omitempty"`
	SourceSubjects  []string `json:"src_sub,omitempty"`
	SourcePATs      []string `json:"src_pat,omitempty"`
	SourcePools     []string `json:"src_pool,omitempty"`
	SourceGrants    []string `json:"src_grant,omitempty"`
	SourceKeyIDs    []string `json:"src_kid,omitempty"`
}

// exchangeSource is what an exchange token that id creates for principal
// target derives from (docs/security.md A-50), so that the access token
// it buys ends with the credential that made it, as a delegated token
// ends with its actor: the creator (src_sub, unless it is target),
// its PAT (src_pat) when the credential is a PAT, and, when it is one of
// our access tokens, that token (src_jti) and everything it names: its
// PAT, pool, family and client, its key (src_kid, T-192), and their src_
// lists. The credential's
// expiry caps the exchange token and what it buys.
//
// The creator's PAT is a src_pat, never pat_id, even when target owns it:
// pat_id bounds a token's scope by the PAT's, and the bought token
// holds its principal's full access whatever the credential held, as an
// exchange token always has. src_pat ends it with the PAT (deleted,
// regenerated, expired) and names what was drawn from it: for a
// PAT credential the sts:admin creating the exchange token takes, for an
// access token exchanged from a PAT that token's scope, which ends it
// once the PAT no longer holds it. Likewise the credential's own
// client is named twice in src_client_id: bare, and with the credential's
// scope, which ends the token once the client no longer lists it,
// and a credential exchanged through a pool names the pool's client_id
// with its scope there, which ends the token once the pool no longer
// grants it. That entry goes in src_client_id, not src_pool: a
// node of an earlier version skips a src_client_id entry that is no
// registered client, but refuses a src_pool entry naming no provider.
func exchangeSource(id *Identity, target string) (pat.ExchangeSource, error) {
	var x exchangeClaims
	add := func(l []string, vs ...string) []string {
		for _, v := range vs {
			if v != "" && !slices.Contains(l, v) {
				l = append(l, v)
			}
		}
		return l
	}
	if id.PrincipalID != target {
		x.SourceSubjects = add(x.SourceSubjects, id.PrincipalID)
	}
	switch {
	case id.Credential == CredentialPAT:
		x.SourcePATs = add(x.SourcePATs, tokens.SourcePAT(id.TokenID, id.PATGeneration, pat.ScopeAdmin))
	case id.Claims != nil:
		c := id.Claims
		x.SourceJTIs = add(add(x.SourceJTIs, c.SourceJTIs...), c.ID)
		x.SourceClientIDs = add(x.SourceClientIDs, c.SourceClientIDs...)
		if storage.IsUUID(c.ClientID) {
			// The client, and what the credential drew from its list:
			// the token ends once the client no longer lists the
			// credential's scope, pool or audiences, as
			// the credential does.
			x.SourceClientIDs = add(x.SourceClientIDs, c.ClientID, tokens.SourceClient(c.ClientID, c.Scope, c.Pool, c.Audience))
		}
		x.SourceSubjects = add(x.SourceSubjects, slices.DeleteFunc(slices.Clone(c.SourceSubjects), func(s string) bool { return s == target })...)
		if c.PATID != "" {
			x.SourcePATs = add(x.SourcePATs, tokens.SourcePAT(c.PATID, c.PATGeneration, c.Scope))
		}
		x.SourcePATs = add(x.SourcePATs, c.SourcePATs...)
		if c.Pool != "" {
			x.SourcePools = add(x.SourcePools, tokens.SourcePool(c.Pool, c.Provider))
			// What the credential drew from its pool's ceiling, named
			// as its client (the pool's client_id) with its scope: the
			// token ends once the pool no longer grants it.
			x.SourceClientIDs = add(x.SourceClientIDs, tokens.SourceClient(tokens.PoolClientID(c.Pool, c.Provider), c.Scope, "", nil))
		}
		x.SourcePools = add(x.SourcePools, c.SourcePools...)
		x.SourceGrants = add(add(x.SourceGrants, c.GrantID), c.SourceGrants...)
		// The key that signed the credential, and those of the tokens it
		// came from: a key revoked ends what it bought (T-192).
		x.SourceKeyIDs = add(add(x.SourceKeyIDs, c.SourceKeyIDs...), c.KeyID)
	}
	if n := max(len(x.SourceJTIs), len(x.SourceClientIDs), len(x.SourceSubjects), len(x.SourcePATs),
		len(x.SourcePools), len(x.SourceGrants)); n > maxSources {
		return pat.ExchangeSource{}, sts.Errorf(sts.FailedPrecondition,
			"the credential derives from %d sources of one kind; an exchange token allows at most %d", n, maxSources)
	}
	b, err := json.Marshal(x)
	if err != nil {
		return pat.ExchangeSource{}, sts.Wrap(sts.Internal, err, "internal error")
	}
	if len(b) > maxSourceBytes {
		// Refused here, nothing stored: the token it would buy is one
		// our verifier refuses, and only after the exchange token was
		// spent for it (docs/security.md T-220).
		return pat.ExchangeSource{}, sts.Errorf(sts.FailedPrecondition,
			"the credential derives from sources of %d bytes; an exchange token allows at most %d", len(b), maxSourceBytes)
	}
	return pat.ExchangeSource{CreatorID: id.PrincipalID, ExpiresAt: id.ExpiresAt, Claims: b}, nil
}

// carry sets on c the source claims its exchange token recorded
// (exchangeSource).
func (x exchangeClaims) carry(c *tokens.AccessClaims) {
	c.SourceJTIs, c.SourceClientIDs = x.SourceJTIs, x.SourceClientIDs
	c.SourceSubjects, c.SourcePATs, c.SourcePools, c.SourceGrants = x.SourceSubjects, x.SourcePATs, x.SourcePools, x.SourceGrants
	c.SourceKeyIDs = x.SourceKeyIDs
}
