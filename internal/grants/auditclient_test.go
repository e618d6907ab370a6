package grants

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// TestAuditNamesTheClient: docs/security.md D-19. The token.exchange
// event of every grant, issued or refused, names the authenticated client
// (detail client_id) and, when nothing judged gave it an organization,
// belongs to the client's, so that organization's administrators see
// their client's refusals. A client whose authentication failed is named
// nowhere, an anonymous request stays instance-level, and a refusal about
// another organization's pool never lands in the client's organization
// (T-102).
func TestAuditNamesTheClient(t *testing.T) {
	m := newMatrixEnv(t)
	const aud = "https://api.example"
	every := []string{oauth2.GrantTypeClientCredentials, oauth2.GrantTypeRefreshToken, oauth2.GrantTypeTokenExchange,
		oauth2.GrantTypeJWTBearer, oauth2.GrantTypeAuthorizationCode}
	acme, acmeSec := m.client(t, storage.Client{OrgID: "acme", GrantTypes: every, Pools: []string{"mx"},
		Scopes: []string{"read"}, Audiences: []string{aud}})
	none, noneSec := m.client(t, storage.Client{OrgID: "acme", GrantTypes: []string{"urn:example:none"}, Pools: []string{"mx"},
		Scopes: []string{"read"}, Audiences: []string{aud}})
	globex, globexSec := m.client(t, storage.Client{OrgID: "globex", GrantTypes: every, Scopes: []string{"read"}, Audiences: []string{aud}})

	request := map[string]func(c storage.Client) url.Values{
		oauth2.GrantTypeClientCredentials: func(storage.Client) url.Values {
			return url.Values{"grant_type": {oauth2.GrantTypeClientCredentials}, "scope": {"read"}, "audience": {aud}}
		},
		oauth2.GrantTypeTokenExchange: func(storage.Client) url.Values {
			return exchangeForm(m.subjectToken(t, "mx"), "pool", "mx", "scope", "read", "audience", aud)
		},
		oauth2.GrantTypeJWTBearer: func(storage.Client) url.Values {
			return url.Values{"grant_type": {oauth2.GrantTypeJWTBearer}, "assertion": {m.subjectToken(t, "mx")}, "pool": {"mx"}, "scope": {"read"}, "audience": {aud}}
		},
		oauth2.GrantTypeAuthorizationCode: func(c storage.Client) url.Values { return m.authCode(t, c, "ada", "read") },
		oauth2.GrantTypeRefreshToken: func(c storage.Client) url.Values {
			rt, err := m.ref.Issue(t.Context(), oauth2.GrantTypeTokenExchange, &c, tokens.AccessClaims{Subject: "repo:acme/app", OrgID: "acme", Pool: "mx", Provider: "p",
				IssuedAt: tokens.NewNumericDate(time.Now())}, []string{"read"}, []string{aud})
			if err != nil {
				t.Fatal(err)
			}
			return url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}, "scope": {"read"}}
		},
	}

	type want struct {
		status         int
		reason, org    string
		client, action string
	}
	// last posts form as id (none when empty) to path and returns the
	// request's one event and its detail.
	last := func(t *testing.T, path, id, sec string, form url.Values) (int, string, storage.AuditEvent, map[string]any) {
		t.Helper()
		before := len(m.audit.all())
		req, _ := http.NewRequest(http.MethodPost, m.srv.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if id != "" {
			req.SetBasicAuth(id, sec)
		}
		resp, body := do(t, req)
		evs := m.audit.all()
		if len(evs) != before+1 {
			t.Fatalf("%d audit events for one request, want 1", len(evs)-before)
		}
		ev := evs[len(evs)-1]
		var detail map[string]any
		if err := json.Unmarshal([]byte(ev.Detail), &detail); err != nil {
			t.Fatalf("detail %q: %v", ev.Detail, err)
		}
		reason, _ := body["reason"].(string)
		return resp.StatusCode, reason, ev, detail
	}
	check := func(t *testing.T, status int, reason string, ev storage.AuditEvent, detail map[string]any, w want) {
		t.Helper()
		if status != w.status || (w.reason != "" && reason != w.reason) {
			t.Errorf("answer = %d %q, want %d %q", status, reason, w.status, w.reason)
		}
		if ev.OrgID != w.org {
			t.Errorf("event org = %q, want %q (detail %s)", ev.OrgID, w.org, ev.Detail)
		}
		got, _ := detail["client_id"].(string)
		if got != w.client {
			t.Errorf("detail client_id = %q, want %q (detail %s)", got, w.client, ev.Detail)
		}
		if _, ok := detail["client_id_attempted"]; ok {
			t.Errorf("detail names an attempted client: %s", ev.Detail)
		}
	}

	for _, g := range every {
		t.Run(g+"/issued", func(t *testing.T) {
			status, reason, ev, detail := last(t, PathToken, acme.ID, acmeSec, request[g](acme))
			check(t, status, reason, ev, detail, want{status: http.StatusOK, org: "acme", client: acme.ID})
		})
		t.Run(g+"/grant not allowed", func(t *testing.T) {
			status, reason, ev, detail := last(t, PathToken, none.ID, noneSec, request[g](none))
			check(t, status, reason, ev, detail, want{status: http.StatusBadRequest, reason: ReasonGrantNotAllowed, org: "acme", client: none.ID})
		})
	}

	for _, tc := range []struct {
		name, path, id, sec string
		form                url.Values
		want                want
	}{
		// Refused before any subject was judged: the client's organization.
		{"malformed subject token", PathToken, acme.ID, acmeSec, exchangeForm("not-a-jwt"),
			want{status: http.StatusBadRequest, org: "acme", client: acme.ID}},
		{"unknown pool", PathToken, acme.ID, acmeSec, exchangeForm(m.subjectToken(t, "mx"), "pool", "nope"),
			want{status: http.StatusBadRequest, reason: "pool_unknown", org: "acme", client: acme.ID}},
		{"own organization's disabled pool", PathToken, acme.ID, acmeSec, exchangeForm(m.subjectToken(t, "off"), "pool", "off"),
			want{status: http.StatusBadRequest, reason: "pool_disabled", org: "acme", client: acme.ID}},
		// Another organization's disabled pool: not the client's
		// organization's business (T-102), instance-level as before.
		{"another organization's disabled pool", PathToken, globex.ID, globexSec, exchangeForm(m.subjectToken(t, "off"), "pool", "off"),
			want{status: http.StatusBadRequest, org: "", client: globex.ID}},
		// Selected by issuer, not named: a client's candidates are its
		// own organization's pools. Another organization's
		// disabled pool is none of them: no pool of globex trusts the
		// issuer, globex's business, which names nothing of acme's.
		{"another organization's disabled pool by issuer", PathToken, globex.ID, globexSec, exchangeForm(m.subjectToken(t, "off")),
			want{status: http.StatusBadRequest, reason: "issuer_unknown", org: "globex", client: globex.ID}},
		// Its own disabled pool by issuer: its organization's.
		{"own organization's disabled pool by issuer", PathToken, acme.ID, acmeSec, exchangeForm(m.subjectToken(t, "off")),
			want{status: http.StatusBadRequest, reason: "pool_disabled", org: "acme", client: acme.ID}},
		// Another organization's pool, judged: the pool's organization, as
		// before, which now sees which client asked.
		{"another organization's pool", PathToken, globex.ID, globexSec, exchangeForm(m.subjectToken(t, "mx"), "pool", "mx"),
			want{status: http.StatusBadRequest, org: "acme", client: globex.ID}},
		// No authenticated client: nothing named, instance-level.
		{"wrong secret", PathToken, acme.ID, "sts_cs_wrong", exchangeForm(m.subjectToken(t, "mx"), "pool", "mx"),
			want{status: http.StatusUnauthorized, org: "", client: ""}},
		{"anonymous", PathToken, "", "", exchangeForm("not-a-jwt"),
			want{status: http.StatusBadRequest, org: "", client: ""}},
		// The other dialects: the same event.
		{"confluent", PathConfluentToken, acme.ID, acmeSec,
			exchangeForm(m.subjectToken(t, "mx"), "identity_pool_id", "mx", "scope", "read", "audience", aud),
			want{status: http.StatusOK, org: "acme", client: acme.ID}},
		{"confluent refused", PathConfluentToken, none.ID, noneSec,
			exchangeForm(m.subjectToken(t, "mx"), "identity_pool_id", "mx", "scope", "read", "audience", aud),
			want{status: http.StatusBadRequest, org: "acme", client: none.ID}},
		// A pool named for a grant that belongs to none (T-143): refused
		// before the grant runs, the client still named.
		{"confluent client_credentials", PathConfluentToken, acme.ID, acmeSec,
			url.Values{"grant_type": {oauth2.GrantTypeClientCredentials}, "identity_pool_id": {"mx"}, "scope": {"read"}, "audience": {aud}},
			want{status: http.StatusBadRequest, org: "acme", client: acme.ID}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, reason, ev, detail := last(t, tc.path, tc.id, tc.sec, tc.form)
			check(t, status, reason, ev, detail, tc.want)
		})
	}
}
