package pat

import (
	"context"
	"errors"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// markUsed notes a use of PAT id at now unless one was noted within the
// last minute. It never blocks on storage: the write happens in Flush.
func (s *Service) markUsed(id string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if last, ok := s.marked[id]; ok && now.Sub(last) < lastUsedGranularity && !now.Before(last) {
		return
	}
	s.marked[id] = now
	s.pending[id] = now
}

// Flush writes the pending lastUsed times, one UpdatePAT per token. A
// token deleted meanwhile is skipped; the updater only moves LastUsedAt
// forward and touches nothing else, so it cannot undo a concurrent
// regenerate.
func (s *Service) Flush(ctx context.Context) error {
	s.mu.Lock()
	pending := s.pending
	s.pending = map[string]time.Time{}
	now := s.now()
	for id, t := range s.marked {
		if now.Sub(t) >= lastUsedGranularity {
			delete(s.marked, id)
		}
	}
	s.mu.Unlock()
	s.pruneCache(now)
	var errs []error
	for id, t := range pending {
		err := s.store.UpdatePAT(ctx, id, func(p storage.PAT) (storage.PAT, error) {
			if p.LastUsedAt.Before(t) {
				p.LastUsedAt = t
			}
			return p, nil
		})
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Run flushes lastUsed times every FlushInterval until ctx ends, then
// once more. Start it once per service, in its own goroutine.
func (s *Service) Run(ctx context.Context) {
	every := s.FlushInterval
	if every <= 0 {
		every = DefaultFlushInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := s.Flush(fctx); err != nil {
				s.logger().WarnContext(ctx, "pat: final lastUsed flush failed", "error", err)
			}
			return
		case <-t.C:
			if err := s.Flush(ctx); err != nil {
				s.logger().WarnContext(ctx, "pat: lastUsed flush failed", "error", err)
			}
		}
	}
}
