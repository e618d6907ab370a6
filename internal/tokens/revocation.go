package tokens

import (
	"context"
	"fmt"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// RevocationChecker says whether a token has been revoked: by its jti, by
// its grant (the refresh-token family it came from, when grant is not
// empty), or because every token of its subject issued up to some time
// was. Implementations must be safe to call concurrently.
type RevocationChecker interface {
	IsRevoked(ctx context.Context, jti, sub, grant string, iat time.Time) (bool, error)
}

// StoreRevocations is the [RevocationChecker] over storage: rows
// "jti:<jti>" revoke one token, rows "grant:<family>" every token of a
// refresh-token family, rows "sub:<sub>" every token of the subject
// issued at or before IssuedBefore.
type StoreRevocations struct {
	Store storage.RevocationStore
}

// RevocationIDJTI is the revocation row ID of one access token.
func RevocationIDJTI(jti string) string { return "jti:" + jti }

// RevocationIDSubject is the revocation row ID of all tokens of a subject.
func RevocationIDSubject(sub string) string { return "sub:" + sub }

// RevocationIDGrant is the revocation row ID of every access token of a
// refresh-token family (the grant_id claim).
func RevocationIDGrant(family string) string { return "grant:" + family }

// GrantRevocation is the row that ends the access tokens of a revoked
// refresh-token family. No token is minted from the family after it is
// revoked, so the row is kept as long as a subject revocation by default
// (DefaultMaxLifetime plus DefaultLeeway): past it, every token the
// family minted has expired.
func GrantRevocation(family, reason string, now time.Time) storage.Revocation {
	return storage.Revocation{ID: RevocationIDGrant(family), Reason: reason, CreatedAt: storage.Now(now),
		ExpiresAt: storage.Now(now.Add(DefaultMaxLifetime + DefaultLeeway))}
}

// IsRevoked implements [RevocationChecker]. iat has whole-second precision
// (NumericDate), so a subject revocation also covers tokens issued in the
// same second as IssuedBefore: fail closed rather than let a token minted a
// moment before the revocation through. The rows are read in one storage
// lookup, on every call: a revocation is seen at once (docs/design.md#storage-and-replicas).
func (s StoreRevocations) IsRevoked(ctx context.Context, jti, sub, grant string, iat time.Time) (bool, error) {
	jtiID, subID, grantID := RevocationIDJTI(jti), RevocationIDSubject(sub), ""
	ids := []string{jtiID, subID}
	if grant != "" {
		grantID = RevocationIDGrant(grant)
		ids = append(ids, grantID)
	}
	rs, err := s.Store.GetRevocations(ctx, ids...)
	if err != nil {
		return false, fmt.Errorf("tokens: revocation of jti or subject: %w", err)
	}
	for _, r := range rs {
		switch r.ID {
		case jtiID, grantID:
			return true, nil
		case subID:
			if !iat.After(r.IssuedBefore) {
				return true, nil
			}
		}
	}
	return false, nil
}
