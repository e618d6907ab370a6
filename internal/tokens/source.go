package tokens

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
	"github.com/opensts/sts/internal/trust"
)

// SourceChecker says whether what an access token was derived from still
// stands: its principal (sub, when the principal claim names a kind) is
// present and enabled in the token's organization, its personal access
// token (pat_id, pat_gen), when it has one, is present and not regenerated,
// its client (client_id, when it names a registered client) and the
// clients of the tokens it was exchanged from (src_client_id) are present
// and enabled, and its pool and provider (pool, provider), when it was
// exchanged through one, are present and enabled in its organization.
// It returns nil, an error wrapping [ErrSourceGone], or an error wrapping
// [ErrSourceUnavailable] when storage cannot say (fail closed).
// Implementations must be safe to call concurrently.
type SourceChecker interface {
	CheckSource(ctx context.Context, c *AccessClaims) error
}

// ErrSourceUnavailable is the cause of an [sts.Unavailable] source check.
var ErrSourceUnavailable = errors.New("token source check unavailable")

// DefaultSourceTTL is how long a source found alive is believed without
// asking storage again: the record cache's bound, so disabling a principal
// or deleting a PAT on another node is seen here within it.
const DefaultSourceTTL = 5 * time.Second

// maxSourceEntries caps the cache; when full, the least recently used
// source makes room (TestSourceCacheEvictsGradually).
const maxSourceEntries = 10000

// SourceStore is what [StoreSources] reads.
type SourceStore interface {
	GetPrincipal(ctx context.Context, id string) (storage.Principal, error)
	GetPAT(ctx context.Context, id string) (storage.PAT, error)
	GetClient(ctx context.Context, id string) (storage.Client, error)
}

// PoolRegistry is the node's trust registry (*trust.Registry): pools and
// providers as this node sees them, a change made here at once and one
// made elsewhere within its refresh interval.
type PoolRegistry interface {
	Check(ctx context.Context, poolID, providerID string) (*trust.Pool, error)
}

// recordCache is the node's record cache (storage/cache): when the store
// is one, principals and clients are read through it, so a change made on
// this node is seen here at once.
type recordCache interface {
	CachedPrincipal(ctx context.Context, id string) (p storage.Principal, cached bool, err error)
	CachedClient(ctx context.Context, id string) (c storage.Client, cached bool, err error)
}

// StoreSources is the [SourceChecker] over storage with a small per-node
// cache of live sources (TTL [DefaultSourceTTL]): within the TTL a token
// costs no storage read. Only a live source is cached; a refusal always
// comes from a fresh read, so a re-enabled principal is accepted at once.
// Build it with [NewStoreSources].
type StoreSources struct {
	Store SourceStore
	// Pools judges the pool and provider of a token exchanged through
	// one; nil skips that check (tests without a trust registry).
	Pools PoolRegistry
	// Keys judges the keys of the tokens a token was exchanged from
	// (src_kid): each must still be one this node trusts, so revoking a
	// key ends what was exchanged from its tokens (docs/security.md
	// T-192). The verifier's key set; nil skips that check (tests).
	Keys signer.KeySet
	// Audiences are the audiences an exchange allows through every pool
	// besides the pool's own: the token exchange's DefaultAudience and
	// Audiences. A token of a pool for an audience in neither this list
	// nor the pool's is refused (docs/security.md A-61); nil allows the
	// pool's own only (fail closed).
	Audiences []string
	// TTL bounds how long a live source is believed; zero or negative
	// turns the cache off.
	TTL time.Duration
	// SessionBounds are the browser sessions' timeouts, by which a family
	// bound to one is judged at introspection as at refresh
	// (CheckFamilySession; docs/security.md A-104); zero: not judged.
	SessionBounds SessionBounds
	// InstanceAdmins are the principals the configuration makes instance
	// administrators (instance_admins) besides those whose stored flag is
	// set: a token's source subject of another organization than the
	// token's stands only while it is one (docs/security.md A-106).
	InstanceAdmins []string
	// Now is the clock; time.Now when nil.
	Now func() time.Time

	mu    sync.Mutex
	alive *simplelru.LRU[string, time.Time] // key → when the read that found it alive began; nil until first use
}

// NewStoreSources returns the source checker over s and pools (nil: no
// pool check) with DefaultSourceTTL.
func NewStoreSources(s SourceStore, pools PoolRegistry) *StoreSources {
	return &StoreSources{Store: s, Pools: pools, TTL: DefaultSourceTTL}
}

// PATGeneration is the pat_gen claim of a PAT whose stored digest is
// digest: the digest's short ID. Regenerating a PAT changes its digest,
// hence its generation, which ends every token derived from the old
// secret. It reveals nothing of the secret (the digest is keyed).
func PATGeneration(digest []byte) string { return secret.DigestID(digest) }

func (s *StoreSources) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// CheckSource implements [SourceChecker].
func (s *StoreSources) CheckSource(ctx context.Context, c *AccessClaims) error {
	if storage.PrincipalKind(c.Principal).Valid() {
		if _, ok := s.Store.(recordCache); ok {
			// The record cache already serves the row without I/O within
			// its TTL, and forgets it at once when this node changes it.
			if err := s.principal(ctx, c); err != nil {
				return err
			}
		} else if err := s.check(ctx, "p\x00"+c.Subject+"\x00"+c.OrgID, func() error { return s.principal(ctx, c) }); err != nil {
			return err
		}
	}
	if err := s.clientStands(ctx, c.ClientID, c.OrgID, c.Scope, c.Pool, c.Audience); err != nil {
		return err
	}
	// A token another client re-exchanged ends with the clients of the
	// tokens it came from too (src_client_id).
	// Present and enabled, and still listing the scope an entry names:
	// the token's scope, pool and audience were judged against its own
	// client's lists, and one an exchange token bought is not bounded by
	// the lists of the clients its creator's credential came from, but it
	// ends once that client no longer lists what the creator's credential
	// drew from it (SourceClient; docs/security.md A-92).
	// An entry naming a pool's client_id with a scope is what the
	// creator's credential drew from that pool's ceiling. An entry
	// of a subject or actor token of ours names its pool and audiences
	// too, which its client must still allow, as for that token
	//
	for _, e := range c.SourceClientIDs {
		id, scope, pool, aud, ok := ParseSourceClient(e)
		if !ok {
			return invalid(ErrSourceGone, "src_client_id entry of client %s unreadable", id)
		}
		if pool, provider, ok := ParsePoolClientID(id); ok && scope != "" {
			if err := s.poolGrants(ctx, pool, provider, scope); err != nil {
				return err
			}
			continue
		}
		if err := s.clientStands(ctx, id, c.OrgID, scope, pool, aud); err != nil {
			return err
		}
	}
	if c.Pool != "" && s.Pools != nil {
		// In memory: the registry's snapshot answers without I/O.
		if err := s.pool(ctx, c); err != nil {
			return err
		}
	}
	if c.PATID != "" || c.PATGeneration != "" {
		// The scope is part of the key: a PAT narrowed since ends only the
		// tokens that hold more than it now does.
		if err := s.check(ctx, "t\x00"+c.PATID+"\x00"+c.PATGeneration+"\x00"+c.Subject+"\x00"+c.Scope, func() error { return s.pat(ctx, c) }); err != nil {
			return err
		}
	}
	if c.DerivesFurther() {
		return s.further(ctx, c)
	}
	return nil
}

// FamilyChecker is a [SourceChecker] that also judges a refresh family by
// what only its refresh needs (refresh-token introspection uses it, so a
// family introspects active only while a refresh would be honoured).
type FamilyChecker interface {
	CheckFamily(ctx context.Context, t *FamilyTemplate) error
}

// CheckFamily implements [FamilyChecker]: t is a family's template, its
// claims with their subject, organization, principal, client and
// audiences. It is
// CheckSource, and then what the refresh grant checks beyond it
// (grants.CheckClient, withinPool): the family's client still holds the
// refresh_token grant and the grant that began the family (its Grant,
// docs/security.md A-98), and its pool, when it has one, still grants
// offline_access, and the browser session it is bound to, if any,
// still lives (CheckFamilySession, read from the store when it is a
// [SessionReader]; A-99). The client is read as CheckSource reads it (a
// refusal read afresh).
func (s *StoreSources) CheckFamily(ctx context.Context, t *FamilyTemplate) error {
	c := &t.AccessClaims
	if err := s.CheckSource(ctx, c); err != nil {
		return err
	}
	if storage.IsUUID(c.ClientID) {
		var cached func(context.Context, string) (storage.Client, bool, error)
		if rc, ok := s.Store.(recordCache); ok {
			cached = rc.CachedClient
		}
		// The grant the client lacks, "" when it holds both.
		begunBy := t.BegunBy()
		lacks := func(cl storage.Client) string {
			switch {
			case !slices.Contains(cl.GrantTypes, oauth2.GrantTypeRefreshToken):
				return oauth2.GrantTypeRefreshToken
			case !slices.ContainsFunc(begunBy, func(g string) bool { return slices.Contains(cl.GrantTypes, g) }):
				return strings.Join(begunBy, " or ")
			}
			return ""
		}
		cl, err := readFresh(ctx, c.ClientID, cached, s.Store.GetClient, func(cl storage.Client) bool { return lacks(cl) != "" })
		switch {
		case errors.Is(err, storage.ErrNotFound):
			return invalid(ErrSourceGone, "client %s deleted", c.ClientID)
		case err != nil:
			return sourceUnavailable(err)
		}
		if grant := lacks(cl); grant != "" {
			return invalid(ErrSourceGone, "client %s no longer holds the %s grant", c.ClientID, grant)
		}
	}
	if c.Pool != "" && s.Pools != nil {
		p, err := s.poolStands(ctx, c.Pool, c.Provider, c.OrgID)
		if err != nil {
			return err
		}
		if !slices.Contains(p.Scopes, oauth2.ScopeOfflineAccess) {
			return invalid(ErrSourceGone, "pool %s no longer grants %s", c.Pool, oauth2.ScopeOfflineAccess)
		}
	}
	sessions, _ := s.Store.(SessionReader)
	_, err := CheckFamilySession(ctx, sessions, t, s.now(), s.SessionBounds)
	return err
}

// further checks what the tokens c was exchanged from derive from beyond
// what c names itself (src_sub, src_pat, src_pool, src_kid;
// docs/security.md A-46, T-192): each principal present and enabled, each
// PAT present, of its generation and unexpired, and still holding every
// scope its entry names, each pool and provider present and
// enabled, each key one this node still trusts. A PAT's or pool's
// organization is not compared. A principal of another organization than
// the token's (an actor is of the token's, A-89, so this is an instance
// administrator's exchange token for a principal of an organization it
// does not belong to) stands only while it holds the instance role, by
// which alone it acted there. A PAT's scopes are not compared with the token's own: that
// scope is its subject's, or the full access an exchange token buys;
// what the derivation drew from the PAT is the scope its entry names.
func (s *StoreSources) further(ctx context.Context, c *AccessClaims) error {
	for _, kid := range c.SourceKeyIDs {
		if err := s.keyStands(ctx, kid, c.IssuedAt.Time()); err != nil {
			return err
		}
	}
	for _, id := range c.SourceSubjects {
		read := func() error { return s.sourceSubjectStands(ctx, id, c.OrgID) }
		if _, ok := s.Store.(recordCache); ok {
			if err := read(); err != nil {
				return err
			}
		} else if err := s.check(ctx, "s\x00"+id+"\x00"+c.OrgID, read); err != nil {
			// Its own key: a source subject found alive is not a subject
			// found alive, whose check also compares the organization
			// (docs/security.md A-106).
			return err
		}
	}
	for _, e := range c.SourcePATs {
		id, gen, scope, ok := ParseSourcePAT(e)
		if !ok {
			return invalid(ErrSourceGone, "src_pat entry %q is not <id>:<generation>[:<scope>]", e)
		}
		// The scope is part of the key, as for the token's own PAT.
		if err := s.check(ctx, "t\x00"+id+"\x00"+gen+"\x00\x00"+scope, func() error { return s.patStands(ctx, id, gen, "", "", scope) }); err != nil {
			return err
		}
	}
	if s.Pools == nil {
		return nil
	}
	for _, e := range c.SourcePools {
		pool, provider, ok := strings.Cut(e, "/")
		if !ok {
			return invalid(ErrSourceGone, "src_pool entry %q is not <pool>/<provider>", e)
		}
		if _, err := s.poolStands(ctx, pool, provider, ""); err != nil {
			return err
		}
	}
	return nil
}

// keyAbsence is a key set that can tell a kid absent from a read of the
// stored set begun at or after a given time (*signer.Manager,
// *signer.Multi).
type keyAbsence interface {
	AbsentSince(kid string, since time.Time) bool
}

// keyStands checks that kid is still a key of ours: published (next,
// active or retired) in this node's key set, or found there by a look in
// storage for a key this node has not loaded yet. A key revoked leaves
// the set (signer.Manager.RevokeKey), at once on the node that revoked
// it and within the key-set check elsewhere, and so does a retired key
// past its retention, when every token it signed has expired, and with
// them all that was exchanged from them (docs/design.md#lifetimes).
// In memory but for that look, as for the token's own key.
//
// kid signed a token before the one naming it was issued (iat), so it was
// stored then unless already gone: a read begun after iat, plus the
// leeway for the clock of the replica that minted it, that lacks kid is
// a definite "gone" (T-192). Without it a replica that never loaded the
// key (started after its revocation) could tell only once per
// signer.LookupInterval and answered every other check "unavailable".
func (s *StoreSources) keyStands(ctx context.Context, kid string, iat time.Time) error {
	if s.Keys == nil {
		return nil
	}
	if _, ok := s.Keys.PublicKey(kid); ok {
		return nil
	}
	gone := invalid(ErrSourceGone, "key %s of a token it was exchanged from is no longer trusted", kid)
	if ka, ok := s.Keys.(keyAbsence); ok && ka.AbsentSince(kid, iat.Add(DefaultLeeway)) {
		return gone
	}
	if kl, ok := s.Keys.(keyLoader); ok {
		_, found, err := kl.ResolveKey(ctx, kid)
		switch {
		case found:
			return nil
		case err != nil:
			return sourceUnavailable(err)
		}
	}
	return gone
}

func (s *StoreSources) check(ctx context.Context, key string, read func() error) error {
	now := s.now()
	if s.TTL > 0 {
		s.mu.Lock()
		if s.alive != nil {
			if at, ok := s.alive.Get(key); ok {
				if now.Sub(at) < s.TTL && !now.Before(at) {
					s.mu.Unlock()
					return nil
				}
				s.alive.Remove(key) // expired: freed now, re-added below if still alive
			}
		}
		s.mu.Unlock()
	}
	if err := read(); err != nil {
		return err
	}
	if s.TTL > 0 {
		s.mu.Lock()
		if s.alive == nil {
			s.alive, _ = simplelru.NewLRU[string, time.Time](maxSourceEntries, nil) // errors only for a size ≤ 0
		}
		s.alive.Add(key, now)
		s.mu.Unlock()
	}
	return nil
}

func (s *StoreSources) principal(ctx context.Context, c *AccessClaims) error {
	return s.principalStands(ctx, c.Subject, c.OrgID, c.Principal)
}

// principalStands checks principal id: present, enabled, and, when org
// and kind are not empty, of that organization and kind.
func (s *StoreSources) principalStands(ctx context.Context, id, org, kind string) error {
	return s.principalStanding(ctx, id, func(p storage.Principal) error {
		switch {
		case org != "" && p.OrgID != org:
			return invalid(ErrSourceGone, "principal %s not of organization %s", id, org)
		case kind != "" && string(p.Kind) != kind:
			return invalid(ErrSourceGone, "principal %s is not a %s", id, kind)
		}
		return nil
	})
}

// sourceSubjectStands checks principal id, a source subject of a token of
// organization org: present, enabled, and of org or an instance
// administrator (its stored flag or InstanceAdmins; docs/security.md
//
func (s *StoreSources) sourceSubjectStands(ctx context.Context, id, org string) error {
	return s.principalStanding(ctx, id, func(p storage.Principal) error {
		if org != "" && p.OrgID != org && !p.InstanceAdmin && !slices.Contains(s.InstanceAdmins, p.ID) {
			return invalid(ErrSourceGone, "principal %s, of another organization than %s, is no longer an instance administrator", id, org)
		}
		return nil
	})
}

// principalStanding checks principal id: present, enabled, and accepted
// by rule (nil, or the refusal to return). A refusal, for either reason,
// is never taken from a cached copy (readFresh).
func (s *StoreSources) principalStanding(ctx context.Context, id string, rule func(storage.Principal) error) error {
	var cached func(context.Context, string) (storage.Principal, bool, error)
	if rc, ok := s.Store.(recordCache); ok {
		cached = rc.CachedPrincipal
	}
	p, err := readFresh(ctx, id, cached, s.Store.GetPrincipal,
		func(p storage.Principal) bool { return p.Disabled || rule(p) != nil })
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return invalid(ErrSourceGone, "principal %s deleted", id)
	case err != nil:
		return sourceUnavailable(err)
	case p.Disabled:
		return invalid(ErrSourceGone, "principal %s disabled", id)
	}
	return rule(p)
}

// readFresh reads record id: through the record cache when cached is set
// (a copy up to the cache's TTL old), else with read. A cached copy that
// refuses is read again first: a refusal is never taken from a cached
// copy, so a record re-enabled elsewhere is accepted at once.
func readFresh[T any](ctx context.Context, id string, cached func(context.Context, string) (T, bool, error),
	read func(context.Context, string) (T, error), refuses func(T) bool,
) (T, error) {
	if cached != nil {
		v, hit, err := cached(ctx, id)
		if err != nil || !hit || !refuses(v) {
			return v, err
		}
	}
	return read(ctx, id)
}

// clientStands checks client id, when it names a registered client (a
// UUID; the other client_id values we mint, a pool's provider, "sts-api"
// or none, name no client row): through the record cache when the store
// is one, else through this checker's cache of live sources (the scope,
// pool and audiences are part of its key, as the scope is for a PAT).
func (s *StoreSources) clientStands(ctx context.Context, id, org, scope, pool string, aud Audience) error {
	if !storage.IsUUID(id) {
		return nil
	}
	if _, ok := s.Store.(recordCache); ok {
		return s.client(ctx, id, scope, pool, aud)
	}
	key := "c\x00" + id + "\x00" + org + "\x00" + scope + "\x00" + pool + "\x00" + strings.Join(aud, "\x00")
	return s.check(ctx, key, func() error { return s.client(ctx, id, scope, pool, aud) })
}

// client checks a token's client: present, enabled, and still allowing
// what issuance required it to list (grants.CheckClient): every scope of
// scope (space-separated; docs/security.md A-52), the pool when there is
// one, and every audience of aud. A scope, pool or audience taken
// from the client ends the tokens holding it. Its organization is not
// compared: issuance gives a client tokens of its own organization only,
// and a client's organization never changes.
func (s *StoreSources) client(ctx context.Context, id, scope, pool string, aud Audience) error {
	var cached func(context.Context, string) (storage.Client, bool, error)
	if rc, ok := s.Store.(recordCache); ok {
		cached = rc.CachedClient
	}
	cl, err := readFresh(ctx, id, cached, s.Store.GetClient,
		func(cl storage.Client) bool {
			what, _ := clientLost(&cl, scope, pool, aud)
			return cl.Disabled || what != ""
		})
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return invalid(ErrSourceGone, "client %s deleted", id)
	case err != nil:
		return sourceUnavailable(err)
	case cl.Disabled:
		return invalid(ErrSourceGone, "client %s disabled", id)
	}
	if what, v := clientLost(&cl, scope, pool, aud); what != "" {
		return invalid(ErrSourceGone, "client %s no longer allows %s %s", id, what, v)
	}
	return nil
}

// clientLost returns the first of a token's scopes (space-separated),
// pool and audiences that cl no longer lists, by kind ("scope", "pool",
// "audience"), or "" when it lists them all. The rules are issuance's
// (clientauth.AllowsScopes, AllowsPool, AllowsAudience): an empty list
// allows nothing. An empty audience names none and is skipped: a refresh
// family's claim template, whose aud is null, reads as one.
func clientLost(cl *storage.Client, scope, pool string, aud Audience) (what, v string) {
	for sc := range strings.FieldsSeq(scope) {
		if !slices.Contains(cl.Scopes, sc) {
			return "scope", sc
		}
	}
	if pool != "" && !slices.Contains(cl.Pools, pool) {
		return "pool", pool
	}
	for _, a := range aud {
		if a != "" && !slices.Contains(cl.Audiences, a) {
			return "audience", a
		}
	}
	return "", ""
}

// pool checks the pool and provider the token was exchanged through, as
// re-exchange does: present, enabled, of the token's organization. A pool
// whose policy no longer compiles refuses everything, its tokens included.
// It also checks what the refresh grant re-checks of a family: the pool's
// principal binding and the audiences it allows (docs/security.md A-61).
func (s *StoreSources) pool(ctx context.Context, c *AccessClaims) error {
	p, err := s.poolStands(ctx, c.Pool, c.Provider, c.OrgID)
	if err != nil {
		return err
	}
	// A bound pool's tokens act as its principal (sub, with the
	// principal claim naming its kind); rebinding the pool to another
	// principal, unbinding it or binding it since ends them, as it ends
	// their refresh families (grants.Refresh's recheck).
	api := storage.PrincipalKind(c.Principal).Valid()
	if p.PrincipalID != c.Subject && (p.PrincipalID != "" || api) {
		return invalid(ErrSourceGone, "pool %s no longer binds the token's principal", c.Pool)
	}
	// Exchange issues a pool's tokens for the server's audiences or the
	// pool's own (grants.TokenExchange.audience), and re-exchange and
	// refresh keep or narrow them: one the pool no longer allows was
	// taken from it since. An empty one names none (see clientLost).
	for _, a := range c.Audience {
		if a != "" && !slices.Contains(s.Audiences, a) && !slices.Contains(p.Audiences, a) {
			return invalid(ErrSourceGone, "pool %s no longer allows audience %s", c.Pool, a)
		}
	}
	// Exchange grants at most the pool's scopes (for a principal of ours,
	// "*" there also stands for each scope of our API but sts:admin), so
	// a scope the pool no longer allows was taken from it since: the
	// tokens holding it end, as for a PAT (docs/security.md A-52).
	if sc := poolLost(p, c.Scope, api); sc != "" {
		return invalid(ErrSourceGone, "pool %s no longer allows scope %s", c.Pool, sc)
	}
	return nil
}

// poolLost returns the first scope of scope (space-separated) that pool p
// no longer grants, or "" when it grants them all. For a principal of ours
// (api), the pool's "*" stands for each scope of our API but sts:admin.
func poolLost(p *trust.Pool, scope string, api bool) string {
	for sc := range strings.FieldsSeq(scope) {
		if !slices.Contains(p.Scopes, sc) && !(api && pat.KnownScope(sc) && pat.Allows(p.Scopes, sc)) {
			return sc
		}
	}
	return ""
}

// poolGrants checks what an exchange token's creator drew from its pool
// (a src_client_id entry of the pool's client_id and a scope,
// docs/security.md A-93): the pool and provider stand and the pool still
// grants every scope of scope. The creator acted as a principal of ours
// (only such a credential creates an exchange token). No registry: skipped,
// as src_pool is.
func (s *StoreSources) poolGrants(ctx context.Context, pool, provider, scope string) error {
	if s.Pools == nil {
		return nil
	}
	p, err := s.poolStands(ctx, pool, provider, "")
	if err != nil {
		return err
	}
	if sc := poolLost(p, scope, true); sc != "" {
		return invalid(ErrSourceGone, "pool %s no longer allows scope %s", pool, sc)
	}
	return nil
}

// poolStands checks pool and provider: present, enabled, and of
// organization org unless it is empty. It returns the pool as the
// registry holds it.
func (s *StoreSources) poolStands(ctx context.Context, pool, provider, org string) (*trust.Pool, error) {
	p, err := s.Pools.Check(ctx, pool, provider)
	switch {
	case err != nil && (trust.ReasonOf(err) == trust.ReasonUnavailable || trust.ReasonOf(err) == ""):
		return nil, sourceUnavailable(err) // storage could not say: fail closed, retryable
	case err != nil:
		return nil, invalid(ErrSourceGone, "pool %s, provider %s: %s", pool, provider, trust.ReasonOf(err))
	case org != "" && p.OrgID != org:
		return nil, invalid(ErrSourceGone, "pool %s not of organization %s", pool, org)
	}
	return p, nil
}

func (s *StoreSources) pat(ctx context.Context, c *AccessClaims) error {
	if c.PATID == "" || c.PATGeneration == "" {
		return invalid(ErrSourceGone, "pat_id or pat_gen missing")
	}
	return s.patStands(ctx, c.PATID, c.PATGeneration, c.Subject, c.OrgID, c.Scope)
}

// patStands checks PAT id: present, of generation gen, unexpired, and,
// when owner is not empty, of that owner and organization org, holding
// every scope of scope (space-separated).
func (s *StoreSources) patStands(ctx context.Context, id, gen, owner, org, scope string) error {
	t, err := s.Store.GetPAT(ctx, id)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return invalid(ErrSourceGone, "pat %s deleted", id)
	case err != nil:
		return sourceUnavailable(err)
	case owner != "" && (t.OwnerID != owner || t.OrgID != org):
		return invalid(ErrSourceGone, "pat %s not of the token's subject", id)
	case PATGeneration(t.Digest) != gen:
		return invalid(ErrSourceGone, "pat %s regenerated", id)
	case !s.now().Before(t.ExpiresAt):
		return invalid(ErrSourceGone, "pat %s expired", id)
	}
	// Exchange grants at most a PAT's scopes, so a scope the PAT no
	// longer allows (pat.Allows: itself, or "*" for all but sts:admin)
	// was taken away from it since. Widening the PAT ends nothing.
	for sc := range strings.FieldsSeq(scope) {
		if !pat.Allows(t.Scopes, sc) {
			return invalid(ErrSourceGone, "pat %s no longer holds scope %s", id, sc)
		}
	}
	return nil
}

func sourceUnavailable(err error) error {
	return &sts.Error{Code: sts.Unavailable, Message: ErrSourceUnavailable.Error(), Err: unavailableCause{err}}
}

// unavailableCause is err as the cause of an unavailable source check:
// [ErrSourceUnavailable] to errors.Is, but printed as err alone, since the
// [sts.Error] it sits in already says the check is unavailable.
type unavailableCause struct{ err error }

func (u unavailableCause) Error() string   { return u.err.Error() }
func (u unavailableCause) Unwrap() []error { return []error{ErrSourceUnavailable, u.err} }

// cachedLen is the number of live sources held.
func (s *StoreSources) cachedLen() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.alive == nil {
		return 0
	}
	return s.alive.Len()
}
