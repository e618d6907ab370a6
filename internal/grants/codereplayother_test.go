package grants

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
)

// TestAuthorizationCodeReplayByAnotherClient (docs/security.md T-91,
// T-195, docs/authorization.md "Token endpoints"): whoever presents a
// spent code ends what its first redemption issued, whichever client it
// names: another organization's confidential client, authenticated, or
// any registered public client named by client_id alone. RFC 6749 §10.5
// permits revoking on any reuse, and the code has leaked either way. The
// replay is in the audit trail of the code's organization, whose family
// it ended, not the presenter's (it was globex's, or, for a public
// client, no organization's). On SQLite and PostgreSQL.
func TestAuthorizationCodeReplayByAnotherClient(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) { testAuthorizationCodeReplayByAnotherClient(t, backendStore(t, backend)) })
	}
}

func testAuthorizationCodeReplayByAnotherClient(t *testing.T, store storage.Store) {
	r := newCodeReplay(t, store)
	m := r.m
	g, gsec := m.client(t, storage.Client{OrgID: "globex", GrantTypes: []string{oauth2.GrantTypeAuthorizationCode},
		Scopes: []string{"read"}, Audiences: []string{stsIssuer}})
	pub := storage.Client{ID: storage.NewID(), OrgID: "globex", PrincipalID: "sa-globex", AuthMethod: oauth2.AuthMethodNone,
		GrantTypes: []string{oauth2.GrantTypeAuthorizationCode}, Scopes: []string{"read"}, Audiences: []string{stsIssuer}}
	if err := m.store.CreateClient(t.Context(), pub); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		present func(code url.Values) (int, map[string]any)
	}{
		{"globex's confidential client", func(code url.Values) (int, map[string]any) { return m.postAs(t, g.ID, gsec, code) }},
		{"globex's public client, no code_verifier", func(code url.Values) (int, map[string]any) {
			return m.postAs(t, "", "", url.Values{"grant_type": {oauth2.GrantTypeAuthorizationCode}, "client_id": {pub.ID}, "code": code["code"]})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, access, refresh := r.redeemed(t)
			before := len(m.audit.all())
			status, body := tc.present(code)
			if status != http.StatusBadRequest || body["reason"] != ReasonCodeReused {
				t.Errorf("replay = %d %v %v, want 400 %s", status, body["error"], body["reason"], ReasonCodeReused)
			}
			r.checkEnded(t, access, refresh)
			evs := m.audit.all()
			if len(evs) <= before {
				t.Fatal("the replay was not audited")
			}
			ev := evs[before]
			var d map[string]any
			_ = json.Unmarshal([]byte(ev.Detail), &d)
			if ev.OrgID != "acme" || d["reason"] != ReasonCodeReused {
				t.Errorf("replay's audit event: org %q reason %v, want acme %s (the code's organization)", ev.OrgID, d["reason"], ReasonCodeReused)
			}
		})
	}
}
