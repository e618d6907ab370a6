package cache

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/opensts/sts/internal/storage"
)

// DefaultTTL bounds how long a change made elsewhere (another replica, the
// CLI) can go unseen here: the bound docs/design.md#storage-and-replicas sets for cached PAT checks.
const DefaultTTL = 5 * time.Second

// maxEntries caps each table; when full, the least recently used entry
// makes room.
const maxEntries = 10000

// Store caches client and principal records for [Store.CachedClient] and
// [Store.CachedPrincipal]. Build it with [New]; it is safe for concurrent
// use.
type Store struct {
	storage.Store
	// TTL is how long a cached record may be served; zero or negative
	// turns caching off (every Cached* call reads the backend).
	TTL time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time

	clients    table[storage.Client]
	principals table[storage.Principal]
	revs       revocations // off unless RunRevocations runs
}

// New returns s with a record cache of DefaultTTL in front of it.
func New(s storage.Store) *Store { return &Store{Store: s, TTL: DefaultTTL} }

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// CachedClient returns client id, from memory when a copy younger than TTL
// is held (cached = true), else from the backend. Errors are the backend's
// (storage.ErrNotFound for an unknown client).
func (s *Store) CachedClient(ctx context.Context, id string) (c storage.Client, cached bool, err error) {
	if c, ok := s.clients.get(id, s.now(), s.TTL); ok {
		return cloneClient(c), true, nil
	}
	c, err = s.GetClient(ctx, id)
	return c, false, err
}

// GetClient reads the backend and refreshes the cached copy.
func (s *Store) GetClient(ctx context.Context, id string) (storage.Client, error) {
	gen, now := s.clients.begin(), s.now()
	c, err := s.Store.GetClient(ctx, id)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			s.clients.drop(id) // deleted elsewhere
		}
		return c, err
	}
	if s.TTL > 0 {
		s.clients.put(id, cloneClient(c), gen, now)
	}
	return c, nil
}

// UpdateClient writes through and drops the cached copy.
func (s *Store) UpdateClient(ctx context.Context, id string, fn func(storage.Client) (storage.Client, error)) error {
	defer s.clients.forget(id)
	return s.Store.UpdateClient(ctx, id, fn)
}

// DeleteClient writes through and drops the cached copy.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	defer s.clients.forget(id)
	return s.Store.DeleteClient(ctx, id)
}

// CachedPrincipal is CachedClient for principals.
func (s *Store) CachedPrincipal(ctx context.Context, id string) (p storage.Principal, cached bool, err error) {
	if p, ok := s.principals.get(id, s.now(), s.TTL); ok {
		return p, true, nil
	}
	p, err = s.GetPrincipal(ctx, id)
	return p, false, err
}

// GetPrincipal reads the backend and refreshes the cached copy.
func (s *Store) GetPrincipal(ctx context.Context, id string) (storage.Principal, error) {
	gen, now := s.principals.begin(), s.now()
	p, err := s.Store.GetPrincipal(ctx, id)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			s.principals.drop(id)
		}
		return p, err
	}
	if s.TTL > 0 {
		s.principals.put(id, p, gen, now) // Principal holds no slices: a copy is a value
	}
	return p, nil
}

// UpdatePrincipal writes through and drops the cached copy.
func (s *Store) UpdatePrincipal(ctx context.Context, id string, fn func(storage.Principal) (storage.Principal, error)) error {
	defer s.principals.forget(id)
	return s.Store.UpdatePrincipal(ctx, id, fn)
}

// DeletePrincipal writes through and drops the cached copy.
func (s *Store) DeletePrincipal(ctx context.Context, id string) error {
	defer s.principals.forget(id)
	return s.Store.DeletePrincipal(ctx, id)
}

// WithTx runs the unit of work on the backend and drops the cached copy of
// every client and principal it updated or deleted, once it has committed
// or failed (as UpdateClient does). The revocations it stored reach the
// revocation view once it has committed, as PutRevocation's do.
func (s *Store) WithTx(ctx context.Context, fn func(tx storage.Tx) error) error {
	var clients, principals []string
	var revs []storage.Revocation
	defer func() {
		for _, id := range clients {
			s.clients.forget(id)
		}
		for _, id := range principals {
			s.principals.forget(id)
		}
	}()
	err := s.Store.WithTx(ctx, func(tx storage.Tx) error {
		return fn(&cacheTx{Tx: tx, clients: &clients, principals: &principals, revs: &revs})
	})
	if err == nil {
		for _, r := range revs {
			s.putRevocationView(r)
		}
	}
	return err
}

// cacheTx notes the clients and principals a unit of work changes, and the
// revocations it stores.
type cacheTx struct {
	storage.Tx
	clients, principals *[]string
	revs                *[]storage.Revocation
}

func (t *cacheTx) PutRevocation(ctx context.Context, r storage.Revocation) error {
	if err := t.Tx.PutRevocation(ctx, r); err != nil {
		return err
	}
	*t.revs = append(*t.revs, r)
	return nil
}

func (t *cacheTx) UpdateClient(ctx context.Context, id string, fn func(storage.Client) (storage.Client, error)) error {
	*t.clients = append(*t.clients, id)
	return t.Tx.UpdateClient(ctx, id, fn)
}

func (t *cacheTx) DeleteClient(ctx context.Context, id string) error {
	*t.clients = append(*t.clients, id)
	return t.Tx.DeleteClient(ctx, id)
}

func (t *cacheTx) UpdatePrincipal(ctx context.Context, id string, fn func(storage.Principal) (storage.Principal, error)) error {
	*t.principals = append(*t.principals, id)
	return t.Tx.UpdatePrincipal(ctx, id, fn)
}

func (t *cacheTx) DeletePrincipal(ctx context.Context, id string) error {
	*t.principals = append(*t.principals, id)
	return t.Tx.DeletePrincipal(ctx, id)
}

// cloneClient copies the slices too: a caller may not change the cache by
// changing what it was given. The byte slices share one new array and the
// string slices another (two allocations on every cached read, not one
// per field), each cut with its capacity at its length so that an append
// to one reallocates instead of writing into the next (TestCloneClientIndependent).
func cloneClient(c storage.Client) storage.Client {
	bs := [...]*[]byte{&c.SecretDigest, &c.JWKS}
	ss := [...]*[]string{&c.GrantTypes, &c.Pools, &c.Audiences, &c.Scopes, &c.RedirectURIs}
	nb, ns := 0, 0
	for _, p := range bs {
		nb += len(*p)
	}
	for _, p := range ss {
		ns += len(*p)
	}
	b, sl := make([]byte, 0, nb), make([]string, 0, ns)
	for _, p := range bs {
		*p = cloneInto(&b, *p)
	}
	for _, p := range ss {
		*p = cloneInto(&sl, *p)
	}
	return c
}

// cloneInto appends s to *buf (which has room) and returns the copy,
// capacity capped; nil stays nil, empty stays empty.
func cloneInto[T any](buf *[]T, s []T) []T {
	if s == nil {
		return nil
	}
	i := len(*buf)
	*buf = append(*buf, s...)
	return (*buf)[i:len(*buf):len(*buf)]
}

// table is one record kind's cache: a least-recently-used list of at most
// maxEntries, so that more records in rotation than that evict the coldest
// one at a time (TestTableEvictsGradually), and an entry found expired is
// freed on the spot (TestTableFreesExpired). gen counts forgets: a read
// that began at generation g may only fill the table if no forget happened
// since, so a copy read before a write can never be put back after the
// write dropped it.
type table[V any] struct {
	mu  sync.Mutex
	gen uint64
	m   *simplelru.LRU[string, entry[V]] // nil until the first put
}

type entry[V any] struct {
	v       V
	fetched time.Time // when the read that produced v began
}

func (t *table[V]) get(id string, now time.Time, ttl time.Duration) (V, bool) {
	var zero V
	if ttl <= 0 {
		return zero, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		return zero, false
	}
	e, ok := t.m.Get(id)
	if !ok {
		return zero, false
	}
	if now.Sub(e.fetched) >= ttl || now.Before(e.fetched) {
		t.m.Remove(id)
		return zero, false
	}
	return e.v, true
}

func (t *table[V]) begin() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.gen
}

func (t *table[V]) put(id string, v V, gen uint64, fetched time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if gen != t.gen {
		return // something was forgotten while this read ran
	}
	if t.m == nil {
		t.m, _ = simplelru.NewLRU[string, entry[V]](maxEntries, nil) // errors only for a size ≤ 0
	}
	t.m.Add(id, entry[V]{v: v, fetched: fetched})
}

func (t *table[V]) forget(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.gen++
	if t.m != nil {
		t.m.Remove(id)
	}
}

// drop removes id without moving the generation: a read that found the
// row gone must not, by bumping it, stop every concurrent fill (a flood of
// unknown IDs would otherwise keep the cache empty).
func (t *table[V]) drop(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m != nil {
		t.m.Remove(id)
	}
}

// len is the number of entries held.
func (t *table[V]) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		return 0
	}
	return t.m.Len()
}
