package grants

import (
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/clientip"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/ratelimit"
	"github.com/opensts/sts/internal/storage"
)

// TestPATExchangeChargesPrincipal: a personal access token exchanged at
// the token endpoint without client authentication, and the access token
// that exchange issued exchanged again, are charged to the PAT owner's
// bucket (rate_limits.per_client, "principal:<id>"), the bucket the
// bearer API charges the same credential (docs/security.md A-57, T-239):
// one person's PATs share it, a second PAT is no fresh bucket, and a new
// source address (a fresh per-IP bucket) is none either. Refused: 429
// temporarily_unavailable with Retry-After, nothing issued. In memory and
// in Redis.
func TestPATExchangeChargesPrincipal(t *testing.T) {
	backends := map[string]func(t *testing.T) func(string, ratelimit.Rule) ratelimit.Limiter{
		"memory": memoryLimiters,
		"redis":  redisLimiters,
	}
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			ctx := t.Context()
			owner := storage.Principal{ID: storage.NewID(), OrgID: "acme", Kind: storage.PrincipalUser, Name: "ada"}
			other := storage.Principal{ID: storage.NewID(), OrgID: "acme", Kind: storage.PrincipalUser, Name: "bob"}
			for _, p := range []storage.Principal{owner, other} {
				if err := e.store.CreatePrincipal(ctx, p); err != nil {
					t.Fatal(err)
				}
			}
			svc, err := pat.NewService(e.store, []byte(strings.Repeat("k", 32)))
			if err != nil {
				t.Fatal(err)
			}
			e.grant.PATs = svc
			// Behind a proxy on loopback, as in serve: X-Forwarded-For
			// names the source address (clientip, docs/security.md T-78).
			ips := clientip.NewResolver([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}, clientip.XForwardedFor)
			inner := e.srv.Config.Handler
			e.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				inner.ServeHTTP(w, r.WithContext(clientip.WithIP(r.Context(), ips.Resolve(r))))
			})
			newPAT := func(p storage.Principal) string {
				_, secret, err := svc.Create(ctx, pat.Caller{Actor: "test"}, pat.CreateInput{
					OwnerID: p.ID, Description: "ci", Scopes: []string{"identity:read"}, ExpiresAt: time.Now().Add(48 * time.Hour)})
				if err != nil {
					t.Fatal(err)
				}
				return secret
			}
			first, second, others := newPAT(owner), newPAT(owner), newPAT(other)
			const slow = 0.001 // no refill during the test
			lim := open(t)
			e.handler.Limits = ratelimit.Limits{
				PerIP:     lim("per_ip", ratelimit.Rule{Rate: slow, Burst: 100}),
				PerClient: lim("per_client", ratelimit.Rule{Rate: slow, Burst: 3}),
				PerPool:   lim("per_pool", ratelimit.Rule{Rate: slow, Burst: 100}),
			}
			patForm := func(secret string) map[string][]string {
				v := exchangeForm(secret, "scope", "identity:read")
				v.Set("subject_token_type", oauth2.TokenTypePAT)
				return v
			}
			send := func(form map[string][]string) (*http.Response, map[string]any) {
				resp, body := e.post(t, PathToken, form)
				return resp, body
			}
			// Three from the owner's bucket: each PAT once, then the
			// access token the first issued, exchanged again.
			resp, body := send(patForm(first))
			own, _ := body["access_token"].(string)
			if resp.StatusCode != 200 || own == "" {
				t.Fatalf("first PAT exchange = %d %v", resp.StatusCode, body)
			}
			if resp, body := send(patForm(second)); resp.StatusCode != 200 {
				t.Fatalf("second PAT of the same owner = %d %v", resp.StatusCode, body)
			}
			ownForm := exchangeForm(own, "scope", "identity:read")
			ownForm.Set("subject_token_type", oauth2.TokenTypeAccessToken)
			if resp, body := send(ownForm); resp.StatusCode != 200 {
				t.Fatalf("re-exchange of the PAT's access token = %d %v", resp.StatusCode, body)
			}
			// The owner's bucket is empty: every credential of theirs is
			// refused, whichever PAT and whatever the source address.
			for _, s := range []struct {
				name string
				form map[string][]string
				ip   string
			}{
				{"first PAT", patForm(first), ""},
				{"second PAT", patForm(second), ""},
				{"the PAT's access token", ownForm, ""},
				{"a PAT from another address", patForm(first), "2001:db8:1::7"},
			} {
				req, _ := http.NewRequest(http.MethodPost, e.srv.URL+PathToken, strings.NewReader(url.Values(s.form).Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				if s.ip != "" {
					req.Header.Set("X-Forwarded-For", s.ip)
				}
				resp, body := do(t, req)
				if resp.StatusCode != http.StatusTooManyRequests || body["error"] != oauth2.ErrorTemporarilyUnavailable ||
					resp.Header.Get("Retry-After") == "" || resp.Header.Get("X-RateLimit-Limit") != "3" || body["access_token"] != nil {
					t.Errorf("%s over the owner's limit = %d %v (Retry-After %q, X-RateLimit-Limit %q), want 429 temporarily_unavailable with the principal bucket's headers",
						s.name, resp.StatusCode, body["error"], resp.Header.Get("Retry-After"), resp.Header.Get("X-RateLimit-Limit"))
				}
			}
			// Another person's bucket is theirs.
			if resp, body := send(patForm(others)); resp.StatusCode != 200 {
				t.Errorf("another owner's PAT = %d %v, want 200", resp.StatusCode, body)
			}
		})
	}
}
