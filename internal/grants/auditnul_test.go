package grants

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// TestAuditTextNotStorable (docs/security.md T-282): a subject token whose
// sub holds a NUL character ("\u0000" in its JSON, valid in a JWT) or a
// text PostgreSQL would refuse reaches the audit trail as the event's
// actor. PostgreSQL refused the row, so in audit.mode best_effort the
// writer retried the batch for ever and every event after it (anyone's)
// waited behind it until the buffer overflowed and they were lost; in
// audit.mode required the exchange was a 503 with Retry-After for a token
// that would never be served. The audit store keeps such text as the
// replacement character instead, on both backends.
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
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("durable=%v: exchange of a sub with a NUL = %d %v %v (Retry-After %q), want 200",
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
