package tokens

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
)

// RevocationChecker says whether the token with claims c has been
// revoked: by its jti, by its grant (the refresh-token family it came
// from), because every token of its subject issued up to some time was,
// or, for a person's token issued to a client, every token of that client
// for that person (a withdrawn consent). Implementations must be safe to
// call concurrently.
type RevocationChecker interface {
	IsRevoked(ctx context.Context, c *AccessClaims) (bool, error)
	// IsRevokedAt is IsRevoked for c judged as issued at iat, an exact
	// time rather than c's iat (whole seconds): what a timed row is
	// compared with when the token is judged by a stored time, as an
	// exchange token's creation (docs/security.md A-73).
	IsRevokedAt(ctx context.Context, c *AccessClaims, iat time.Time) (bool, error)
}

// StoreRevocations is the [RevocationChecker] over storage: rows
// "jti:<jti>" revoke one token, rows "grant:<family>" every token of a
// refresh-token family, rows "sub:<sub>" every token of the subject
// issued at or before IssuedBefore, and rows "client_sub:…" every token
// of one client for one person issued at or before IssuedBefore.
type StoreRevocations struct {
	Store storage.RevocationStore
}

// RevocationIDJTI is the revocation row ID of one access token.
func RevocationIDJTI(jti string) string { return revocationPrefixJTI + jti }

const revocationPrefixJTI = "jti:"

// RevocationIDSubject is the revocation row ID of all tokens of a subject.
func RevocationIDSubject(sub string) string { return revocationPrefixSubject + sub }

const revocationPrefixSubject = "sub:"

// RevocationIDGrant is the revocation row ID of every access token of a
// refresh-token family (the grant_id claim).
func RevocationIDGrant(family string) string { return revocationPrefixGrant + family }

const revocationPrefixGrant = "grant:"

// appendPoolRevocationIDs appends the pool and provider rows of every
// pool c was exchanged through, its own and its src_pool entries: the
// rows a deletion leaves (storage.PoolRevocation, docs/security.md A-54).
func appendPoolRevocationIDs(ids []string, c *AccessClaims) []string {
	if c.Pool != "" {
		ids = append(ids, storage.RevocationIDPool(c.Pool), storage.RevocationIDProvider(c.Pool, c.Provider))
	}
	for _, e := range c.SourcePools {
		pool, provider, _ := strings.Cut(e, "/")
		ids = append(ids, storage.RevocationIDPool(pool), storage.RevocationIDProvider(pool, provider))
	}
	return ids
}

// RevocationIDClientSubject is the revocation row ID of every token a
// client holds for one person (a withdrawn consent). The client ID's
// length keeps the pair unambiguous whatever either contains.
func RevocationIDClientSubject(client, sub string) string {
	return revocationPrefixClientSubject + strconv.Itoa(len(client)) + ":" + client + ":" + sub
}

const revocationPrefixClientSubject = "client_sub:"

// ClientSubjectRevocation is the row that ends every token client was
// issued for the person sub up to now, kept for keep (see
// [RevocationKeep]). A token issued after it (the person consents again)
// is not affected.
func ClientSubjectRevocation(client, sub, reason string, now time.Time, keep time.Duration) storage.Revocation {
	return storage.Revocation{ID: RevocationIDClientSubject(client, sub), IssuedBefore: storage.Now(now), Reason: reason,
		CreatedAt: storage.Now(now), ExpiresAt: storage.Now(now.Add(RevocationKeep(keep)))}
}

// RevocationKeep is how long a row that ends every token issued before it
// must be kept: the longest any token lives (keys.max_token_lifetime)
// plus the leeway, after which every such token has expired. keep ≤ 0
// means DefaultMaxLifetime plus DefaultLeeway, right for the default
// configuration only; serve passes its own.
func RevocationKeep(keep time.Duration) time.Duration {
	if keep <= 0 {
		return DefaultMaxLifetime + DefaultLeeway
	}
	return keep
}

// GrantRevocation is the row that ends the access tokens of a revoked
// refresh-token family, kept for keep ([RevocationKeep]): no token is
// minted from the family after it is revoked, so past that every token
// the family minted has expired.
func GrantRevocation(family, reason string, now time.Time, keep time.Duration) storage.Revocation {
	return storage.Revocation{ID: RevocationIDGrant(family), Reason: reason, CreatedAt: storage.Now(now),
		ExpiresAt: storage.Now(now.Add(RevocationKeep(keep)))}
}

// FamilyRevocation is [GrantRevocation] kept until expires (the family's
// expiry, which all its refresh tokens share) plus keep when that is
// later: the row then ends the family alone, whatever its refresh tokens'
// revoked flags say (docs/security.md T-160).
func FamilyRevocation(family, reason string, now, expires time.Time, keep time.Duration) storage.Revocation {
	r := GrantRevocation(family, reason, now, keep)
	if until := storage.Now(expires.Add(RevocationKeep(keep))); until.After(r.ExpiresAt) {
		r.ExpiresAt = until
	}
	return r
}

// FamilyEnder is the storage [EndFamily] writes.
type FamilyEnder interface {
	PutRevocation(ctx context.Context, r storage.Revocation) error
	RevokeRefreshFamily(ctx context.Context, familyID string) (int64, error)
}

// EndFamily revokes a refresh-token family: its grant: row first
// ([GrantRevocation], kept keep), which ends the family's access tokens
// and every refresh of it at once, then its refresh tokens' revoked
// flags. Once the flags are set the row need only outlive the access
// tokens, so an ordinary sign-out's row leaves the SQLite node's
// revocation view after keep (docs/design.md#revocations-on-one-node).
// When the flags' UPDATE fails the row is extended to the family's
// expiry ([FamilyRevocation]; storage keeps the later ExpiresAt) before
// the error is returned, so the row alone ends the family
// (docs/security.md T-160). It returns how many refresh tokens the
// UPDATE revoked.
func EndFamily(ctx context.Context, s FamilyEnder, family, reason string, now, expires time.Time, keep time.Duration) (int64, error) {
	if err := s.PutRevocation(ctx, GrantRevocation(family, reason, now, keep)); err != nil {
		return 0, err
	}
	n, err := s.RevokeRefreshFamily(ctx, family)
	if err != nil {
		// Detached: the UPDATE usually failed because the request's
		// deadline passed; this write still gets a bound of its own.
		dctx, cancel := storage.Detach(ctx)
		perr := s.PutRevocation(dctx, FamilyRevocation(family, reason, now, expires, keep))
		cancel()
		if perr != nil {
			return n, fmt.Errorf("%w; keeping the family's row until it expires: %w", err, perr)
		}
		return n, err
	}
	return n, nil
}

// IsRevoked implements [RevocationChecker]. iat has whole-second precision
// (NumericDate), so a subject revocation also covers tokens issued in the
// same second as IssuedBefore: fail closed rather than let a token minted a
// moment before the revocation through. The rows are read in one storage
// lookup, on every call: a revocation is seen at once (docs/design.md#storage-and-replicas).
func (s StoreRevocations) IsRevoked(ctx context.Context, c *AccessClaims) (bool, error) {
	return s.IsRevokedAt(ctx, c, c.IssuedAt.Time())
}

// IsRevokedAt implements [RevocationChecker]: a timed row (IssuedBefore,
// stored to the microsecond on SQLite and PostgreSQL, storage.Now) ends c
// when iat is not after it; a time stored by storage as well compares
// exactly, the same microsecond counting as revoked.
func (s StoreRevocations) IsRevokedAt(ctx context.Context, c *AccessClaims, iat time.Time) (bool, error) {
	jtiID, subID, grantID, clientSubID := RevocationIDJTI(c.ID), RevocationIDSubject(c.Subject), "", ""
	// jti, sub, grant, client_sub, pool, provider, and one row per source.
	n := 6 + len(c.SourceJTIs) + len(c.SourceClientIDs) + len(c.SourceGrants) + len(c.SourceSubjects) + 2*len(c.SourcePools)
	ids := append(make([]string, 0, n), jtiID, subID)
	if c.GrantID != "" {
		grantID = RevocationIDGrant(c.GrantID)
		ids = append(ids, grantID)
	}
	person := c.Principal == string(storage.PrincipalUser)
	if c.ClientID != "" && person {
		// Consents are a person's: only their tokens pay for this row.
		clientSubID = RevocationIDClientSubject(c.ClientID, c.Subject)
		ids = append(ids, clientSubID)
	}
	if person {
		// A consent withdrawn from a client ends what another client
		// re-exchanged its tokens for (src_client_id).
		for _, id := range c.SourceClientIDs {
			ids = append(ids, RevocationIDClientSubject(id, c.Subject))
		}
	}
	// A person acting in it (act) who withdrew their consent to a client
	// it came through (docs/security.md A-69).
	actorIDs := actorConsentIDs(c)
	ids = append(ids, actorIDs...)
	for _, j := range c.SourceJTIs {
		// A token exchanged from a revoked one ends with it.
		ids = append(ids, RevocationIDJTI(j))
	}
	// And with the families and principals its actors derive from
	// (src_grant, src_sub; docs/security.md A-46).
	for _, g := range c.SourceGrants {
		ids = append(ids, RevocationIDGrant(g))
	}
	for _, sub := range c.SourceSubjects {
		ids = append(ids, RevocationIDSubject(sub))
	}
	// And with a pool or provider deleted since.
	ids = appendPoolRevocationIDs(ids, c)
	rs, err := s.Store.GetRevocations(ctx, ids...)
	if err != nil {
		return false, fmt.Errorf("tokens: revocation check: %w", err)
	}
	for _, r := range rs {
		switch r.ID {
		case jtiID, grantID:
			return true, nil
		case subID, clientSubID:
			if !iat.After(r.IssuedBefore) {
				return true, nil
			}
		default:
			if storage.IsPoolRevocation(r.ID) && !iat.After(r.IssuedBefore) {
				return true, nil // a pool or provider it came through, deleted since
			}
			if j, ok := strings.CutPrefix(r.ID, revocationPrefixJTI); ok && slices.Contains(c.SourceJTIs, j) {
				return true, nil // a token it was exchanged from
			}
			if g, ok := strings.CutPrefix(r.ID, revocationPrefixGrant); ok && slices.Contains(c.SourceGrants, g) {
				return true, nil // a family an actor of it came from
			}
			if sub, ok := strings.CutPrefix(r.ID, revocationPrefixSubject); ok && !iat.After(r.IssuedBefore) && slices.Contains(c.SourceSubjects, sub) {
				return true, nil // every token of an actor of it, up to then
			}
			if person && !iat.After(r.IssuedBefore) && slices.ContainsFunc(c.SourceClientIDs, func(id string) bool {
				return r.ID == RevocationIDClientSubject(id, c.Subject)
			}) {
				return true, nil // a consent withdrawn from a client it came from
			}
			if !iat.After(r.IssuedBefore) && slices.Contains(actorIDs, r.ID) {
				return true, nil // a consent its actor withdrew from a client it came through
			}
		}
	}
	return false, nil
}

// actorConsentIDs are the client_sub: rows (withdrawn consents) of the
// people acting in c, for every registered client c came through: its
// own, those in src_client_id, and the actors' own. A delegated token
// names its actor only in act (its sub is not the actor's), and the actor
// token it was exchanged with ends when the person withdraws their
// consent to that token's client, or to a client it came from; c, which
// acts as that person, ends with it (docs/security.md A-69). The people
// are the actors of ours in act (an actor of ours carries its token's
// registered client in act.client_id; an external one, or one that came
// through a pool, gave no consent here) and the principals in src_sub:
// an exchange keeps only the actor token's own identity in act, so the
// person an actor token itself acted for (a second-hop delegation) is
// named in src_sub alone. Which client a person came through is
// not recorded, so every one is paired with every client: a person acting
// in c who withdraws their consent to a client c came through by another
// path (its subject's) ends c as well. Neither act nor src_sub says a
// principal's kind, so a service account in them is paired too; a client
// ID that names no registered client (a pool's provider, "sts-api") has
// no consent and is skipped.
func actorConsentIDs(c *AccessClaims) []string {
	var subs, clients []string
	for a := c.Act; a != nil; a = a.Act {
		if a.Subject == "" || !storage.IsUUID(a.ClientID) {
			continue
		}
		if !slices.Contains(subs, a.Subject) {
			subs = append(subs, a.Subject)
		}
		if !slices.Contains(clients, a.ClientID) {
			clients = append(clients, a.ClientID)
		}
	}
	for _, sub := range c.SourceSubjects {
		if sub != "" && !slices.Contains(subs, sub) {
			subs = append(subs, sub)
		}
	}
	if len(subs) == 0 {
		return nil
	}
	for _, id := range append([]string{c.ClientID}, c.SourceClientIDs...) {
		if storage.IsUUID(id) && !slices.Contains(clients, id) {
			clients = append(clients, id)
		}
	}
	ids := make([]string, 0, len(subs)*len(clients))
	for _, sub := range subs {
		for _, id := range clients {
			ids = append(ids, RevocationIDClientSubject(id, sub))
		}
	}
	return ids
}

// FamilyTemplate is a refresh family's claim template, stored with each
// of its refresh tokens (a successor copies it): the claims of the access
// tokens it mints, and the times its timed revocation rows are judged
// against, which no token carries (docs/security.md A-66).
type FamilyTemplate struct {
	AccessClaims
	// Begun is when the family was begun (its first token's creation).
	Begun time.Time `json:"fam_begun,omitzero"`
	// SourcesIssued is the latest iat of the tokens it was exchanged from
	// (the subject token's, and the actor token's), never after Begun;
	// Begun when one had none. The latest, not the earliest: a row
	// reached through the sources cannot say which token it is about, and
	// judged against the older one, a row about the other, fresh, token
	// (a fresh actor token after `sts revoke subject <actor>`, a person's
	// token after a renewed consent) would end a family it has nothing to
	// do with. With one source this is that token's iat.
	SourcesIssued time.Time `json:"fam_src_iat,omitzero"`
	// AuthTime is when the person signed in to begin a family of the
	// authorization_code grant (zero when unknown, and for every other
	// family): the auth_time of the ID tokens its refreshes answer (OIDC
	// Core §12.2).
	AuthTime time.Time `json:"fam_auth_time,omitzero"`
	// Grant is the grant type that began the family (token exchange,
	// jwt-bearer, authorization_code). A family is a standing form of
	// that grant: its client must still hold it for the family to
	// refresh, as it must hold refresh_token (docs/security.md A-98).
	// Empty in a family stored before it was recorded, which BegunBy
	// judges by its shape.
	Grant string `json:"fam_grant,omitempty"`
	// SessionLineage is the lineage (storage.WebSession.Lineage) of the
	// browser session a family of the authorization_code grant was begun
	// in without offline_access: the family lives only as long as that
	// session and those of the same person that replace it when they
	// sign in again, as an online session's refresh tokens do at Keycloak
	// (docs/security.md ). Empty for every other family
	// (offline_access, OIDC Core §11; any other grant), and for one
	// stored before it was recorded, which outlives its session as
	// before.
	SessionLineage string `json:"fam_lineage,omitempty"`
}

// BegunBy is the grant types one of which the family's client must hold
// for the family to refresh (docs/security.md A-98): the recorded Grant;
// for a family stored before it was recorded, the grant its shape says
// began it: authorization_code for one [BegunByAuthorizationCode], token
// exchange or jwt-bearer (which begin the same families) for any other.
func (t *FamilyTemplate) BegunBy() []string {
	switch {
	case t.Grant != "":
		return []string{t.Grant}
	case BegunByAuthorizationCode(&t.AccessClaims):
		return []string{oauth2.GrantTypeAuthorizationCode}
	}
	return []string{oauth2.GrantTypeTokenExchange, oauth2.GrantTypeJWTBearer}
}

// BegunByAuthorizationCode reports whether a refresh family's claim
// template is one the authorization_code grant began: a person acting
// through a client, derived from no pool, no personal access token and no
// earlier token of ours (token exchange sets one of those on every family
// it begins).
func BegunByAuthorizationCode(c *AccessClaims) bool {
	return c.Pool == "" && c.PATID == "" && c.PATGeneration == "" && len(c.SourceJTIs) == 0 && c.Act == nil
}

// NewFamilyTemplate is the template of a family begun at begun from
// tokens issued at sources (zero ones, and ones after begun, count as
// begun).
func NewFamilyTemplate(c AccessClaims, begun time.Time, sources ...time.Time) FamilyTemplate {
	t := FamilyTemplate{AccessClaims: c, Begun: begun}
	for _, at := range sources {
		if at.IsZero() || at.After(begun) {
			at = begun
		}
		if at.After(t.SourcesIssued) {
			t.SourcesIssued = at
		}
	}
	if t.SourcesIssued.IsZero() {
		t.SourcesIssued = begun
	}
	return t
}

// FamilySourceRevoked reports whether what a refresh-token family was
// begun from has been revoked since, t being the family's claim template:
// one of our tokens it was exchanged from (src_jti), the earlier family
// that token belonged to (grant_id, when it is not the family's own), an
// actor's family (src_grant), or a timed row: every token of an actor up
// to then (src_sub: a sub: row; docs/security.md A-46), a person's consent
// withdrawn from a client in src_client_id (a client_sub: row, A-66), or
// a pool or provider it came through deleted or changed. The
// refresh grant and introspection refuse such a family: every token it
// minted would be refused anyway (docs/security.md A-36).
//
// A timed row ends the family when what it judges was issued by then,
// whatever happened since, so a rotation, or a family begun in the
// moments before this process sees the row (another process's, read
// within 2 s on SQLite), never outlives it: the family's own pool's
// rows are judged against the family's beginning (a pool created again
// under the same ID does not bring it back, and does not end the families
// begun through it since), the rows reached through the tokens it was
// exchanged from against the earliest of those tokens' iat. Both times
// are in the template, so the check reads the revocation rows and nothing
// else. A family stored without them (by an older version) is judged by
// created, its current refresh token's creation, until it expires: a
// family rotated, or begun, before this process saw a row escapes it.
// The family's own grant: row ends it as well, whatever its refresh
// tokens' revoked flag says (docs/security.md T-111), and so do its own
// subject's sub: row and its own client's client_sub: row, judged
// against its beginning (T-160; t's sub and client_id must be the
// family's).
func FamilySourceRevoked(ctx context.Context, s storage.RevocationStore, t *FamilyTemplate, family string, created time.Time) (bool, error) {
	c := &t.AccessClaims
	ids := make([]string, 0, len(c.SourceJTIs)+len(c.SourceGrants)+2*len(c.SourcePools)+len(c.SourceSubjects)+len(c.SourceClientIDs)+4)
	for _, j := range c.SourceJTIs {
		ids = append(ids, RevocationIDJTI(j))
	}
	for _, g := range c.SourceGrants {
		ids = append(ids, RevocationIDGrant(g))
	}
	ids = appendPoolRevocationIDs(ids, c)
	for _, sub := range c.SourceSubjects {
		ids = append(ids, RevocationIDSubject(sub))
	}
	// A person's consent withdrawn from a client a token it was begun
	// from was issued to (src_client_id): that client's families end with
	// it (RevokeRefreshClientSubject), and so does one another client
	// began by re-exchanging its token (docs/security.md A-66).
	if c.Principal == string(storage.PrincipalUser) {
		for _, id := range c.SourceClientIDs {
			ids = append(ids, RevocationIDClientSubject(id, c.Subject))
		}
	}
	// And a person acting in it (act) withdrawing theirs.
	ids = append(ids, actorConsentIDs(c)...)
	// The family's own subject revoked, and its own client's consent
	// withdrawn, up to when it was begun: the rows are written before the
	// revocation marks the rows of the families it ends, so a refresh that
	// begins after the row is refused, and one under way stores at most
	// one more token, which the revocation's next pass marks; a family
	// begun meanwhile reads them once stored (docs/security.md T-160).
	// sub and client_id are the family's (callers set them from its row).
	// A row that is a source's too keeps the source's (earlier) time.
	var ownSub, ownConsent string
	if c.Subject != "" {
		if id := RevocationIDSubject(c.Subject); !slices.Contains(ids, id) {
			ownSub = id
			ids = append(ids, id)
		}
		if id := RevocationIDClientSubject(c.ClientID, c.Subject); c.ClientID != "" && !slices.Contains(ids, id) {
			ownConsent = id
			ids = append(ids, id)
		}
	}
	if c.GrantID != "" && c.GrantID != family {
		ids = append(ids, RevocationIDGrant(c.GrantID))
	}
	// The family's own row: a replayed authorization code revokes by the
	// family's ID a family that may be stored only after (docs/security.md
	// T-111), so the row, not the rows' revoked flag, is what ends it.
	ids = append(ids, RevocationIDGrant(family))
	rs, err := s.GetRevocations(ctx, ids...)
	if err != nil {
		return false, fmt.Errorf("tokens: revocation check: %w", err)
	}
	begun, sources := t.Begun, t.SourcesIssued
	if begun.IsZero() {
		begun = created // stored before the template recorded it
	}
	if sources.IsZero() || sources.After(begun) {
		sources = begun
	}
	for _, r := range rs {
		var at time.Time // what the row is judged against; zero: untimed
		switch {
		case r.ID == ownSub || r.ID == ownConsent:
			// The family's own: ended when it was begun by then, as
			// RevokeRefreshSubject (a token of the family created by
			// then) and RevokeRefreshClientSubject judge it. Only the
			// row of a source (below) is judged by its tokens' iat.
			at = begun
		case strings.HasPrefix(r.ID, revocationPrefixSubject), strings.HasPrefix(r.ID, revocationPrefixClientSubject):
			at = sources
		case storage.IsPoolRevocation(r.ID):
			at = begun // the family's own pool
			if sourcePoolRow(c, r.ID) {
				at = sources
			}
		}
		if at.IsZero() || !at.After(r.IssuedBefore) {
			return true, nil
		}
	}
	return false, nil
}

// sourcePoolRow reports whether id is the row of a pool or provider in
// c's src_pool.
func sourcePoolRow(c *AccessClaims, id string) bool {
	for _, e := range c.SourcePools {
		pool, provider, _ := strings.Cut(e, "/")
		if id == storage.RevocationIDPool(pool) || id == storage.RevocationIDProvider(pool, provider) {
			return true
		}
	}
	return false
}

// SessionReader reads a person's browser session by its lineage
// (storage.SessionStore.GetWebSessionByLineage).
type SessionReader interface {
	GetWebSessionByLineage(ctx context.Context, principalID, lineage string) (storage.WebSession, error)
}

// SessionBounds are the browser sessions' timeouts as configured now
// (web.session.idle_timeout, web.session.absolute_timeout), by which a
// family bound to a session judges it as the pages do (docs/security.md
// A zero one is not judged.
type SessionBounds struct {
	Idle, Absolute time.Duration
	// Accepts reports whether a session signed in by its method
	// (storage.WebSession.Method) may still be used: false for one begun
	// through a web.login.oidc provider no longer configured with the
	// issuer and client it signed in with (web.MethodAccepted, the pages'
	// own rule; docs/security.md ). Nil: not judged.
	Accepts func(method string) bool
}

// CheckFamilySession judges a family bound to the browser session it was
// begun in (t.SessionLineage; docs/security.md A-99): nil, and that
// session, while a session of the family's subject with that lineage is
// stored and live at now (the session it was begun in, or one the same
// person signed in again over it, A-100); an error wrapping
// [ErrSessionEnded] once none is (signed out, ended from the session
// list, trimmed, another person signed in over it, its person disabled
// or deleted), and with the session found when it is stored but no
// longer live: past its absolute end, signed in longer ago than b's
// absolute timeout, or not used for b's idle timeout (A-104: the
// application refreshing is the session's activity, as at Keycloak's SSO
// Session Idle, so a session idle past it has ended, as the pages would
// find it), or signed in by a method b no longer accepts (a removed or
// repointed upstream provider, A-51, A-105); an unavailable source check when storage cannot say, or s is
// nil (fail closed). A family bound to no session (offline_access, any
// other grant, or stored before sessions were recorded) is nil without a
// read.
func CheckFamilySession(ctx context.Context, s SessionReader, t *FamilyTemplate, now time.Time, b SessionBounds) (storage.WebSession, error) {
	if t.SessionLineage == "" {
		return storage.WebSession{}, nil
	}
	if s == nil {
		return storage.WebSession{}, sourceUnavailable(errors.New("no session store to judge the family's browser session"))
	}
	w, err := s.GetWebSessionByLineage(ctx, t.Subject, t.SessionLineage)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return storage.WebSession{}, invalid(ErrSessionEnded, "browser session of lineage %s ended", t.SessionLineage)
	case err != nil:
		return storage.WebSession{}, sourceUnavailable(err)
	case w.PrincipalID != t.Subject:
		return storage.WebSession{}, invalid(ErrSessionEnded, "browser session of lineage %s is another person's", t.SessionLineage)
	}
	if ended := w.Ended(now, b.Idle, b.Absolute); ended != "" {
		return w, invalid(ErrSessionEnded, "browser session of lineage %s %s", t.SessionLineage, ended)
	}
	if b.Accepts != nil && !b.Accepts(w.Method) {
		return w, invalid(ErrSessionEnded, "browser session of lineage %s signed in by a method no longer configured", t.SessionLineage)
	}
	return w, nil
}
