package pat

import (
	"context"
	"fmt"

	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
)

// errReplaced is RevokeLeaked's answer for a secret replaced between its
// lookup and its deletion: as for an unknown one, nothing to revoke.
var errReplaced = fmt.Errorf("%w: the reported secret was replaced", storage.ErrNotFound)

// RevokeLeaked deletes the PAT whose secret has digest d, reported leaked
// at POST /credentials/revoke, and returns it. Its cached check is dropped
// with it, so the secret stops working on this replica as the report is
// answered, as after Delete (docs/security.md T-172); other replicas see
// it within CacheTTL. The row is deleted only if it still has that
// secret, checked in the deletion's own unit of work: a regenerate
// committed since the lookup made a secret nobody reported, which stays
// (T-173). The leak-report endpoint audits the deletion after it
// (docs/design.md#audit). Errors: [storage.ErrNotFound] when no PAT has
// that secret (any more); storage failures as they are.
func (s *Service) RevokeLeaked(ctx context.Context, d []byte) (storage.PAT, error) {
	p, err := s.store.GetPATByDigest(ctx, d)
	if err != nil {
		return storage.PAT{}, err
	}
	defer s.evict(p.ID)
	err = s.store.WithTx(ctx, func(tx storage.Tx) error {
		// The updater holds the row (changing nothing) until the
		// deletion commits.
		if err := tx.UpdatePAT(ctx, p.ID, func(cur storage.PAT) (storage.PAT, error) {
			if !secret.Equal(cur.Digest, d) {
				return cur, errReplaced
			}
			return cur, nil
		}); err != nil {
			return err
		}
		return tx.DeletePAT(ctx, p.ID)
	})
	if err != nil {
		return storage.PAT{}, err
	}
	return p, nil
}
