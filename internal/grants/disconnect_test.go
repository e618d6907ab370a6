package grants

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestClientDisconnectIsNotARefusal: a request whose client went away
// before it was decided (its context canceled) is counted and audited as
// OutcomeClientClosed, not as a policy refusal or a server error.
func TestClientDisconnectIsNotARefusal(t *testing.T) {
	e := newEnv(t, nil)
	mux := http.NewServeMux()
	e.handler.Mount(mux)
	tok := e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "user-1"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequestWithContext(ctx, http.MethodPost, PathToken, strings.NewReader(exchangeForm(tok, "pool", "ci").Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	mux.ServeHTTP(httptest.NewRecorder(), r)

	e.obsMu.Lock()
	obs := append([]Observation(nil), e.obs...)
	e.obsMu.Unlock()
	if len(obs) != 1 || obs[0].Outcome != OutcomeClientClosed || obs[0].Reason != ReasonClientClosed {
		t.Errorf("observations = %+v, want one %q with reason %q", obs, OutcomeClientClosed, ReasonClientClosed)
	}
	for _, ev := range e.audit.all() {
		if ev.Outcome != OutcomeClientClosed {
			t.Errorf("audit outcome = %q, want %q", ev.Outcome, OutcomeClientClosed)
		}
	}
}
