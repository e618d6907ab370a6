package pat

import (
	"context"

	"github.com/opensts/sts/internal/storage"
)

// RevokeLeaked deletes the PAT whose secret has digest d, reported leaked
// at POST /credentials/revoke, and returns it. Its cached check is dropped
// with it, so the secret stops working on this replica as the report is
// answered, as after Delete (docs/security.md T-175); other replicas see
// it within CacheTTL. The leak-report endpoint audits it, after the
// deletion (docs/design.md#audit). Errors: [storage.ErrNotFound] when no
// PAT has that secret; storage failures as they are.
func (s *Service) RevokeLeaked(ctx context.Context, d []byte) (storage.PAT, error) {
	p, err := s.store.GetPATByDigest(ctx, d)
	if err != nil {
		return storage.PAT{}, err
	}
	defer s.evict(p.ID)
	return p, s.store.DeletePAT(ctx, p.ID)
}
