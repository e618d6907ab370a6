package app_test

import (
	"testing"
	"time"

	xoauth2 "golang.org/x/oauth2"

	"github.com/opensts/sts/internal/authorize"
	"github.com/opensts/sts/internal/storage"
)

// TestConsentEventsSayWhereFrom: a consent given on the authorization
// page and the code it issues are audited with the browser's address and
// user agent, as the pages' other events (docs/security.md D-14, D-21).
// (Not parallel: it waits a bounded time for the audit writer's batch.)
func TestConsentEventsSayWhereFrom(t *testing.T) {
	e := newCodeEnv(t)
	e.signIn(t, e.user)
	e.approve(t, e.oauthConfig(e.conf, e.secret, e.callback.URL+"/cb"), xoauth2.GenerateVerifier())
	want := []string{authorize.ActionConsentGrant, authorize.ActionCodeIssue}
	deadline := time.Now().Add(5 * time.Second) // the events are written in batches
	for {
		evs, err := e.store.ListAudit(t.Context(), storage.AuditFilter{Actor: "principal:" + e.user.ID})
		if err != nil {
			t.Fatal(err)
		}
		found := map[string]storage.AuditEvent{}
		for _, ev := range evs {
			found[ev.Action] = ev
		}
		if len(found) >= len(want) || time.Now().After(deadline) {
			for _, a := range want {
				ev, ok := found[a]
				switch {
				case !ok:
					t.Errorf("no %s event", a)
				case ev.ClientIP != "127.0.0.1" || ev.UserAgent == "":
					t.Errorf("%s event does not say where it came from: client address %q, user agent %q", a, ev.ClientIP, ev.UserAgent)
				}
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
