package pat

import (
	"context"

	"github.com/opensts/sts/internal/sts"
)

// ForgetOwner drops every cached token of ownerID from this replica's
// cache, so a change to the owner (suspended, deleted) is seen here at
// once; other replicas see it within CacheTTL.
func (s *Service) ForgetOwner(ownerID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.evictions++ // a load in flight may hold the owner as it was
	for _, d := range s.cache.Keys() {
		if e, ok := s.cache.Peek(d); ok && e.owner.ID == ownerID {
			s.cache.Remove(d) // onCacheEvict drops the ID too
		}
	}
}

// DeleteOwned deletes every token of ownerID, each with its audit event,
// and returns how many it deleted. Errors: [sts.Unavailable].
func (s *Service) DeleteOwned(ctx context.Context, c Caller, ownerID string) (int, error) {
	if ownerID == "" {
		return 0, sts.Errorf(sts.Invalid, "owner required")
	}
	list, err := s.store.ListPATs(ctx, ownerID)
	if err != nil {
		return 0, storageErr(err, "personal access tokens")
	}
	n := 0
	for _, p := range list {
		if err := s.Delete(ctx, c, ownerID, p.ID); err != nil && sts.ErrorCode(err) != sts.NotFound {
			return n, err
		}
		n++
	}
	s.ForgetOwner(ownerID)
	return n, nil
}
