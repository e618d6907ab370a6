package pat

import (
	"context"
	"crypto/subtle"
	"time"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// Authenticated is who a valid secret speaks for.
type Authenticated struct {
	OrgID     string
	OrgTier   string
	Principal storage.Principal
	// TokenID is the PAT's ID ("" for an exchange token).
	TokenID string
	Scopes  []string
	// ExpiresAt is when the credential expires; tokens derived from it
	// must not outlive it.
	ExpiresAt time.Time
	// Generation is the PAT's digest ID, which regeneration changes:
	// tokens derived from the PAT carry it (pat_gen) so that they end with
	// the secret they came from.
	Generation string
	// Claims is, for an exchange token, the JSON of the source claims the
	// access token it buys carries (ExchangeSource.Claims).
	Claims []byte
}

type cacheEntry struct {
	pat     storage.PAT
	owner   storage.Principal
	tier    string
	fetched time.Time
}

// Authenticate returns the identity behind a PAT secret. A malformed
// secret is rejected before any storage lookup (docs/security.md T-65, T-66);
// otherwise the lookup is by digest, confirmed in constant time (T-67).
// Expired, unknown, deleted and regenerated tokens, tokens whose remaining
// lifetime exceeds the policy (T-69) and tokens of disabled principals all
// get the same [sts.Unauthenticated] "invalid token" (T-68). With a warm
// cache it does no I/O; a use is recorded for lastUsed at most once per
// token per minute and written later by [Service.Run]. Errors:
// [sts.Unauthenticated], [sts.Unavailable] (storage down: fail closed).
func (s *Service) Authenticate(ctx context.Context, secret string) (Authenticated, error) {
	if err := PrefixPAT.Parse(secret); err != nil {
		return Authenticated{}, errInvalidToken
	}
	digest, err := s.digest(secret)
	if err != nil {
		return Authenticated{}, err
	}
	now := s.now()
	e, ok := s.cached(digest, now)
	if !ok {
		var err error
		if e, err = s.load(ctx, digest, now); err != nil {
			return Authenticated{}, err
		}
	}
	if subtle.ConstantTimeCompare(e.pat.Digest, digest) != 1 { // defense in depth
		return Authenticated{}, errInvalidToken
	}
	reason := s.refusal(e, now)
	if reason != "" && ok && (e.owner.Disabled || e.owner.OrgID != e.pat.OrgID) {
		// A refusal is never taken from the cache: an owner re-enabled
		// elsewhere is accepted at once (docs/architecture.md).
		var err error
		if e, err = s.load(ctx, digest, now); err != nil {
			return Authenticated{}, err
		}
		if subtle.ConstantTimeCompare(e.pat.Digest, digest) != 1 {
			return Authenticated{}, errInvalidToken
		}
		reason = s.refusal(e, now)
	}
	if reason != "" {
		s.logger().InfoContext(ctx, "personal access token rejected", "pat_id", e.pat.ID, "reason", reason)
		return Authenticated{}, errInvalidToken
	}
	s.markUsed(e.pat.ID, now)
	return Authenticated{
		OrgID: e.pat.OrgID, OrgTier: e.tier, Principal: e.owner, TokenID: e.pat.ID,
		Scopes: e.pat.Scopes, ExpiresAt: e.pat.ExpiresAt, Generation: DigestID(e.pat.Digest),
	}, nil
}

// refusal is why e's PAT is refused at now, or "".
func (s *Service) refusal(e cacheEntry, now time.Time) string {
	switch {
	case !now.Before(e.pat.ExpiresAt):
		return "expired"
	case e.pat.ExpiresAt.Sub(now) > s.maxLifetime()+lifetimeLeeway:
		return "lifetime exceeds policy"
	case e.owner.Disabled:
		return "owner disabled"
	case e.owner.OrgID != e.pat.OrgID:
		return "owner moved organization" // defense in depth
	}
	return ""
}

func (s *Service) cacheTTL() time.Duration {
	if s.CacheTTL == 0 {
		return DefaultCacheTTL
	}
	return s.CacheTTL
}

func (s *Service) cached(digest []byte, now time.Time) (cacheEntry, bool) {
	if s.cacheTTL() < 0 {
		return cacheEntry{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.cache.Get(string(digest))
	if !ok {
		return cacheEntry{}, false
	}
	if now.Sub(e.fetched) >= s.cacheTTL() || now.Before(e.fetched) {
		s.cache.Remove(string(digest)) // freed now (TestPATCacheFreesExpired)
		return cacheEntry{}, false
	}
	return e, true
}

func (s *Service) load(ctx context.Context, digest []byte, now time.Time) (cacheEntry, error) {
	s.mu.Lock()
	gen := s.evictions
	s.mu.Unlock()
	p, err := s.store.GetPATByDigest(ctx, digest)
	if err != nil {
		return cacheEntry{}, s.lookupErr(ctx, err, DigestID(digest))
	}
	owner, err := s.store.GetPrincipal(ctx, p.OwnerID)
	if err != nil {
		return cacheEntry{}, s.lookupErr(ctx, err, DigestID(digest))
	}
	org, err := s.store.GetOrganization(ctx, p.OrgID)
	if err != nil {
		return cacheEntry{}, s.lookupErr(ctx, err, DigestID(digest))
	}
	e := cacheEntry{pat: p, owner: owner, tier: org.Tier, fetched: now}
	if s.cacheTTL() > 0 {
		s.cachePut(string(digest), e, gen)
	}
	return e, nil
}

// cachePut holds e under its digest key, replacing the entry of an older
// digest of the same PAT, unless a change was evicted since the read that
// made e began (gen): a delete or regenerate committed meanwhile must not
// be undone by a stale copy. Past maxCacheEntries the least recently used
// entry makes room (TestPATCacheEvictsGradually).
func (s *Service) cachePut(key string, e cacheEntry, gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.evictions != gen {
		return // TestDeleteWinsOverAnAuthenticationInFlight
	}
	if old, ok := s.cacheIDs[e.pat.ID]; ok {
		s.cache.Remove(old)
	}
	s.cache.Add(key, e)
	s.cacheIDs[e.pat.ID] = key
}

// onCacheEvict keeps the ID index in step with the LRU; it runs under s.mu
// (every LRU call is made holding it).
func (s *Service) onCacheEvict(key string, e cacheEntry) {
	if s.cacheIDs[e.pat.ID] == key {
		delete(s.cacheIDs, e.pat.ID)
	}
}

// pruneCache frees entries past the TTL that nobody looked up again, from
// the least recently used end (an expired entry nearer the front is freed
// when it is next looked up). Flush calls it.
func (s *Service) pruneCache(now time.Time) {
	ttl := s.cacheTTL()
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		_, e, ok := s.cache.GetOldest()
		if !ok || (now.Sub(e.fetched) < ttl && !now.Before(e.fetched)) {
			return
		}
		s.cache.RemoveOldest()
	}
}

func (s *Service) cacheLen() (int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cache.Len(), len(s.cacheIDs)
}

// lookupErr maps a failed lookup: not found is the generic invalid token;
// anything else is storage trouble, which fails closed.
func (s *Service) lookupErr(ctx context.Context, err error, digestID string) error {
	if e := storageErr(err, "token"); sts.ErrorCode(e) == sts.NotFound {
		s.logger().InfoContext(ctx, "personal access token rejected", "digest", digestID, "reason", "unknown")
		return errInvalidToken
	}
	return sts.Wrap(sts.Unavailable, err, "storage unavailable")
}

// evict drops PAT id from this replica's cache so its change (delete,
// regenerate, new scopes) is seen at once here.
func (s *Service) evict(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.evictions++
	if d, ok := s.cacheIDs[id]; ok {
		s.cache.Remove(d)
		delete(s.cacheIDs, id)
	}
}
