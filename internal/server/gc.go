package server

import (
	"context"
	"time"

	"github.com/opensts/sts/internal/audit"
)

// runGC removes expired rows every interval until ctx ends, starting right
// away. A store that is not healthy yet (PostgreSQL still down, schema not
// migrated) is skipped quietly; the readiness checks already report that.
func (s *Server) runGC(ctx context.Context) {
	if s.store == nil || s.gcInterval <= 0 {
		return
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.collectGarbage(ctx)
		t.Reset(s.gcInterval)
	}
}

func (s *Server) collectGarbage(ctx context.Context) {
	if err := s.store.Health(ctx); err != nil {
		s.logger.DebugContext(ctx, "garbage collection skipped: storage not ready", "error", err)
		return
	}
	res, err := s.store.GarbageCollect(ctx, s.now())
	switch {
	case err != nil && ctx.Err() == nil:
		s.logger.WarnContext(ctx, "garbage collection failed", "error", err)
	case err == nil && !res.IsEmpty():
		s.logger.InfoContext(ctx, "garbage collection removed expired rows",
			"exchange_tokens", res.ExchangeTokens, "refresh_tokens", res.RefreshTokens,
			"revocations", res.Revocations, "used_jtis", res.UsedJTIs, "host_tokens", res.HostTokens,
			"web_sessions", res.WebSessions, "login_links", res.LoginLinks, "auth_codes", res.AuthCodes,
			"write_probes", res.WriteProbes)
	}
	// Audit retention (audit.retention, docs/security.md D-12).
	n, err := audit.Retention{Store: s.store, MaxAge: s.retention}.Purge(ctx, s.now())
	switch {
	case err != nil && ctx.Err() == nil:
		s.logger.WarnContext(ctx, "audit retention failed", "error", err, "deleted", n)
	case n > 0:
		s.logger.InfoContext(ctx, "audit retention removed old events", "audit_events", n)
	}
}
