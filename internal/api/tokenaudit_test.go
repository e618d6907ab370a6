package api

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/storage"
)

// stubTokenAudit records what ExchangeToken and GetIDToken hand their
// audit writer; Commit fails with fail when set.
type stubTokenAudit struct {
	mu       sync.Mutex
	recorded []storage.AuditEvent
	commits  int
	fail     error
}

func (s *stubTokenAudit) Record(ev storage.AuditEvent) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recorded = append(s.recorded, ev)
	return true
}

func (s *stubTokenAudit) Commit(_ context.Context, ev storage.AuditEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commits++
	if s.fail != nil {
		return s.fail
	}
	s.recorded = append(s.recorded, ev)
	return nil
}

func (s *stubTokenAudit) events() []storage.AuditEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]storage.AuditEvent(nil), s.recorded...)
}

// TestGitpodTokenAuditModes: in audit.mode required an issued token's
// event is committed before the answer, and when it cannot be the token
// is withheld: ExchangeToken and GetIDToken answer unavailable with
// Retry-After, and a best-effort event records audit_unavailable
// (docs/security.md D-18, D-11). In best_effort nothing is committed
// synchronously; each request's one event is queued. A malformed exchange
// token is audited as refused.
func TestGitpodTokenAuditModes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		required bool
		fail     error
	}{
		{"best_effort", false, nil},
		{"required", true, nil},
		{"required_store_down", true, errors.New("audit: commit timed out")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sa := &stubTokenAudit{fail: tc.fail}
			e := newEnv(t, func(h *Handler) { h.SetTokenAudit(sa, tc.required) })
			c := e.clients(e.srv.URL)
			x, err := c.principal.CreateExchangeToken(as(e.admin), &stsv1.CreateExchangeTokenRequest{
				PrincipalId: e.user.ID, ValidFor: durationpb.New(5 * time.Minute)})
			if err != nil {
				t.Fatal(err)
			}
			xr, xerr := c.identity.ExchangeToken(as(""), &gitpodv1.ExchangeTokenRequest{ExchangeToken: x.GetExchangeToken()})
			ir, ierr := c.identity.GetIDToken(as(e.secret), &gitpodv1.GetIDTokenRequest{Audience: []string{"https://rp.example"}})
			_, merr := c.identity.ExchangeToken(as(""), &gitpodv1.ExchangeTokenRequest{ExchangeToken: "not-an-exchange-token"})
			wantCode(t, "malformed ExchangeToken", merr, connect.CodeUnauthenticated)

			if tc.fail != nil {
				for what, err := range map[string]error{"ExchangeToken": xerr, "GetIDToken": ierr} {
					wantCode(t, what+" with the audit store down", err, connect.CodeUnavailable)
					var ce *connect.Error
					if errors.As(err, &ce) && ce.Meta().Get("Retry-After") == "" {
						t.Errorf("%s: unavailable without Retry-After", what)
					}
				}
				if xr.GetAccessToken() != "" || ir.GetToken() != "" {
					t.Error("a token left although its audit event was not stored")
				}
			} else if xerr != nil || ierr != nil {
				t.Fatalf("ExchangeToken = %v, GetIDToken = %v", xerr, ierr)
			}
			wantCommits := 0
			if tc.required {
				wantCommits = 2 // the two issued tokens; never a refusal
			}
			if sa.commits != wantCommits {
				t.Errorf("commits = %d, want %d", sa.commits, wantCommits)
			}
			byAction := map[string][]storage.AuditEvent{}
			for _, ev := range sa.events() {
				byAction[ev.Action] = append(byAction[ev.Action], ev)
				if !json.Valid([]byte(ev.Detail)) {
					t.Errorf("%s event's detail is not JSON: %s", ev.Action, ev.Detail)
				}
				for _, secret := range []string{x.GetExchangeToken(), e.secret, xr.GetAccessToken(), ir.GetToken()} {
					if secret != "" && strings.Contains(ev.Detail+ev.Target+ev.Actor, secret) {
						t.Errorf("%s event holds a secret or token: %+v", ev.Action, ev)
					}
				}
			}
			if len(byAction[ActionTokenExchange]) != 2 || len(byAction[ActionTokenIDToken]) != 1 {
				t.Fatalf("events = %v, want two %s and one %s", byAction, ActionTokenExchange, ActionTokenIDToken)
			}
			wantOutcome := outcomeIssued
			if tc.fail != nil {
				wantOutcome = outcomeRefused
			}
			for _, ev := range []storage.AuditEvent{byAction[ActionTokenExchange][0], byAction[ActionTokenIDToken][0]} {
				if ev.Outcome != wantOutcome || ev.Actor != "principal:"+e.user.ID || ev.OrgID != e.org.ID ||
					!strings.Contains(ev.Detail, `"dialect":"gitpod"`) {
					t.Errorf("event = %+v, want outcome %s, the user as actor, its organization, dialect gitpod", ev, wantOutcome)
				}
				if tc.fail != nil && !strings.Contains(ev.Detail, `"reason":"audit_unavailable"`) {
					t.Errorf("event = %+v, want reason audit_unavailable", ev)
				}
				if tc.fail == nil && ev.Action == ActionTokenExchange && !strings.Contains(ev.Detail, `"src":{"src_sub":[`) {
					t.Errorf("event = %+v, want the sources the bought token carries", ev)
				}
				if tc.fail == nil && !strings.Contains(ev.Detail, `"jti":"`) {
					t.Errorf("event = %+v, want the token's jti", ev)
				}
			}
			if m := byAction[ActionTokenExchange][1]; m.Outcome != outcomeRefused || m.Actor != "anonymous" ||
				!strings.Contains(m.Detail, `"reason":"malformed"`) {
				t.Errorf("malformed redemption's event = %+v, want refused, anonymous, reason malformed", m)
			}
		})
	}
}
