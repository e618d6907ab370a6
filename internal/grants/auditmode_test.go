package grants

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
)

// failingAudit is the real store with audit writes failing, as during a
// database outage that only the audit table notices.
type failingAudit struct{ storage.Store }

func (failingAudit) AppendAudit(context.Context, ...storage.AuditEvent) error {
	return errors.New("audit table unavailable")
}

// auditModeEnv is newEnv with a real audit.Writer over store: durable
// selects audit.mode required.
func auditModeEnv(t *testing.T, store storage.AuditStore, durable bool) (e *env, w *audit.Writer, lost *int, stop func()) {
	t.Helper()
	e = newEnv(t, nil)
	lost = new(int)
	w = &audit.Writer{Store: store, FlushEvery: 10 * time.Millisecond, RetryBackoff: time.Millisecond,
		CommitTimeout: time.Second, DrainTimeout: 100 * time.Millisecond, OnLost: func(_ string, n int) { *lost += n }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	e.handler.Audit = w
	if durable {
		e.handler.Durable = w
	}
	return e, w, lost, stop
}

// TestAuditRequiredFailsClosed: docs/security.md D-11. With audit.mode
// required and the audit write failing, an exchange answers 503 with
// Retry-After and no token; with best_effort it issues and the event is
// counted lost.
func TestAuditRequiredFailsClosed(t *testing.T) {
	t.Run("required", func(t *testing.T) {
		e, _, _, _ := auditModeEnv(t, failingAudit{}, true)
		tok := e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "alice"))
		resp, body := e.post(t, PathToken, exchangeForm(tok, "pool", "ci"))
		if resp.StatusCode != http.StatusServiceUnavailable || body["error"] != oauth2.ErrorTemporarilyUnavailable {
			t.Fatalf("exchange with the audit trail down = %d %v, want 503 temporarily_unavailable", resp.StatusCode, body)
		}
		if resp.Header.Get("Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
		if _, ok := body["access_token"]; ok {
			t.Error("a token was issued without a durable audit event")
		}
	})
	t.Run("required, trail up", func(t *testing.T) {
		store := newSQLite(t)
		e, _, _, _ := auditModeEnv(t, store, true)
		tok := e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "alice"))
		resp, body := e.post(t, PathToken, exchangeForm(tok, "pool", "ci"))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("exchange = %d %v, want 200", resp.StatusCode, body)
		}
		// The event is durable before the answer, not a flush later.
		evs, err := store.ListAudit(t.Context(), storage.AuditFilter{Action: ActionTokenExchange})
		if err != nil || len(evs) != 1 || evs[0].Outcome != OutcomeIssued {
			t.Fatalf("audit events when the token arrived = %+v, %v; want the issued one", evs, err)
		}
		// docs/security.md D-14: the client address and user agent.
		if evs[0].ClientIP != "127.0.0.1" || !strings.HasPrefix(evs[0].UserAgent, "Go-http-client/") {
			t.Errorf("event client = %q %q, want 127.0.0.1 and Go's user agent", evs[0].ClientIP, evs[0].UserAgent)
		}
	})
	t.Run("best_effort", func(t *testing.T) {
		e, w, lost, stop := auditModeEnv(t, failingAudit{}, false)
		tok := e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "alice"))
		resp, body := e.post(t, PathToken, exchangeForm(tok, "pool", "ci"))
		if resp.StatusCode != http.StatusOK || body["access_token"] == nil {
			t.Fatalf("best-effort exchange with the audit trail down = %d %v, want a token", resp.StatusCode, body)
		}
		deadline := time.Now().Add(5 * time.Second)
		for w.Stats().Retries == 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if w.Stats().Retries == 0 {
			t.Error("the failing batch was not retried")
		}
		stop() // the store never recovers: shutdown gives up and counts
		if *lost != 1 {
			t.Errorf("lost events = %d, want the 1 exchange event", *lost)
		}
	})
}
