package tokens

import (
	"context"
	"fmt"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// RevocationChecker says whether a token has been revoked, either by its
// jti or because every token of its subject issued up to some time was.
// Implementations must be safe to call concurrently.
type RevocationChecker interface {
	IsRevoked(ctx context.Context, jti, sub string, iat time.Time) (bool, error)
}

// StoreRevocations is the [RevocationChecker] over storage: rows
// "jti:<jti>" revoke one token, rows "sub:<sub>" revoke every token of the
// subject issued at or before IssuedBefore.
type StoreRevocations struct {
	Store storage.RevocationStore
}

// RevocationIDJTI is the revocation row ID of one access token.
func RevocationIDJTI(jti string) string { return "jti:" + jti }

// RevocationIDSubject is the revocation row ID of all tokens of a subject.
func RevocationIDSubject(sub string) string { return "sub:" + sub }

// IsRevoked implements [RevocationChecker]. iat has whole-second precision
// (NumericDate), so a subject revocation also covers tokens issued in the
// same second as IssuedBefore: fail closed rather than let a token minted a
// moment before the revocation through. Both rows are read in one storage
// lookup, on every call: a revocation is seen at once (docs/design.md#storage-and-replicas).
func (s StoreRevocations) IsRevoked(ctx context.Context, jti, sub string, iat time.Time) (bool, error) {
	jtiID, subID := RevocationIDJTI(jti), RevocationIDSubject(sub)
	rs, err := s.Store.GetRevocations(ctx, jtiID, subID)
	if err != nil {
		return false, fmt.Errorf("tokens: revocation of jti or subject: %w", err)
	}
	for _, r := range rs {
		switch r.ID {
		case jtiID:
			return true, nil
		case subID:
			if !iat.After(r.IssuedBefore) {
				return true, nil
			}
		}
	}
	return false, nil
}
