package grants

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// Reasons of the authorization_code grant.
const (
	ReasonCodeInvalid  = "authorization_code_invalid"
	ReasonCodeReused   = "authorization_code_reused"
	ReasonCodeExpired  = "authorization_code_expired"
	ReasonCodeClient   = "authorization_code_client_mismatch"
	ReasonCodeRedirect = "authorization_code_redirect_mismatch"
	ReasonCodeVerifier = "authorization_code_verifier_mismatch"
	ReasonCodeConsent  = "authorization_code_consent_withdrawn"
	// ReasonCodeSubjectRevoked: the code's person was revoked (a subject
	// revocation) after the code was issued (docs/security.md T-144).
	ReasonCodeSubjectRevoked = "authorization_code_subject_revoked"
	// ReasonCodeAdminScope: the code or family holds sts:admin, which the
	// browser flow never grants (docs/security.md A-44).
	ReasonCodeAdminScope = "authorization_code_admin_scope"
	// ReasonCodeIntrospectScope: the code or family holds introspect,
	// which the browser flow never grants (docs/security.md A-75).
	ReasonCodeIntrospectScope = "authorization_code_introspect_scope"
)

// browserFlowRefusal is the refusal of a code, or of a family the
// authorization-code grant began, holding a scope a person's consent never
// grants (pat.ConsentMayGrant): issued before the rule, or by any later
// mistake. "" when it holds none.
func browserFlowRefusal(scopes []string) (reason, scope string) {
	for _, s := range scopes {
		if !pat.ConsentMayGrant(s) {
			if s == pat.ScopeAdmin {
				return ReasonCodeAdminScope, s
			}
			return ReasonCodeIntrospectScope, s
		}
	}
	return "", ""
}

// ScopeOpenID asks the authorization_code grant for an ID token too
// (OIDC Core §3.1.2.1).
const ScopeOpenID = "openid"

// AuthCodeStore is what the authorization_code grant reads and writes.
type AuthCodeStore interface {
	storage.AuthCodeStore
	storage.ClientStore
	storage.PrincipalStore
	storage.RevocationStore
	storage.RefreshTokenStore
}

// AuthorizationCode is the RFC 6749 §4.1.3 grant with PKCE (RFC 7636),
// which a confidential client registered with require_pkce false may
// leave out (docs/security.md T-90): it
// redeems a code issued by GET /oauth2/authorize (internal/authorize) for
// an access token, a refresh token when the client holds the
// refresh_token grant and the code's person signed in recently
// (SignInWithin; the same rotating families as [Refresh]), and an ID
// token for the openid scope. A confidential client authenticates; a
// public client (auth method none) names itself with client_id and proves
// possession with code_verifier alone.
//
// The code is read first: one already spent is a replay whatever else the
// request gets wrong, even when it is refused before the grant runs
// (Handler.spentCodeFirst, docs/security.md T-195). An unused code
// refused for a parameter is left for a corrected request; past the
// parameters it is consumed atomically before anything else is judged, so
// it dies at that presentation, right or wrong, and the jti and refresh
// family the redemption will issue are recorded in the same step. A
// second presentation, by any client, revokes both (RFC 6749 §10.5,
// docs/security.md T-91) and is refused and audited, in the code's
// organization, as authorization_code_reused.
type AuthorizationCode struct {
	Store  AuthCodeStore
	Issuer *tokens.Issuer
	// IDTokens picks the issuer of ID tokens for an audience (RS256 for
	// relying parties that need it); nil: Issuer.
	IDTokens func(aud []string) *tokens.Issuer
	// Refresh issues the refresh-token family; nil: no refresh tokens.
	Refresh *Refresh
	// Pepper keys the code digests (the authorize endpoint's pepper).
	Pepper []byte
	// Lifetime of access and ID tokens (15 min when zero); MaxLifetime
	// caps it (keys.max_token_lifetime; DefaultMaxLifetime when zero), so
	// a configured maximum below the default shortens both
	// (docs/design.md#lifetimes).
	Lifetime    time.Duration
	MaxLifetime time.Duration
	// SignInWithin is web.session.reauth_after: a code brings a refresh
	// token only when its person signed in less than this before it was
	// issued (DefaultSignInWithin when zero); an older sign-in, or one the
	// authorization endpoint could not tell, brings the access and ID
	// tokens alone (docs/security.md A-79).
	SignInWithin time.Duration
	Logger       *slog.Logger
	Now          func() time.Time
}

// DefaultSignInWithin is web.session.reauth_after's default.
const DefaultSignInWithin = 2 * time.Hour

var _ Grant = (*AuthorizationCode)(nil)

// Type implements [Grant].
func (g *AuthorizationCode) Type() string { return oauth2.GrantTypeAuthorizationCode }

// ClientAuth implements [Grant]: the grant itself decides (a public client
// is identified by client_id, a confidential one must authenticate).
func (g *AuthorizationCode) ClientAuth() ClientAuthPolicy { return ClientAuthPerPool }

// S256 is the RFC 7636 §4.2 code challenge of verifier.
func S256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func codeRefused(reason string, cause error) error {
	return refuse(oauth2.ErrorInvalidGrant, "authorization code rejected", reason, cause)
}

// Exchange implements [Grant].
func (g *AuthorizationCode) Exchange(ctx context.Context, req *Request, client *storage.Client) (*Response, error) {
	// 1. The client: authenticated, or a registered public client named by
	//    client_id (the authenticator has checked it is one).
	if client == nil {
		c, err := g.publicClient(ctx, req.form.Get("client_id"))
		if err != nil {
			return nil, err
		}
		client = c
	}
	if err := CheckClient(client, Issuance{Grant: g.Type()}); err != nil {
		return nil, err
	}
	req.trace.actor = "client:" + client.ID
	// 2. A code already spent is a replay, whatever else the request gets
	//    wrong: judged before the parameters, as a rotated refresh token
	//    is (docs/security.md T-143), so that a copy of the code cannot be
	//    presented, or asked about, without ending what its first
	//    redemption issued (RFC 6749 §4.1.2, docs/security.md T-195). The
	//    code read here is the one the target is judged by.
	code := req.form.Get("code")
	digest, seen, seenErr := g.readCode(ctx, req)
	if seenErr != nil && !errors.Is(seenErr, storage.ErrNotFound) {
		return nil, seenErr
	}
	// 3. The parameters, strictly, before the code is spent: a refusal
	//    leaves it for a corrected request. expires_in as at every grant:
	//    issued as asked, or refused beyond the maximum, never clamped
	//    (docs/design.md#lifetimes, docs/security.md T-56); it bounds the
	//    ID token too. A family the code begins lives far longer than any
	//    access token may.
	def, maxLife := req.lifetimeBounds(g.Lifetime, g.MaxLifetime)
	life, err := pickLifetime(req.Lifetime, def, maxLife)
	if err != nil {
		return nil, err
	}
	// requested_token_type as at every grant that mints this access token
	// (docs/security.md T-53).
	issuedType, err := issuedTokenType(req)
	if err != nil {
		return nil, err
	}
	verifier, redirect := req.form.Get("code_verifier"), req.form.Get("redirect_uri")
	switch {
	case code == "":
		return nil, badRequest(ReasonParameterMissing, errors.New("code is required with grant_type authorization_code"))
	case verifier == "" && !pkceOptional(client):
		// PKCE is mandatory unless a confidential client is registered
		// with require_pkce false (docs/security.md T-90).
		return nil, badRequest(ReasonParameterMissing, errors.New("code_verifier is required (PKCE, RFC 7636)"))
	case verifier != "" && !validCodeVerifier(verifier):
		return nil, badRequest(ReasonMalformed, errors.New("code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636)"))
	case digest == nil:
		return nil, codeRefused(ReasonCodeInvalid, errors.New("malformed code"))
	}
	// 4. The target: audience and resource (MCP clients send resource on
	//    every token request) narrow the access token to what the code
	//    covers, never widen it (RFC 8707 §2.2, docs/security.md T-183,
	//    T-190), judged before the code is spent, so a refusal leaves it
	//    for a corrected request.
	covered, aud, err := g.target(req, client, seen, seenErr)
	if err != nil {
		return nil, err
	}
	// 5. Consume: exactly one presentation sees the code unused (one
	//    spent since it was read above is a replay all the same).
	now := storage.Now(nowOf(g.Now))
	refresh := g.Refresh != nil && clientauth.AllowsGrant(client, oauth2.GrantTypeRefreshToken)
	jti, family := tokens.NewJTI(), ""
	if refresh {
		family = storage.NewID()
	}
	ac, err := g.Store.ConsumeAuthCode(ctx, digest, now, jti, family)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, codeRefused(ReasonCodeInvalid, errors.New("unknown code"))
	case err != nil:
		return nil, unavailable("storage_unavailable", err)
	}
	// One spent since it was read above is a replay all the same.
	if err := g.replay(ctx, req, ac, now); err != nil {
		return nil, err
	}
	req.trace.org = ac.OrgID
	// A copy of a session cookie must not turn an old sign-in into a
	// refresh family: /oauth2/authorize asks for a fresh sign-in before
	// offline_access but answers a consented client's request silently,
	// so the code's sign-in time decides (docs/security.md A-79, T-140).
	// The family recorded at consumption is then never issued.
	if refresh && !g.signedInRecently(ac) {
		refresh = false
	}
	// 6. What the code is bound to.
	switch {
	case ac.ClientID != client.ID:
		return nil, codeRefused(ReasonCodeClient, errors.New("code of another client"))
	case !now.Before(ac.ExpiresAt):
		return nil, codeRefused(ReasonCodeExpired, errors.New("code expired"))
	case redirect != ac.RedirectURI:
		return nil, codeRefused(ReasonCodeRedirect, errors.New("redirect_uri differs from the authorization request's"))
	case !verifierMatches(ac.Challenge, verifier):
		return nil, codeRefused(ReasonCodeVerifier, errors.New("code_verifier does not match the code_challenge, or only one of them is present"))
	}
	if reason, sc := browserFlowRefusal(ac.Scopes); reason != "" {
		// /oauth2/authorize no longer issues such codes; one issued before
		// (or by any later mistake) is refused here too (docs/security.md
		//
		return nil, codeRefused(reason, fmt.Errorf("code holds %s, which the browser flow never grants", sc))
	}
	// 7. The principal, still enabled in the code's organization, and the
	//    one client check.
	p, err := g.Store.GetPrincipal(ctx, ac.PrincipalID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, codeRefused(ReasonPrincipalDisabled, err)
	case err != nil:
		return nil, unavailable("storage_unavailable", err)
	case p.Disabled || p.OrgID != ac.OrgID:
		return nil, codeRefused(ReasonPrincipalDisabled, errors.New("principal "+p.ID+" disabled or of another organization"))
	}
	// A consent withdrawn after the code was issued ends the code too: its
	// tokens would be issued after the withdrawal, past the reach of the
	// row that ends the application's tokens (docs/security.md A-25). So
	// does a subject revocation of its person (sts revoke subject, or the
	// row a suspension writes, which a reactivation leaves): the code was issued
	// before the row, the tokens and the refresh family it buys would not
	// be (T-144). Both are judged by the code's exact creation, as an
	// exchange token is.
	consentID, subjectID := tokens.RevocationIDClientSubject(client.ID, p.ID), tokens.RevocationIDSubject(p.ID)
	rs, err := g.Store.GetRevocations(ctx, consentID, subjectID)
	if err != nil {
		return nil, unavailable("storage_unavailable", err)
	}
	for _, r := range rs {
		switch {
		case ac.CreatedAt.After(r.IssuedBefore):
		case r.ID == subjectID:
			return nil, codeRefused(ReasonCodeSubjectRevoked, errors.New("the code's person was revoked after the code was issued"))
		default:
			return nil, codeRefused(ReasonCodeConsent, errors.New("consent withdrawn after the code was issued"))
		}
	}
	if err := CheckClient(client, Issuance{Grant: g.Type(), OrgID: ac.OrgID, Scopes: ac.Scopes, Audiences: aud, Refresh: refresh}); err != nil {
		return nil, err
	}
	// 8. Mint: the access token under the recorded jti, the family under
	//    the recorded ID, the ID token for openid.
	at := now.Truncate(time.Second)
	c := tokens.AccessClaims{
		ID: jti, Subject: p.ID, Principal: string(p.Kind), OrgID: p.OrgID, ClientID: client.ID,
		Audience: aud, Scope: joinSpace(ac.Scopes),
		IssuedAt: tokens.NewNumericDate(at), NotBefore: tokens.NewNumericDate(at), Expiry: tokens.NewNumericDate(at.Add(life)),
	}
	if refresh {
		c.GrantID = family // revoking the family ends this token too
	}
	tok, c, err := g.Issuer.MintAccessToken(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("mint: %w", err)
	}
	req.trace.jti = c.ID
	resp := &Response{AccessToken: tok, IssuedTokenType: issuedType, TokenType: oauth2.TokenTypeBearer,
		ExpiresIn: int64(life / time.Second), Scope: c.Scope}
	if refresh {
		// The family ends within its lifetime of the code's consumption,
		// which bounds how long a replay's row must be kept (replay).
		notAfter := now.Add(g.familyLifetime())
		// Without offline_access the family is the session's: signing out
		// of sts (or the session ending any other way) ends it, as an
		// online session's refresh tokens end at Keycloak; with it, the
		// family outlives the session (OIDC Core §11; docs/security.md
		// It is bound to the session's lineage, so the same person
		// signing in again over the session keeps it. A code that
		// names no session (issued before it was recorded) begins a
		// family bound to none, as before.
		lineage := ac.SessionLineage
		if slices.Contains(ac.Scopes, ScopeOfflineAccess) {
			lineage = ""
		}
		if resp.RefreshToken, err = g.Refresh.beginFamily(ctx, family, g.Type(), client, c, ac.AuthTime, lineage, ac.Scopes, covered, notAfter); err != nil {
			if e, ok := errors.AsType[*oauth2.Error](err); ok {
				return nil, e // revoked meanwhile (docs/security.md T-160)
			}
			return nil, unavailable("storage_unavailable", err)
		}
	}
	if slices.Contains(ac.Scopes, ScopeOpenID) {
		id := tokens.IDClaims{Subject: p.ID, Audience: tokens.Audience{client.ID}, Nonce: ac.Nonce,
			OrgID: p.OrgID, Principal: string(p.Kind),
			IssuedAt: tokens.NewNumericDate(at), Expiry: tokens.NewNumericDate(at.Add(life))}
		if !ac.AuthTime.IsZero() {
			id.AuthTime = tokens.NewNumericDate(ac.AuthTime)
		}
		if slices.Contains(ac.Scopes, "email") {
			id.Email = p.Email
		}
		if slices.Contains(ac.Scopes, "profile") {
			id.Name = p.Name
		}
		iss := g.Issuer
		if g.IDTokens != nil {
			iss = g.IDTokens(id.Audience)
		}
		// at_hash binds it to the access token issued with it (OIDC Core
		// §3.1.3.6).
		if resp.IDToken, _, err = iss.MintIDTokenWith(ctx, id, tok); err != nil {
			return nil, fmt.Errorf("mint id token: %w", err)
		}
	}
	return resp, nil
}

// target is what the code ac covers (covered: the resources its
// authorization request asked for that the client still has, else the
// client's first audience, the
// same rule as client_credentials; refresh re-checks them against the
// list) and what this redemption's access token is for (aud: covered,
// narrowed by the request's audience and resource). The code was read,
// not spent (err is the read's): an unknown one is refused here; one of
// another client is left to the consumption, which spends and refuses it.
func (g *AuthorizationCode) target(req *Request, client *storage.Client, ac storage.AuthCode, err error) (covered, aud tokens.Audience, _ error) {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, nil, codeRefused(ReasonCodeInvalid, errors.New("unknown code"))
	case err != nil:
		return nil, nil, unavailable("storage_unavailable", err)
	case len(ac.Resources) > 0 && ac.ClientID == client.ID:
		// Within the client's audiences now: one it lost since the code
		// was issued would be in the family, whose first refresh is
		// then refused (docs/security.md T-190).
		for _, r := range ac.Resources {
			if clientauth.AllowsAudience(client, r) {
				covered = append(covered, r)
			}
		}
		if len(covered) == 0 {
			return nil, nil, refuse(oauth2.ErrorInvalidTarget, descTarget, ReasonAudienceNotAllowed, errors.New("client no longer has any of the code's resources"))
		}
	case len(client.Audiences) == 0:
		return nil, nil, refuse(oauth2.ErrorInvalidTarget, descTarget, ReasonAudienceRequired, errors.New("client has no audience"))
	default:
		covered = tokens.Audience{client.Audiences[0]}
	}
	aud, err = narrowTarget(req, covered)
	return covered, aud, err
}

// pkceOptional reports whether c may redeem a code without
// code_verifier: a confidential client registered with require_pkce
// false (docs/security.md T-90).
func pkceOptional(c *storage.Client) bool {
	return c.PKCEOptional && c.AuthMethod != oauth2.AuthMethodNone
}

// verifierMatches binds a code to the PKCE of its authorization request
// (RFC 7636 §4.6): a code issued with a challenge needs the verifier that
// hashes to it, and one issued without a challenge is refused when a
// verifier is presented (RFC 9700 §2.1.1), so neither side can be
// dropped or added on the way.
func verifierMatches(challenge, verifier string) bool {
	if challenge == "" || verifier == "" {
		return challenge == "" && verifier == ""
	}
	return subtle.ConstantTimeCompare([]byte(S256(verifier)), []byte(challenge)) == 1
}

// publicClient loads the registered public client id names.
func (g *AuthorizationCode) publicClient(ctx context.Context, id string) (*storage.Client, error) {
	if id == "" {
		return nil, refuse(oauth2.ErrorInvalidClient, descClient, ReasonClientAuthRequired, errors.New("no client_id and no client authentication"))
	}
	c, err := g.Store.GetClient(ctx, id)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, refuse(oauth2.ErrorInvalidClient, descClient, ReasonClientAuthRequired, errors.New("unknown client"))
	case err != nil:
		return nil, unavailable("storage_unavailable", err)
	case c.AuthMethod != oauth2.AuthMethodNone:
		return nil, refuse(oauth2.ErrorInvalidClient, descClient, ReasonClientAuthRequired, errors.New("confidential client without authentication"))
	}
	// Identified, not authenticated: its service account is judged as an
	// authenticated client's is (docs/security.md A-94).
	if _, err := clientauth.ServiceAccount(ctx, g.Store, nil, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// signedInRecently reports whether ac's person signed in less than
// SignInWithin before ac was issued; false when the sign-in time is
// unknown. The sign-in is the one sudo mode judges (SignedInAt: when
// the person authenticated, else the session's start, docs/security.md
// T-191); a code stored before it was recorded has it as its AuthTime
// (docs/security.md T-178).
func (g *AuthorizationCode) signedInRecently(ac storage.AuthCode) bool {
	at := ac.SignedInAt
	if at.IsZero() {
		at = ac.AuthTime
	}
	return !at.IsZero() && ac.CreatedAt.Before(at.Add(cmpOr(g.SignInWithin, DefaultSignInWithin)))
}

// revocationKeep is the refresh grant's: how long a revoked family's row
// is kept.
func (g *AuthorizationCode) revocationKeep() time.Duration {
	if g.Refresh == nil {
		return 0
	}
	return g.Refresh.RevocationKeep
}

// familyLifetime is the longest a refresh family the grant begins lives.
func (g *AuthorizationCode) familyLifetime() time.Duration {
	if g.Refresh == nil {
		return DefaultRefreshLifetime
	}
	return cmpOr(g.Refresh.Lifetime, DefaultRefreshLifetime)
}

// readCode reads the code req presents, without spending it. A code
// already redeemed is a replay: what its first redemption issued is ended
// and the refusal returned (replay, docs/security.md T-91, T-195). A
// missing or malformed code is storage.ErrNotFound without a read
// (digest nil), an unknown one storage.ErrNotFound after it; a failed
// read is the refusal to answer.
func (g *AuthorizationCode) readCode(ctx context.Context, req *Request) (digest []byte, ac storage.AuthCode, err error) {
	code := req.form.Get("code")
	if code == "" || secret.PrefixAuthCode.Parse(code) != nil {
		return nil, ac, storage.ErrNotFound
	}
	digest = secret.Digest(g.Pepper, code)
	switch ac, err = g.Store.GetAuthCode(ctx, digest); {
	case errors.Is(err, storage.ErrNotFound):
		return digest, ac, err
	case err != nil:
		return digest, ac, unavailable("storage_unavailable", err)
	}
	return digest, ac, g.replay(ctx, req, ac, storage.Now(nowOf(g.Now)))
}

// replay judges a code read or consumed: nil when it was unused; else
// this is a second presentation, and whatever its first redemption
// issued is revoked, the access token by jti and the refresh family whole
// (RFC 6749 §10.5), and the refusal returned. The refusal is audited by
// the handler, in the code's organization. It is the one place a replay
// is handled.
//
// The first redemption may still be under way, its family not stored yet
// (RevokeRefreshFamily then finds nothing to mark), so the family's
// grant: row is what ends it: the refresh grant and introspection read it
// on every use, and it is kept until the family has expired (its lifetime
// from the code's consumption) and every token it minted with it
// (docs/security.md T-111).
func (g *AuthorizationCode) replay(ctx context.Context, req *Request, ac storage.AuthCode, now time.Time) error {
	if ac.UsedAt.IsZero() {
		return nil
	}
	// The replay is the code's organization's to see, whose tokens it
	// ends, whoever presented it (docs/security.md T-91).
	req.trace.org = ac.OrgID
	if ac.AccessJTI != "" {
		// The access token lives at most the grant's maximum
		// (keys.max_token_lifetime, which expires_in may ask for in full)
		// from its first use, and is accepted for the leeway past it: the
		// row is kept that long, as the refresh grant keeps its own, and
		// never less than the default maximum and an hour. Kept for the
		// default maximum alone, a longer token was live again once the
		// row was collected (docs/security.md T-194).
		keep := max(cmpOr(g.Lifetime, DefaultLifetime), cmpOr(g.MaxLifetime, DefaultMaxLifetime), DefaultMaxLifetime) + time.Hour
		r := storage.Revocation{ID: tokens.RevocationIDJTI(ac.AccessJTI), Reason: ReasonCodeReused, CreatedAt: now,
			ExpiresAt: ac.UsedAt.Add(max(keep, tokens.RevocationKeep(g.revocationKeep())))}
		if err := g.Store.PutRevocation(ctx, r); err != nil {
			return unavailable("storage_unavailable", err)
		}
	}
	var n int64
	if ac.FamilyID != "" {
		// Every access token the family minted, or will mint; the row
		// first, so that it ends the family whatever becomes of the
		// flags' UPDATE (docs/security.md T-160).
		r := tokens.FamilyRevocation(ac.FamilyID, ReasonCodeReused, now, ac.UsedAt.Add(g.familyLifetime()), g.revocationKeep())
		if err := g.Store.PutRevocation(ctx, r); err != nil {
			return unavailable("storage_unavailable", err)
		}
		var err error
		if n, err = g.Store.RevokeRefreshFamily(ctx, ac.FamilyID); err != nil {
			return unavailable("storage_unavailable", err)
		}
	}
	g.logger().WarnContext(ctx, "authorization code reused; what it issued is revoked", "code", ac.ID, "client_id", ac.ClientID,
		"jti", ac.AccessJTI, "family", ac.FamilyID, "refresh_tokens_revoked", n)
	return codeRefused(ReasonCodeReused, errors.New("code already redeemed"))
}

func (g *AuthorizationCode) logger() *slog.Logger {
	if g.Logger != nil {
		return g.Logger
	}
	return slog.New(slog.DiscardHandler)
}
