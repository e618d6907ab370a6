package server

import (
	"context"
	"time"

	"github.com/opensts/sts/internal/audit"
)

// gcStepTimeout bounds each step of a collection (the health check, the
// collection, audit retention): the loop runs on serve's context, which
// has no deadline, and on a database that stopped answering a step waited
// until TCP gave up, collecting nothing meanwhile (docs/security.md F-90).
// It is generous: a collection is a handful of statements, each bounded
// on the server by storage.statement_timeout (10 s by default), and a
// collection or a retention cut short keeps what it deleted (each deletes
// in batches that commit on their own) and goes on at the next interval.
const gcStepTimeout = 2 * time.Minute

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
	if !s.gcHealthy(ctx) {
		return
	}
	s.gcCollect(ctx)
	s.gcRetention(ctx)
}

// gcHealthy, gcCollect and gcRetention are the steps of a collection,
// each under its own deadline (gcStepTimeout). A step cut off by it is
// logged as failed; one cut off by the end of serve's context is not.
func (s *Server) gcHealthy(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, s.gcStep)
	defer cancel()
	if err := s.store.Health(ctx); err != nil {
		s.logger.DebugContext(ctx, "garbage collection skipped: storage not ready", "error", err)
		return false
	}
	return true
}

func (s *Server) gcCollect(parent context.Context) {
	ctx, cancel := context.WithTimeout(parent, s.gcStep)
	defer cancel()
	res, err := s.store.GarbageCollect(ctx, s.now())
	switch {
	case err != nil && parent.Err() == nil: // a step that ran out is logged; a shutdown is not
		// What it deleted before failing stays deleted (batches commit on
		// their own); the next interval goes on from there.
		s.logger.WarnContext(ctx, "garbage collection failed", "error", err,
			"exchange_tokens", res.ExchangeTokens, "refresh_tokens", res.RefreshTokens, "revocations", res.Revocations,
			"used_jtis", res.UsedJTIs, "host_tokens", res.HostTokens, "web_sessions", res.WebSessions,
			"login_links", res.LoginLinks, "auth_codes", res.AuthCodes, "write_probes", res.WriteProbes)
	case err == nil && !res.IsEmpty():
		s.logger.InfoContext(ctx, "garbage collection removed expired rows",
			"exchange_tokens", res.ExchangeTokens, "refresh_tokens", res.RefreshTokens,
			"revocations", res.Revocations, "used_jtis", res.UsedJTIs, "host_tokens", res.HostTokens,
			"web_sessions", res.WebSessions, "login_links", res.LoginLinks, "auth_codes", res.AuthCodes,
			"write_probes", res.WriteProbes)
	}
}

// gcRetention applies audit retention (audit.retention, docs/security.md D-12).
func (s *Server) gcRetention(parent context.Context) {
	ctx, cancel := context.WithTimeout(parent, s.gcStep)
	defer cancel()
	n, err := audit.Retention{Store: s.store, MaxAge: s.retention}.Purge(ctx, s.now())
	switch {
	case err != nil && parent.Err() == nil: // a step that ran out is logged; a shutdown is not
		s.logger.WarnContext(ctx, "audit retention failed", "error", err, "deleted", n)
	case n > 0:
		s.logger.InfoContext(ctx, "audit retention removed old events", "audit_events", n)
	}
}
