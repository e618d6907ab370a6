package cache

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// The revocation view (docs/design.md#storage-and-replicas, "Revocations on
// one node"): every token check asks for its jti and subject rows, and on a
// single node those answers can come from memory, because every revocation
// this process makes is written through [Store.PutRevocation] and the few
// written by others (the break-glass CLI opening the same SQLite file) are
// caught up by polling. Serve turns it on for SQLite only: PostgreSQL means
// replicas, and there a revocation taken by one replica must be refused by
// every other at once, which only a read per check gives.
const (
	// RevocationPoll is how often the view catches up with revocations
	// written by other processes.
	RevocationPoll = time.Second
	// revocationFresh is how long after the start of its last successful
	// catch-up the view answers; past it (storage failing or slow) checks
	// read storage again, and fail closed with it.
	revocationFresh = 2 * RevocationPoll
	// revocationOverlap is how far before the last catch-up the next one
	// starts reading: a writer stamps CreatedAt before it commits, so a
	// row can become visible with a CreatedAt older than a catch-up that
	// already ran. It exceeds every storage call's deadline.
	revocationOverlap = 30 * time.Second
	// revocationRetry is how often a view holding more than
	// maxRevocations live rows (checks read storage meanwhile) tries to
	// load them again.
	revocationRetry = time.Minute
)

// revocationSyncTimeout bounds one catch-up (a variable so that a test
// can shorten it): RunRevocations runs on serve's context, which has no
// deadline, and a read on storage that stopped answering waited until TCP
// gave up, the view silently not catching up meanwhile (docs/security.md
// F-92). It is the default storage.call_timeout, as for the other
// background jobs (docs/reliability.md), and well below revocationOverlap.
var revocationSyncTimeout = 5 * time.Second

// maxRevocations bounds the view's memory (about 200 bytes a row); a
// variable so that a test can reach it.
var maxRevocations = 50000

// revocations is the in-memory view. The zero value is off: every check
// reads storage.
type revocations struct {
	mu      sync.RWMutex
	on      bool
	rows    map[string]storage.Revocation
	synced  time.Time // start of the last catch-up that made the view fresh
	caught  time.Time // start of the last catch-up that succeeded, fresh or not (full, or stale for one tick)
	since   time.Time // CreatedAt from which the next catch-up reads
	full    bool      // more than maxRevocations: rows is empty, checks read storage
	retryAt time.Time // when a full view tries to load again
	puts    uint64    // PutRevocation calls that succeeded
}

// merge adds r, keeping the later IssuedBefore and ExpiresAt of r and a row
// already held, as storage does (storage.RevocationStore.PutRevocation):
// merging in any order gives the same view. A row that would make the view
// hold more than maxRevocations empties it instead, and marks it full.
func (v *revocations) merge(r storage.Revocation, now time.Time) {
	if v.full {
		return
	}
	old, ok := v.rows[r.ID]
	if !ok && len(v.rows) >= maxRevocations {
		v.full, v.rows, v.since, v.retryAt = true, map[string]storage.Revocation{}, time.Time{}, now.Add(revocationRetry)
		return
	}
	if ok {
		if old.IssuedBefore.After(r.IssuedBefore) {
			r.IssuedBefore = old.IssuedBefore
		}
		if old.ExpiresAt.After(r.ExpiresAt) {
			r.ExpiresAt = old.ExpiresAt
		}
	}
	v.rows[r.ID] = r
}

// lookup returns the held rows among ids and whether the view may answer.
func (v *revocations) lookup(ids []string, now time.Time) ([]storage.Revocation, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if !v.on || v.full || now.Sub(v.synced) >= revocationFresh || now.Before(v.synced) {
		return nil, false
	}
	var out []storage.Revocation
	for i, id := range ids {
		if r, ok := v.rows[id]; ok && !containsBefore(ids, i, id) {
			out = append(out, r)
		}
	}
	return out, true
}

// containsBefore reports whether ids[:i] holds id (a repeated ID is
// answered once, as storage answers an IN list).
func containsBefore(ids []string, i int, id string) bool {
	for _, x := range ids[:i] {
		if x == id {
			return true
		}
	}
	return false
}

// GetRevocations answers from the revocation view while it is on and
// fresh, else from storage.
func (s *Store) GetRevocations(ctx context.Context, ids ...string) ([]storage.Revocation, error) {
	if rs, ok := s.revs.lookup(ids, s.now()); ok {
		return rs, nil
	}
	return s.Store.GetRevocations(ctx, ids...)
}

// ReadStoredRevocations reads storage, never the view: for a read that
// must see every row committed before it, another process's included
// (grants.RevocationReader, docs/security.md T-160).
func (s *Store) ReadStoredRevocations(ctx context.Context, ids ...string) ([]storage.Revocation, error) {
	return s.Store.GetRevocations(ctx, ids...)
}

// PutRevocation writes through: once storage has the revocation, this
// node's view has it too, so the next check refuses the token.
func (s *Store) PutRevocation(ctx context.Context, r storage.Revocation) error {
	if err := s.Store.PutRevocation(ctx, r); err != nil {
		return err
	}
	s.putRevocationView(r)
	return nil
}

// putRevocationView adds r, which storage has, to the view.
func (s *Store) putRevocationView(r storage.Revocation) {
	s.revs.mu.Lock()
	s.revs.puts++
	if s.revs.rows != nil {
		s.revs.merge(r, s.now())
	}
	s.revs.mu.Unlock()
}

// RunRevocations turns the revocation view on and keeps it caught up every
// RevocationPoll until ctx ends; checks read storage until the first
// catch-up succeeds and whenever the view is stale. Run it in one
// goroutine; errors are logged and retried at the next tick.
func (s *Store) RunRevocations(ctx context.Context, logger *slog.Logger) {
	s.EnableRevocations()
	defer func() {
		s.revs.mu.Lock()
		s.revs.on = false
		s.revs.mu.Unlock()
	}()
	tick := time.NewTicker(RevocationPoll)
	defer tick.Stop()
	wasFull := false
	for {
		if err := s.SyncRevocations(ctx); err != nil && ctx.Err() == nil && logger != nil {
			logger.WarnContext(ctx, "revocation view: catching up failed; token checks read storage until it succeeds", "err", err)
		}
		// Going full, and fitting again, is logged once each, not at
		// every tick.
		if full := s.RevocationsFull(); full != wasFull && logger != nil {
			wasFull = full
			if full {
				logger.WarnContext(ctx, "revocation view: full, more live revocations than it holds; token checks read storage until they fit (it loads them again every minute)", "limit", maxRevocations)
			} else {
				logger.InfoContext(ctx, "revocation view: the live revocations fit again; token checks answer from memory")
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// EnableRevocations turns the revocation view on: from now on revocations
// written through s are kept, and checks answer from memory once a
// [Store.SyncRevocations] has succeeded within the freshness window.
// [Store.RunRevocations] calls it; tests call it with SyncRevocations to
// step the view by hand.
func (s *Store) EnableRevocations() {
	s.revs.mu.Lock()
	defer s.revs.mu.Unlock()
	s.revs.on = true
	if s.revs.rows == nil {
		s.revs.rows = map[string]storage.Revocation{}
	}
}

// RevocationsSyncedAt is when the last successful catch-up of the
// revocation view began: the zero time while the view is off or has not
// caught up yet. The server reports its age as a metric, so a view that
// stopped catching up is seen (docs/observability.md). A full view
// ([Store.RevocationsFull]) catches up too: it loads every live row once
// a minute, and the ticks between succeed without reading; its age was
// otherwise frozen at the last catch-up before it went full, and grew as
// if catch-ups failed. Checks read storage while the view is full or
// past revocationFresh (2 s) since a catch-up that left it fresh.
func (s *Store) RevocationsSyncedAt() time.Time {
	s.revs.mu.RLock()
	defer s.revs.mu.RUnlock()
	if !s.revs.on {
		return time.Time{}
	}
	return s.revs.caught
}

// RevocationsFull reports whether the view holds more live revocations
// than it may (checks read storage).
func (s *Store) RevocationsFull() bool {
	s.revs.mu.RLock()
	defer s.revs.mu.RUnlock()
	return s.revs.full
}

// SyncRevocations catches the view up with storage once: rows created
// since the last catch-up (less the overlap) are merged, expired ones
// dropped. [Store.RunRevocations] calls it on every tick. The read ends
// after revocationSyncTimeout whatever ctx allows.
func (s *Store) SyncRevocations(ctx context.Context) error {
	start := s.now()
	s.revs.mu.RLock()
	since, full, retryAt, puts := s.revs.since, s.revs.full, s.revs.retryAt, s.revs.puts
	s.revs.mu.RUnlock()
	if full && start.Before(retryAt) {
		s.revs.mu.Lock()
		s.revs.caught = start
		s.revs.mu.Unlock()
		return nil
	}
	lctx, cancel := context.WithTimeout(ctx, revocationSyncTimeout)
	rs, err := s.Store.ListRevocations(lctx, since)
	cancel()
	if err != nil {
		return err
	}
	s.revs.mu.Lock()
	defer s.revs.mu.Unlock()
	rebuilt := s.revs.rows == nil || full
	if rebuilt {
		// A full view loads every live row again (since is zero).
		s.revs.rows, s.revs.full = map[string]storage.Revocation{}, false
	}
	for _, r := range rs {
		s.revs.merge(r, start)
	}
	s.revs.caught = start
	if s.revs.full {
		return nil
	}
	if rebuilt && s.revs.puts != puts {
		// A revocation written while the rows were being read may be in
		// neither the read nor the new map: stay stale until the next
		// catch-up, whose overlap covers it.
		s.revs.since = start.Add(-revocationOverlap)
		return nil
	}
	for id, r := range s.revs.rows {
		// Every token the row covers has expired; storage's GC drops it too.
		if !r.ExpiresAt.IsZero() && r.ExpiresAt.Before(start) {
			delete(s.revs.rows, id)
		}
	}
	s.revs.synced, s.revs.since = start, start.Add(-revocationOverlap)
	return nil
}
