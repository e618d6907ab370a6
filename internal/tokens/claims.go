package tokens

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"time"
)

// NumericDate is a JWT NumericDate (RFC 7519 §2): whole seconds since the
// epoch. It decodes only from a JSON integer, so strings, fractions and
// exponents are rejected (docs/security.md T-42).
type NumericDate int64

// NewNumericDate returns t truncated to whole seconds.
func NewNumericDate(t time.Time) NumericDate { return NumericDate(t.Unix()) }

// Time returns d as a time.Time (zero for 0).
func (d NumericDate) Time() time.Time {
	if d == 0 {
		return time.Time{}
	}
	return time.Unix(int64(d), 0)
}

// Audience is the aud claim (RFC 7519 §4.1.3): one string or an array of
// strings. A single audience is encoded as a plain string.
type Audience []string

// MarshalJSON encodes one audience as a string, several as an array.
func (a Audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

// UnmarshalJSON accepts a string or an array of strings; anything else
// (numbers, objects, nested arrays) is an error (docs/security.md T-43).
func (a *Audience) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*a = Audience{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return errors.New("aud must be a string or an array of strings")
	}
	*a = l
	return nil
}

// Contains reports whether aud is exactly one of the audiences.
func (a Audience) Contains(aud string) bool {
	for _, v := range a {
		if v == aud {
			return true
		}
	}
	return false
}

// Actor is the act claim of RFC 8693 §4.1: the party acting on behalf of
// the subject, itself possibly acted for (nested, most recent outermost).
type Actor struct {
	Issuer  string `json:"iss,omitempty"`
	Subject string `json:"sub"`
	// ClientID is the actor's OAuth client, where it has one.
	ClientID string `json:"client_id,omitempty"`
	Act      *Actor `json:"act,omitempty"`
}

// MayAct is the may_act claim (RFC 8693 §4.4): who may act for the
// token's subject, carried on from the subject token a token was
// exchanged from, so that a re-exchange judges its actor by it too
// (docs/security.md T-167). Subject is empty when the subject token's
// may_act named no actor: then none may act.
type MayAct struct {
	Issuer  string `json:"iss,omitempty"`
	Subject string `json:"sub"`
}

// JudgedMayAct is the may_act c carries, as a re-exchange judges it and
// introspection answers it. Every may_act we mint names its issuer; a
// bare {"sub":…}, which would read as that sub of any issuer, was minted
// only by development builds between carrying may_act and carrying its
// issuer, never by a release (docs/security.md T-167). Such a may_act
// came from the subject token src names (both are carried from the same
// token through every re-exchange and family), so its sub is read under
// src's issuer; without src it names nobody it could be judged against,
// and none may act. A token or family of a 0.1.x release carries no
// may_act at all, which nothing here can restore: T-167 says how an
// upgrade ends them.
func (c *AccessClaims) JudgedMayAct() *MayAct {
	m := c.MayAct
	if m == nil || m.Subject == "" || m.Issuer != "" {
		return m
	}
	if c.Src == nil || c.Src.Issuer == "" {
		return &MayAct{}
	}
	return &MayAct{Subject: m.Subject, Issuer: c.Src.Issuer}
}

// Source is the src claim: the issuer and subject of the token that was
// exchanged for this one (docs/design.md#tokens).
type Source struct {
	Issuer  string `json:"iss"`
	Subject string `json:"sub"`
}

// AccessClaims are the claims of our access tokens (RFC 9068 §2.2 plus
// docs/design.md#tokens).
type AccessClaims struct {
	Issuer    string      `json:"iss"`
	Subject   string      `json:"sub"`
	Audience  Audience    `json:"aud"`
	Expiry    NumericDate `json:"exp"`
	IssuedAt  NumericDate `json:"iat"`
	NotBefore NumericDate `json:"nbf"`
	ID        string      `json:"jti"`
	ClientID  string      `json:"client_id"`
	// Scope is space-separated (RFC 9068 §2.2.3, RFC 8693 §4.2).
	Scope string `json:"scope,omitempty"`
	OrgID string `json:"org_id"`
	// Principal is the kind of principal of ours the token acts as (sub
	// is its ID); absent, not empty, when it acts as none: an external
	// identity through a pool bound to no principal (docs/design.md
	// "Access tokens").
	Principal string `json:"principal,omitempty"`

	Act *Actor `json:"act,omitempty"`
	// MayAct restricts who may act for the subject in a re-exchange.
	MayAct   *MayAct `json:"may_act,omitempty"`
	Pool     string  `json:"pool,omitempty"`
	Provider string  `json:"provider,omitempty"`
	// Attributes are the pool mapping's attribute.* values.
	Attributes map[string]any `json:"attributes,omitempty"`
	// CAB is the Credential Access Boundary the token is limited to.
	CAB map[string]any `json:"cab,omitempty"`
	Src *Source        `json:"src,omitempty"`

	// What the token derives from, beyond its principal (sub, when
	// Principal names a kind): tokens exchanged from a personal access
	// token, and every token exchanged from those, carry the PAT's ID and
	// generation. A verifier with a [SourceChecker] refuses the token once
	// the PAT is deleted (pat_id) or regenerated (pat_gen), as it refuses
	// it once the principal is disabled or deleted.
	PATID         string `json:"pat_id,omitempty"`
	PATGeneration string `json:"pat_gen,omitempty"`
	// GrantID is the refresh-token family (the authorization grant) a
	// token was minted from, or alongside: revoking the family revokes
	// "grant:<id>", which ends these tokens too (RFC 7009 §2.1,
	// [RevocationIDGrant]). Tokens exchanged from one carry it on.
	GrantID string `json:"grant_id,omitempty"`
	// SourceJTIs are the jti of every one of our access tokens this one
	// was exchanged from, oldest first: the subject token of a
	// re-exchange and the actor token of a delegation, with theirs.
	// Revoking any of them ends this token too ([RevocationIDJTI],
	// docs/design.md#lifetimes).
	SourceJTIs []string `json:"src_jti,omitempty"`
	// SourceClientIDs are the registered clients (client_id) of the
	// tokens in SourceJTIs other than this token's own: a token another
	// client re-exchanged still ends with the client the first was
	// issued to ([SourceChecker]). An entry may name a scope drawn from
	// a client or, by its client_id, a pool ([SourceClient],
	// [PoolClientID]; docs/security.md ).
	SourceClientIDs []string `json:"src_client_id,omitempty"`
	// What the tokens this one was exchanged from derive from, beyond
	// what it names itself: above all the actor of a delegation, whose
	// principal, PAT, pool or family is not the subject's. src_sub lists
	// principals of ours (besides sub), src_pat personal access tokens as
	// "<pat_id>:<pat_gen>" (besides pat_id), src_pool pools as
	// "<pool>/<provider>" (besides pool) and src_grant refresh-token
	// families (besides grant_id). A verifier checks each as it checks the
	// token's own, so a delegated token ends with its actor's sources
	// ([SourceChecker], [StoreRevocations], docs/security.md A-46).
	SourceSubjects []string `json:"src_sub,omitempty"`
	SourcePATs     []string `json:"src_pat,omitempty"`
	SourcePools    []string `json:"src_pool,omitempty"`
	SourceGrants   []string `json:"src_grant,omitempty"`
	// SourceKeyIDs are the kids of the keys that signed the tokens in
	// SourceJTIs, each once: a key revoked since (its private half
	// stolen) ends this token too, though another key signed it, as it
	// ends the tokens it signed itself ([SourceChecker],
	// docs/security.md T-192).
	SourceKeyIDs []string `json:"src_kid,omitempty"`

	// KeyID is the kid of the key this token was verified with, set by
	// [Verifier]; never part of the claims.
	KeyID string `json:"-"`
}

// DerivesFurther reports whether c names sources besides its own
// principal, PAT, pool and family (src_sub, src_pat, src_pool,
// src_grant, src_kid).
func (c *AccessClaims) DerivesFurther() bool {
	return len(c.SourceSubjects)+len(c.SourcePATs)+len(c.SourcePools)+len(c.SourceGrants)+len(c.SourceKeyIDs) > 0
}

// SourcePAT is the src_pat entry of the PAT id at generation gen from
// which a derivation drew scope (space-separated): "<id>:<gen>", or
// "<id>:<gen>:<scope>" when scope is not empty. The token ends once the
// PAT no longer holds every scope of it (docs/security.md A-67).
func SourcePAT(id, gen, scope string) string {
	if scope == "" {
		return id + ":" + gen
	}
	return id + ":" + gen + ":" + scope
}

// ParseSourcePAT splits a src_pat entry made by [SourcePAT]. A PAT's ID
// and generation hold no colon; a scope may.
func ParseSourcePAT(e string) (id, gen, scope string, ok bool) {
	id, rest, ok := strings.Cut(e, ":")
	if !ok {
		return "", "", "", false
	}
	gen, scope, _ = strings.Cut(rest, ":")
	return id, gen, scope, true
}

// SourceClient is a src_client_id entry naming what a derivation drew
// from client id: scope (space-separated), which the client must still
// list, as a src_pat entry names what was drawn from a PAT
// (docs/security.md ), and the pool and audiences (aud) the
// client must still allow. It goes beside the bare client ID,
// which the revocation lookups and consent rows key on; a verifier of an
// earlier version reads it as no registered client and skips it.
// Scope alone is "<id>:<scope>"; with a pool or an audience, the three
// are a query string, "<id>?scope=…&pool=…&aud=…", since an audience may
// hold any character but a space. Nothing drawn is the bare ID.
func SourceClient(id, scope, pool string, aud []string) string {
	var a []string
	for _, v := range aud {
		if v != "" {
			a = append(a, v)
		}
	}
	switch {
	case pool == "" && len(a) == 0 && scope == "":
		return id
	case pool == "" && len(a) == 0:
		return id + ":" + scope
	}
	q := url.Values{}
	if scope != "" {
		q.Set("scope", scope)
	}
	if pool != "" {
		q.Set("pool", pool)
	}
	if len(a) > 0 {
		q["aud"] = a
	}
	return id + "?" + q.Encode()
}

// ParseSourceClient splits a src_client_id entry made by [SourceClient]:
// a client's ID holds neither ':' nor '?'; a scope may. A bare ID draws
// nothing. ok is false for an entry whose query does not parse: the
// caller fails closed.
func ParseSourceClient(e string) (id, scope, pool string, aud []string, ok bool) {
	i := strings.IndexAny(e, ":?")
	switch {
	case i < 0:
		return e, "", "", nil, true
	case e[i] == ':':
		return e[:i], e[i+1:], "", nil, true
	}
	q, err := url.ParseQuery(e[i+1:])
	if err != nil {
		return e[:i], "", "", nil, false
	}
	return e[:i], q.Get("scope"), q.Get("pool"), q["aud"], true
}

// PoolClientID is the client_id of the tokens exchanged through pool's
// provider: the pool stands as their client (it names no client row).
func PoolClientID(pool, provider string) string { return "pools/" + pool + "/providers/" + provider }

// ParsePoolClientID splits a client_id made by [PoolClientID]; ok is false
// for any other value (pool and provider IDs hold no slash).
func ParsePoolClientID(id string) (pool, provider string, ok bool) {
	rest, ok := strings.CutPrefix(id, "pools/")
	if !ok {
		return "", "", false
	}
	pool, provider, ok = strings.Cut(rest, "/providers/")
	if !ok || pool == "" || provider == "" || strings.Contains(provider, "/") {
		return "", "", false
	}
	return pool, provider, true
}

// SourcePool is the src_pool entry of pool and provider.
func SourcePool(pool, provider string) string { return pool + "/" + provider }

// IDClaims are the claims of our OIDC ID tokens (OIDC Core §2).
//
// V1: Subject is the principal's UUID. V2: Subject is
// "org:<org-id>/<kind>:<id>" (see [SubjectV2]) and OrgID, Principal, Name
// and Email are set where known.
type IDClaims struct {
	Issuer   string   `json:"iss"`
	Subject  string   `json:"sub"`
	Audience Audience `json:"aud"`
	// AuthorizedParty (azp, OIDC Core §2) is the audience the token was
	// issued to; MintIDToken sets the first audience when there are
	// several and it is empty.
	AuthorizedParty string      `json:"azp,omitempty"`
	Expiry          NumericDate `json:"exp"`
	IssuedAt        NumericDate `json:"iat"`
	NotBefore       NumericDate `json:"nbf,omitempty"`
	ID              string      `json:"jti,omitempty"`
	Nonce           string      `json:"nonce,omitempty"`
	// AccessTokenHash (at_hash, OIDC Core §3.1.3.6) binds the ID token to
	// the access token issued with it; MintIDTokenWith sets it.
	AccessTokenHash string `json:"at_hash,omitempty"`
	// AuthTime is when the person signed in (OIDC Core §2), set on ID
	// tokens from the authorization_code grant.
	AuthTime  NumericDate `json:"auth_time,omitempty"`
	OrgID     string      `json:"org_id,omitempty"`
	Principal string      `json:"principal,omitempty"`
	Name      string      `json:"name,omitempty"`
	Email     string      `json:"email,omitempty"`
	// Act is the delegation chain of the credential the ID token was
	// minted with (RFC 8693 §4.1: act may appear in any JWT), so a token
	// a service account obtained acting for a person never reads as the
	// person's own (docs/design.md#id-tokens).
	Act *Actor `json:"act,omitempty"`
}

// SubjectV2 is the V2 ID-token subject of a principal in Gitpod's form,
// "org:<org-id>/<kind>:<id>", with kind the short name the caller maps
// the principal kind to (user, rnr, env, …), so trust policies written
// for Gitpod's tokens match ours.
func SubjectV2(orgID, kind, principalID string) string {
	return "org:" + orgID + "/" + kind + ":" + principalID
}
