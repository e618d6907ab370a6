package pat

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// Store is the narrow storage view the service needs.
type Store interface {
	storage.PATStore
	storage.ExchangeTokenStore
	storage.PrincipalStore
	storage.OrganizationStore
	storage.AuditStore
	storage.UnitOfWork
}

// Limits (docs/design.md#limits).
const (
	MinLifetime          = 24 * time.Hour
	DefaultMaxLifetime   = 366 * 24 * time.Hour
	MaxExchangeLifetime  = 5 * time.Minute
	DefaultCacheTTL      = 5 * time.Second
	DefaultFlushInterval = 10 * time.Second
	lastUsedGranularity  = time.Minute
	lifetimeLeeway       = time.Minute
	maxDescriptionLen    = 255
	maxCacheEntries      = 100_000
)

// Caller is who asks for a change, for the audit trail.
type Caller = audit.Caller

// Service manages personal access tokens and exchange tokens. Create it
// with [NewService]; set the optional fields before first use. It is safe
// for concurrent use. Run its lastUsed flusher with [Service.Run].
type Service struct {
	// MaxLifetime caps a PAT's lifetime at create, regenerate and use;
	// DefaultMaxLifetime when zero.
	MaxLifetime time.Duration
	// CacheTTL bounds how long a revocation can go unseen by a replica
	// that did not make it (docs/design.md#storage-and-replicas: ≤ 5 s); DefaultCacheTTL when zero,
	// negative disables the cache.
	CacheTTL time.Duration
	// FlushInterval is how often recorded lastUsed times are written;
	// DefaultFlushInterval when zero.
	FlushInterval time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Logger receives token IDs and digest prefixes, never secrets.
	Logger *slog.Logger

	store  Store
	pepper atomic.Pointer[[]byte] // nil until SetPepper

	mu       sync.Mutex
	cache    *simplelru.LRU[string, cacheEntry] // by string(digest), at most maxCacheEntries
	cacheIDs map[string]string                  // PAT ID → digest key
	// evictions counts evict calls: a load that read storage before one
	// does not cache what it read (it may be what the eviction ended).
	evictions uint64
	marked    map[string]time.Time // PAT ID → last time use was recorded
	pending   map[string]time.Time // PAT ID → use time not yet written
}

// NewService returns a service over store whose digests are keyed by
// pepper (at least MinPepperSize bytes; internal/pepper keeps it). pepper
// may be nil when it is not known yet (serve starts before storage is
// reachable); every call then fails with [sts.Unavailable] until SetPepper.
func NewService(store Store, pepper []byte) (*Service, error) {
	if store == nil {
		return nil, errors.New("pat: nil store")
	}
	s := &Service{
		store:    store,
		cacheIDs: map[string]string{},
		marked:   map[string]time.Time{},
		pending:  map[string]time.Time{},
	}
	s.cache, _ = simplelru.NewLRU[string, cacheEntry](maxCacheEntries, s.onCacheEvict) // errors only for a size ≤ 0
	if pepper != nil {
		if err := s.SetPepper(pepper); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// SetPepper supplies the digest pepper; the service copies it.
func (s *Service) SetPepper(pepper []byte) error {
	if len(pepper) < MinPepperSize {
		return errors.New("pat: pepper too short")
	}
	p := append([]byte(nil), pepper...)
	s.pepper.Store(&p)
	return nil
}

// errNotReady is returned while the pepper is unknown.
var errNotReady = sts.Errorf(sts.Unavailable, "token service is starting; retry shortly")

// digest is Digest under the service's pepper, or errNotReady.
func (s *Service) digest(secret string) ([]byte, error) {
	p := s.pepper.Load()
	if p == nil {
		return nil, errNotReady
	}
	return Digest(*p, secret), nil
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return storage.Now(s.Now())
	}
	return storage.Now(time.Now())
}

func (s *Service) maxLifetime() time.Duration {
	if s.MaxLifetime > 0 {
		return s.MaxLifetime
	}
	return DefaultMaxLifetime
}

func (s *Service) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// errInvalidToken is the one answer for every unusable secret: malformed,
// unknown, expired, deleted, regenerated or owned by a disabled principal
// (docs/security.md T-68). The reason goes to the log only.
var errInvalidToken = sts.Errorf(sts.Unauthenticated, "invalid token")

// storageErr translates a storage failure into a domain error.
func storageErr(err error, what string) error {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return sts.Wrap(sts.NotFound, err, what+" not found")
	case errors.Is(err, storage.ErrAlreadyExists):
		return sts.Wrap(sts.AlreadyExists, err, what+" already exists")
	}
	return sts.Wrap(sts.Unavailable, err, "storage unavailable")
}

func (s *Service) audit(ctx context.Context, c Caller, orgID, action, target, outcome string) error {
	return s.store.AppendAudit(ctx, c.Event(s.now(), orgID, action, target, outcome, ""))
}

// event is the success event of a change to PAT id.
func (s *Service) event(c Caller, orgID, action, id string) storage.AuditEvent {
	return c.Event(s.now(), orgID, action, Target(id), "success", "")
}

// Target is the audit target of PAT id: kind:id, as every event's
// (docs/api.md "sts.v1.AuditService"). Before, it was the bare ID.
func Target(id string) string { return "pat:" + id }
