package app_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/opensts/sts/internal/config"
	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
)

// TestGitpodTokensAreAudited: gitpod.v1 ExchangeToken and GetIDToken leave
// one audit event per token request, as the token endpoint does
// (docs/design.md#audit, docs/security.md D-18): a redemption that issues
// (token.exchange, dialect gitpod, its jti), a replay of the spent
// exchange token (refused, the same digest prefix), an ID token
// (token.id_token, its jti and audience) and an ID token refused for a
// missing scope. No event holds the token or the exchange token's secret.
// In best_effort mode the events come with the writer's next batch; in
// required mode they are stored before the answer.
// (Not parallel: it waits a bounded time for the audit writer's batch.)
func TestGitpodTokensAreAudited(t *testing.T) {
	for _, mode := range []string{config.AuditModeBestEffort, config.AuditModeRequired} {
		t.Run(mode, func(t *testing.T) {
			e := newCodeEnv(t, func(c *config.Config) { c.Audit.Mode = mode })
			ctx := t.Context()
			creds := e.gitpodCredentials(t)
			ext := creds.exchangeToken(t)
			anon := gitpodv1connect.NewIdentityServiceClient(http.DefaultClient, e.base+"/api")
			xr, err := anon.ExchangeToken(ctx, &gitpodv1.ExchangeTokenRequest{ExchangeToken: ext})
			if err != nil {
				t.Fatalf("ExchangeToken: %v", err)
			}
			_, err = anon.ExchangeToken(ctx, &gitpodv1.ExchangeTokenRequest{ExchangeToken: ext})
			if connect.CodeOf(err) != connect.CodeUnauthenticated {
				t.Fatalf("replayed ExchangeToken = %v, want unauthenticated", err)
			}
			const rp = "https://rp.example"
			idPAT, readPAT := creds.pat(t, pat.ScopeIDToken), creds.pat(t, pat.ScopeIdentityRead)
			ir, err := gitpodv1connect.NewIdentityServiceClient(bearer(idPAT), e.base+"/api").
				GetIDToken(ctx, &gitpodv1.GetIDTokenRequest{Audience: []string{rp}})
			if err != nil {
				t.Fatalf("GetIDToken: %v", err)
			}
			_, err = gitpodv1connect.NewIdentityServiceClient(bearer(readPAT), e.base+"/api").
				GetIDToken(ctx, &gitpodv1.GetIDTokenRequest{Audience: []string{rp}})
			if connect.CodeOf(err) != connect.CodePermissionDenied {
				t.Fatalf("GetIDToken without identity:id_token = %v, want permission_denied", err)
			}

			xjti, ijti := jwtID(t, xr.GetAccessToken()), jwtID(t, ir.GetToken())
			want := func(evs []storage.AuditEvent) (issuedX, replay, issuedID, refusedID *storage.AuditEvent) {
				for i := range evs {
					ev := &evs[i]
					var d map[string]any
					_ = json.Unmarshal([]byte(ev.Detail), &d)
					switch {
					case ev.Action == "token.exchange" && ev.Outcome == "issued" && d["jti"] == xjti:
						issuedX = ev
					case ev.Action == "token.exchange" && ev.Outcome == "refused" && d["dialect"] == "gitpod":
						replay = ev
					case ev.Action == "token.id_token" && ev.Outcome == "issued" && d["jti"] == ijti:
						issuedID = ev
					case ev.Action == "token.id_token" && ev.Outcome == "refused":
						refusedID = ev
					}
				}
				return
			}
			var evs []storage.AuditEvent
			var x, r, i, ri *storage.AuditEvent
			if mode == config.AuditModeRequired {
				// Stored before the answer: no waiting for a batch.
				if evs, err = e.store.ListAudit(ctx, storage.AuditFilter{Limit: 500}); err != nil {
					t.Fatal(err)
				}
				if x, _, i, _ = want(evs); x == nil || i == nil {
					t.Errorf("audit.mode required: issued tokens' events not stored before the answer (redemption %v, ID token %v)", x != nil, i != nil)
				}
			}
			deadline := time.Now().Add(5 * time.Second) // best_effort: the writer's next batch (audit.flush_every 1 s)
			for {
				evs, err = e.store.ListAudit(ctx, storage.AuditFilter{Limit: 500})
				if err != nil {
					t.Fatal(err)
				}
				if x, r, i, ri = want(evs); (x != nil && r != nil && i != nil && ri != nil) || time.Now().After(deadline) {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if x == nil || r == nil || i == nil || ri == nil {
				var got []string
				for _, ev := range evs {
					got = append(got, ev.Action+" "+ev.Outcome+" "+ev.Detail)
				}
				t.Fatalf("events: redemption %v, replay %v, ID token %v, refused ID token %v; the trail holds:\n%s",
					x != nil, r != nil, i != nil, ri != nil, strings.Join(got, "\n"))
			}
			if x.Actor != "principal:"+e.user.ID || x.OrgID != e.org || !strings.Contains(x.Detail, `"dialect":"gitpod"`) {
				t.Errorf("redemption event = %+v, want actor principal:%s, org %s, dialect gitpod", *x, e.user.ID, e.org)
			}
			if x.Target == "" || r.Target != x.Target {
				t.Errorf("replay target %q, redemption target %q: want the same exchange token's digest prefix", r.Target, x.Target)
			}
			if i.Actor != "principal:"+e.user.ID || i.OrgID != e.org || !strings.Contains(i.Detail, rp) {
				t.Errorf("ID token event = %+v, want actor principal:%s, org %s, audience %s", *i, e.user.ID, e.org, rp)
			}
			if ri.Actor != "principal:"+e.user.ID || !strings.Contains(ri.Detail, "permission_denied") {
				t.Errorf("refused ID token event = %+v, want the caller and reason permission_denied", *ri)
			}
			for _, ev := range evs {
				for _, secret := range []string{ext, idPAT, readPAT, xr.GetAccessToken(), ir.GetToken()} {
					if strings.Contains(ev.Detail+ev.Target+ev.Actor, secret) {
						t.Errorf("event %s %s holds a secret or token", ev.Action, ev.Outcome)
					}
				}
			}
		})
	}
}

// jwtID is the jti of a JWT, read without verification.
func jwtID(t *testing.T, jwt string) string {
	t.Helper()
	var c struct {
		ID string `json:"jti"`
	}
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(b, &c) != nil || c.ID == "" {
		t.Fatalf("no jti in %q: %v", jwt, err)
	}
	return c.ID
}
