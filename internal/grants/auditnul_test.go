package grants

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// TestAuditTextNotStorable (docs/security.md T-249): a subject token whose
// sub holds a NUL character ("\u0000" in its JSON, valid in a JWT) is
// refused (T-251), and its refusal's event names the token as its actor,
// sub included. PostgreSQL refused that row, so the audit writer retried
// the batch for ever: in audit.mode best_effort every later event,
// anyone's, waited behind it until the buffer overflowed and they were
// lost; in audit.mode required every later exchange joined the failing
// batch and was a 503 with Retry-After. The audit store keeps such text
// as the replacement character instead, on both backends.
func TestAuditTextNotStorable(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			for _, durable := range []bool{false, true} {
				store := backendStore(t, backend)
				if store == nil {
					store = newSQLite(t)
				}
				e, w, _, _ := auditModeEnv(t, store, durable)
				poison := e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "al\x00ice"))
				resp, body := e.post(t, PathToken, exchangeForm(poison, "pool", "ci"))
				if resp.StatusCode != http.StatusBadRequest {
					t.Fatalf("durable=%v: exchange of a sub with a NUL = %d %v %v (Retry-After %q), want 400",
						durable, resp.StatusCode, body["error"], body["reason"], resp.Header.Get("Retry-After"))
				}
				good := e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "bob"))
				if resp, body := e.post(t, PathToken, exchangeForm(good, "pool", "ci")); resp.StatusCode != http.StatusOK {
					t.Fatalf("durable=%v: then bob = %d %v, want 200", durable, resp.StatusCode, body)
				}
				var evs []storage.AuditEvent
				for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
					var err error
					if evs, err = store.ListAudit(t.Context(), storage.AuditFilter{Action: ActionTokenExchange}); err != nil {
						t.Fatal(err)
					}
					if len(evs) == 2 {
						break
					}
				}
				if len(evs) != 2 {
					t.Fatalf("durable=%v: audit events stored = %d (writer stats %+v), want both exchanges'", durable, len(evs), w.Stats())
				}
				// Newest first: bob, then the poisoned sub as the
				// replacement character, never lost, never a NUL.
				if !strings.HasSuffix(evs[0].Actor, "#bob") || !strings.HasSuffix(evs[1].Actor, "#al\uFFFDice") {
					t.Errorf("durable=%v: actors = %q, %q; want …#bob and …#al\uFFFDice", durable, evs[0].Actor, evs[1].Actor)
				}
			}
		})
	}
}
