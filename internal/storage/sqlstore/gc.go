package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// GarbageCollect implements storage.Store. It removes rows whose expiry is
// before now, in one transaction; rows with a zero expiry (NULL) never
// match and are kept. An expired OAuth host token that still has a refresh
// token and an integration is kept as well: the refresh token outlives the
// access token, and deleting the row would lose a usable credential.
func (s *Store) GarbageCollect(ctx context.Context, now time.Time) (storage.GCResult, error) {
	const op = "garbage collect"
	var r storage.GCResult
	if now.IsZero() {
		return r, nil
	}
	t := s.ts(now)
	err := s.inTx(ctx, op, func(tx *sql.Tx) error {
		for _, d := range []struct {
			query string
			n     *int64
		}{
			{`DELETE FROM exchange_tokens WHERE expires_at < $1`, &r.ExchangeTokens},
			{`DELETE FROM refresh_tokens WHERE expires_at < $1`, &r.RefreshTokens},
			{`DELETE FROM revocations WHERE expires_at < $1`, &r.Revocations},
			{`DELETE FROM used_jtis WHERE expires_at < $1`, &r.UsedJTIs},
			{`DELETE FROM host_tokens WHERE expires_at < $1 AND NOT (source = 'OAUTH'
				AND COALESCE(length(sealed_refresh), 0) > 0 AND integration_id <> '')`, &r.HostTokens},
			{`DELETE FROM web_sessions WHERE expires_at < $1`, &r.WebSessions},
			{`DELETE FROM login_links WHERE expires_at < $1`, &r.LoginLinks},
		} {
			res, err := tx.ExecContext(ctx, d.query, t)
			if err != nil {
				return s.fail(op, err)
			}
			if *d.n, err = res.RowsAffected(); err != nil {
				return s.fail(op, err)
			}
		}
		// A used authorization code is kept for AuthCodeRetention past its
		// expiry, so a late second use still revokes what the first issued
		// (RFC 6749 §10.5, docs/security.md T-91).
		res, err := tx.ExecContext(ctx, `DELETE FROM auth_codes WHERE expires_at < $1`, s.ts(now.Add(-storage.AuthCodeRetention)))
		if err != nil {
			return s.fail(op, err)
		}
		if r.AuthCodes, err = res.RowsAffected(); err != nil {
			return s.fail(op, err)
		}
		// The write probes of processes silent for a day (ProbeWrite).
		res, err = tx.ExecContext(ctx, `DELETE FROM write_probes WHERE probed_at < $1`, s.ts(now.Add(-storage.WriteProbeRetention)))
		if err != nil {
			return s.fail(op, err)
		}
		if r.WriteProbes, err = res.RowsAffected(); err != nil {
			return s.fail(op, err)
		}
		return nil
	})
	if err != nil {
		return storage.GCResult{}, err
	}
	return r, nil
}
