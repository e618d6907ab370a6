package trust

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/opensts/sts/internal/policy"
	"github.com/opensts/sts/internal/storage"
)

// Defaults of Registry.
const (
	// DefaultRefreshInterval bounds how long a pool or provider change made
	// by another process (sts pool …, another replica) takes to apply.
	DefaultRefreshInterval = 5 * time.Second
	// DefaultMinRefresh is the shortest gap between two on-demand refreshes
	// triggered by unknown pool IDs, so a stream of made-up IDs cannot turn
	// into a stream of storage reads.
	DefaultMinRefresh = time.Second
)

// maxAgeFactor times the refresh interval is how old a snapshot may be
// (from the start of the read that loaded it) before lookups stop trusting
// it: one refresh may fail or run late without an outage, a replica that
// cannot read pools for longer fails closed (docs/security.md F-108).
const maxAgeFactor = 2

// Pool is one identity pool as the exchange sees it: the stored record, its
// compiled policy and its providers. It is immutable; a refresh builds new
// values.
type Pool struct {
	storage.Pool
	// Program is the compiled CEL policy; nil when CompileErr is set.
	Program *policy.Program
	// CompileErr is why the pool's CEL did not compile. Such a pool
	// refuses every exchange (fail closed) with ReasonPolicyInvalid.
	CompileErr error
	// Providers are the pool's providers ordered by ID, disabled ones
	// included (they refuse with ReasonProviderDisabled).
	Providers []storage.Provider
}

// Provider returns the provider with id.
func (p *Pool) Provider(id string) (storage.Provider, bool) {
	i := slices.IndexFunc(p.Providers, func(v storage.Provider) bool { return v.ID == id })
	if i < 0 {
		return storage.Provider{}, false
	}
	return p.Providers[i], true
}

// snapshot is what one refresh loaded. Readers never lock it.
type snapshot struct {
	pools    map[string]*Pool
	byIssuer map[string][]ref // issuer → every (pool, provider) trusting it
	loaded   time.Time
}

type ref struct {
	pool     *Pool
	provider int // index in pool.Providers
}

// compiled caches one pool revision's program: the key is every CEL
// source of the pool, so a change to any of them recompiles and nothing
// else does.
type compiled struct {
	key string
	prg *policy.Program
	err error
}

// Registry serves pools and providers from an in-memory snapshot of the
// TrustStore. Set the exported fields before first use; its methods are
// safe for concurrent use.
type Registry struct {
	// Store is read on refresh only; required.
	Store storage.TrustStore
	// Compiler compiles pool policies; required (build it with the same
	// Options config validation uses).
	Compiler *policy.Compiler
	// RefreshInterval is Run's period; default DefaultRefreshInterval.
	RefreshInterval time.Duration
	// MinRefresh spaces on-demand refreshes; default DefaultMinRefresh.
	MinRefresh time.Duration
	// MaxAge bounds how old a snapshot lookups answer from, counted from
	// the start of the read that loaded it; default twice RefreshInterval.
	// An older one is refreshed by the lookup, which fails closed
	// (ReasonUnavailable) when storage cannot be read: a pool disabled,
	// deleted or changed on another replica is never answered from a
	// snapshot that could not have seen it (docs/security.md F-108).
	MaxAge time.Duration
	// Logger receives compile failures and refresh errors; may be nil.
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time

	snap      atomic.Pointer[snapshot]
	mu        sync.Mutex // serialises refreshes and guards programs and reserved
	programs  map[string]compiled
	reserved  map[string]time.Time // pool → the revision (UpdatedAt) whose reserved scopes were logged
	lastTried atomic.Int64         // unix nanos of the last on-demand refresh
	lastStale atomic.Int64         // unix nanos of the last refresh of a stale snapshot that failed
	first     singleflight.Group   // the first load, and a stale snapshot's refresh, shared by concurrent callers
}

func (r *Registry) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Refresh reloads every pool and provider from storage and swaps the
// snapshot. Programs are reused for pools whose CEL did not change. On a
// storage error the previous snapshot stays in place (lookups answer from
// it until it is MaxAge old) and the error is returned.
func (r *Registry) Refresh(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	// The snapshot is as old as the start of its read: a change committed
	// after that may be missing from it.
	began := r.now()
	pools, err := r.Store.ListPools(ctx)
	if err != nil {
		return newError(ReasonUnavailable, "list pools", err)
	}
	providers, err := r.Store.ListProviders(ctx, "")
	if err != nil {
		return newError(ReasonUnavailable, "list providers", err)
	}
	if r.programs == nil {
		r.programs = make(map[string]compiled)
	}
	s := &snapshot{pools: make(map[string]*Pool, len(pools)), byIssuer: make(map[string][]ref), loaded: began}
	seen := make(map[string]bool, len(pools))
	for _, sp := range pools {
		p := &Pool{Pool: sp}
		p.Program, p.CompileErr = r.compile(sp)
		r.dropReserved(p)
		seen[sp.ID] = true
		s.pools[sp.ID] = p
	}
	for id := range r.programs {
		if !seen[id] {
			delete(r.programs, id)
		}
	}
	for id := range r.reserved {
		if !seen[id] {
			delete(r.reserved, id)
		}
	}
	for _, pr := range providers {
		if p := s.pools[pr.PoolID]; p != nil {
			p.Providers = append(p.Providers, pr)
		}
	}
	for _, p := range s.pools {
		slices.SortFunc(p.Providers, func(a, b storage.Provider) int { return cmp.Compare(a.ID, b.ID) })
		for i, pr := range p.Providers {
			s.byIssuer[pr.Issuer] = append(s.byIssuer[pr.Issuer], ref{pool: p, provider: i})
		}
	}
	for _, refs := range s.byIssuer {
		slices.SortFunc(refs, func(a, b ref) int { return cmp.Compare(a.pool.ID, b.pool.ID) })
	}
	r.snap.Store(s)
	return nil
}

// dropReserved takes from p's scopes (and Google default scopes) any a
// pool never grants (storage.PoolMayGrant), which a pool stored before
// the pool service refused them may hold: no exchange grants them, and
// the source checker ends the tokens that hold them, as for a scope taken
// from the pool (docs/security.md ). Logged once per revision of
// the pool. Must hold r.mu.
func (r *Registry) dropReserved(p *Pool) {
	grantable := func(scopes []string) []string {
		if !slices.ContainsFunc(scopes, func(sc string) bool { return !storage.PoolMayGrant(sc) }) {
			return scopes
		}
		// Never nil: an empty GoogleDefaultScopes means none, nil all.
		return slices.DeleteFunc(slices.Clone(scopes), func(sc string) bool { return !storage.PoolMayGrant(sc) })
	}
	scopes, google := grantable(p.Scopes), grantable(p.GoogleDefaultScopes)
	if len(scopes) == len(p.Scopes) && len(google) == len(p.GoogleDefaultScopes) {
		return
	}
	if r.Logger != nil && !r.reserved[p.ID].Equal(p.UpdatedAt) {
		r.Logger.Warn("trust: pool holds a scope no pool grants; it is not granted and tokens holding it are refused; remove it from the pool's scopes",
			"pool", p.ID, "scope", storage.ScopeIntrospect)
	}
	if r.reserved == nil {
		r.reserved = make(map[string]time.Time)
	}
	r.reserved[p.ID] = p.UpdatedAt
	p.Scopes, p.GoogleDefaultScopes = scopes, google
}

// compile returns the pool's program, reusing the cached one when no CEL
// source changed (compile once per revision). Must hold r.mu.
func (r *Registry) compile(p storage.Pool) (*policy.Program, error) {
	key := policyKey(p)
	if c, ok := r.programs[p.ID]; ok && c.key == key {
		return c.prg, c.err
	}
	prg, err := r.Compiler.Compile(p)
	if err != nil && r.Logger != nil {
		r.Logger.Error("trust: pool policy does not compile; the pool refuses every exchange", "pool", p.ID, "error", err)
	}
	r.programs[p.ID] = compiled{key: key, prg: prg, err: err}
	return prg, err
}

func policyKey(p storage.Pool) string {
	var b strings.Builder
	for _, s := range []string{p.ID, p.Condition, p.IdentityClaim, p.Mapping.Subject, p.Mapping.Groups} {
		b.WriteString(s)
		b.WriteByte(0)
	}
	names := make([]string, 0, len(p.Mapping.Attributes))
	for k := range p.Mapping.Attributes {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		b.WriteString(k)
		b.WriteByte(1)
		b.WriteString(p.Mapping.Attributes[k])
		b.WriteByte(0)
	}
	return b.String()
}

// Run refreshes every RefreshInterval until ctx ends. Errors are logged;
// the last good snapshot keeps serving until it is MaxAge old.
func (r *Registry) Run(ctx context.Context) {
	t := time.NewTicker(cmp.Or(r.RefreshInterval, DefaultRefreshInterval))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := r.Refresh(ctx); err != nil && r.Logger != nil && ctx.Err() == nil {
				r.Logger.Warn("trust: refresh failed; serving the previous pools for at most twice the refresh interval, then refusing", "error", err)
			}
		}
	}
}

// maxAge is MaxAge or its default.
func (r *Registry) maxAge() time.Duration {
	if r.MaxAge > 0 {
		return r.MaxAge
	}
	return maxAgeFactor * cmp.Or(r.RefreshInterval, DefaultRefreshInterval)
}

// fresh reports whether lookups may answer from s.
func (r *Registry) fresh(s *snapshot) bool {
	age := r.now().Sub(s.loaded)
	return age >= 0 && age < r.maxAge()
}

// current returns the snapshot, loading the first one synchronously, and
// reloading one older than MaxAge (Run failed to refresh it, or is not
// running): an old snapshot is never answered from, so a replica that
// cannot read pools refuses (ReasonUnavailable) rather than go on trusting
// a pool disabled or deleted elsewhere since (docs/security.md F-108).
// While storage fails, the reload is tried at most once per MinRefresh;
// the lookups in between fail at once.
func (r *Registry) current(ctx context.Context) (*snapshot, error) {
	s := r.snap.Load()
	if s != nil && r.fresh(s) {
		return s, nil
	}
	if s != nil {
		now := r.now().UnixNano()
		if last := r.lastStale.Load(); last != 0 && now-last < int64(cmp.Or(r.MinRefresh, DefaultMinRefresh)) {
			return nil, newError(ReasonUnavailable, "pools not read for "+r.now().Sub(s.loaded).Round(time.Millisecond).String(), nil)
		}
	}
	// The first concurrent requests share one load: the others would
	// otherwise wait on r.mu and then each rebuild the registry again
	// (TestRegistryFirstLoadSingleFlight). So do those that find the
	// snapshot stale.
	_, err, _ := r.first.Do("load", func() (any, error) {
		if s := r.snap.Load(); s != nil && r.fresh(s) {
			return nil, nil
		}
		err := r.Refresh(ctx)
		if err != nil {
			r.lastStale.Store(r.now().UnixNano())
		} else {
			r.lastStale.Store(0)
		}
		return nil, err
	})
	if err != nil {
		return nil, err
	}
	return r.snap.Load(), nil
}

// refreshOnMiss refreshes once when a lookup missed, at most once per
// MinRefresh, so a pool created a moment ago is found without waiting for
// Run. It reports whether a refresh happened.
func (r *Registry) refreshOnMiss(ctx context.Context) bool {
	now := r.now().UnixNano()
	last := r.lastTried.Load()
	if now-last < int64(cmp.Or(r.MinRefresh, DefaultMinRefresh)) || !r.lastTried.CompareAndSwap(last, now) {
		return false
	}
	return r.Refresh(ctx) == nil
}

// Pools returns every pool of the current snapshot ordered by ID.
func (r *Registry) Pools(ctx context.Context) ([]*Pool, error) {
	s, err := r.current(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*Pool, 0, len(s.pools))
	for _, p := range s.pools {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *Pool) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}
