package sqlstore

import (
	"context"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// DefaultGCBatch is how many rows one statement of GarbageCollect deletes
// unless Config.GCBatch says otherwise.
const DefaultGCBatch = 5000

// GarbageCollect implements storage.Store. It removes rows whose expiry is
// before now; rows with a zero expiry (NULL) never match and are kept. An
// expired OAuth host token that still has a refresh token and an
// integration is kept as well: the refresh token outlives the access
// token, and deleting the row would lose a usable credential.
//
// Each statement deletes at most Config.GCBatch rows and commits on its own, as
// PurgeAudit's: a collection cut off by its caller's deadline keeps what
// it deleted, so a backlog larger than one deadline allows shrinks at
// every interval (in one transaction it was rolled back whole each time
// and never shrank, on SQLite holding the write lock meanwhile;
// docs/security.md F-90). On an error the counts of what was deleted
// before it are returned with it.
func (s *Store) GarbageCollect(ctx context.Context, now time.Time) (storage.GCResult, error) {
	const op = "garbage collect"
	var r storage.GCResult
	if now.IsZero() {
		return r, nil
	}
	for _, d := range []struct {
		table, where string
		before       time.Time
		n            *int64
	}{
		{"exchange_tokens", "expires_at < $1", now, &r.ExchangeTokens},
		{"refresh_tokens", "expires_at < $1", now, &r.RefreshTokens},
		{"revocations", "expires_at < $1", now, &r.Revocations},
		{"used_jtis", "expires_at < $1", now, &r.UsedJTIs},
		{"host_tokens", `expires_at < $1 AND NOT (source = 'OAUTH'
			AND COALESCE(length(sealed_refresh), 0) > 0 AND integration_id <> '')`, now, &r.HostTokens},
		{"web_sessions", "expires_at < $1", now, &r.WebSessions},
		{"login_links", "expires_at < $1", now, &r.LoginLinks},
		// A used authorization code is kept for AuthCodeRetention past its
		// expiry, so a late second use still revokes what the first issued
		// (RFC 6749 §10.5, docs/security.md T-91).
		{"auth_codes", "expires_at < $1", now.Add(-storage.AuthCodeRetention), &r.AuthCodes},
		// The write probes of processes silent for a day (ProbeWrite).
		{"write_probes", "probed_at < $1", now.Add(-storage.WriteProbeRetention), &r.WriteProbes},
	} {
		query := `DELETE FROM ` + d.table + ` WHERE id IN (SELECT id FROM ` + d.table + ` WHERE ` + d.where + ` LIMIT $2)`
		for {
			res, err := s.db.ExecContext(ctx, query, s.ts(d.before), s.gcBatch)
			if err != nil {
				return r, s.fail(op, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return r, s.fail(op, err)
			}
			*d.n += n
			if n < int64(s.gcBatch) {
				break
			}
		}
	}
	return r, nil
}
