package grants

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/logbuf"
	"github.com/opensts/sts/internal/ststest/stall"
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

// stallingPools holds ListPools until the request's context ends, after
// telling its gate; then it fails with fail, or with the context's error
// when fail is nil.
type stallingPools struct {
	storage.Store
	gate *stall.Gate
	fail error
}

func (s stallingPools) ListPools(ctx context.Context) ([]storage.Pool, error) {
	err := s.gate.Hold(ctx)
	if s.fail != nil {
		return nil, s.fail
	}
	return nil, err
}

// TestClientGoneAtAFaultIsTheFault: a request whose client goes away
// while its pools are read is client_closed only when what failed is that
// cancel; storage that fails on its own at the same moment is recorded as
// what it is, in the metrics and the audit log, and logged (docs/security.md
// F-110).
func TestClientGoneAtAFaultIsTheFault(t *testing.T) {
	for _, fail := range []error{nil, errors.New("database is down")} {
		gate := stall.New()
		e := newEnv(t, stallingPools{Store: newSQLite(t), gate: gate, fail: fail})
		logs := &logbuf.Buffer{}
		e.handler.Logger = slog.New(slog.NewTextHandler(logs, nil))
		tok := e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "user-1"))
		ctx, cancel := gate.Context(t.Context())
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.srv.URL+PathToken, strings.NewReader(exchangeForm(tok, "pool", "ci").Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("the call was answered %d; want the client's own cancel", resp.StatusCode)
		}
		cancel()
		e.srv.Close() // waits for the handler to return

		e.obsMu.Lock()
		obs := append([]Observation(nil), e.obs...)
		e.obsMu.Unlock()
		audit := e.audit.all()
		if len(obs) != 1 || len(audit) != 1 {
			t.Fatalf("fail %v: observations %+v, audit events %+v; want one of each", fail, obs, audit)
		}
		closed := obs[0].Outcome == OutcomeClientClosed
		if closed != (fail == nil) {
			t.Errorf("fail %v: observation %+v; client_closed %v, want %v", fail, obs[0], closed, fail == nil)
		}
		if (audit[0].Outcome == OutcomeClientClosed) != (fail == nil) {
			t.Errorf("fail %v: audit outcome %q", fail, audit[0].Outcome)
		}
		if fail != nil && !strings.Contains(logs.String(), "database is down") {
			t.Errorf("storage that failed while the client went away was not logged:\n%s", logs.String())
		}
	}
}
