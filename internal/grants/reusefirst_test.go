package grants

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/oauth2"
)

// TestReuseJudgedBeforeOtherChecks (RFC 9700 §4.14.2, docs/security.md
// T-143): a rotated refresh token presented outside its retry window ends
// its family whatever else the request gets wrong. The pool check (and
// the scope check before it) ran before reuse detection, so a thief
// holding an old token could probe it with a wrong pool or a wider scope,
// learn from the distinct refusal that the family was alive, and leave it
// alive.
func TestReuseJudgedBeforeOtherChecks(t *testing.T) {
	for name, wrong := range map[string]url.Values{
		"a wrong pool":   {"identity_pool_id": {"ci"}},
		"a wider scope":  {"identity_pool_id": {"offline"}, "scope": {"read offline_access write"}},
		"an absent pool": {"identity_pool_id": {"no-such-pool"}},
	} {
		t.Run(name, func(t *testing.T) {
			o := newOfflineEnv(t)
			now := time.Now()
			o.grant.Refresh.Now = func() time.Time { return now }
			send := func(form url.Values) (*http.Response, map[string]any) {
				t.Helper()
				r, _ := http.NewRequest(http.MethodPost, o.srv.URL+PathConfluentToken, strings.NewReader(form.Encode()))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				r.SetBasicAuth(o.client.ID, o.secret)
				return do(t, r)
			}
			c := o.issuer.claims(now, "u1")
			c["aud"] = "offline"
			_, body := send(exchangeForm(o.issuer.mint(t, "RS256", c), "identity_pool_id", "offline", "scope", "read offline_access"))
			rt, _ := body["refresh_token"].(string)
			if rt == "" {
				t.Fatalf("exchange: %v", body)
			}
			resp, body := send(url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}, "identity_pool_id": {"offline"}})
			rt2, _ := body["refresh_token"].(string)
			if resp.StatusCode != http.StatusOK || rt2 == "" {
				t.Fatalf("first refresh: %d %v", resp.StatusCode, body)
			}
			now = now.Add(11 * time.Minute) // past the retry window: presenting rt again is a reuse
			replay := url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}}
			for k, v := range wrong {
				replay[k] = v
			}
			// The Confluent path answers {"errors":[{"code":…,"reason":…}]}.
			resp, body = send(replay)
			var code, reason any
			if errs, _ := body["errors"].([]any); len(errs) == 1 {
				e, _ := errs[0].(map[string]any)
				code, reason = e["code"], e["reason"]
			}
			if resp.StatusCode != http.StatusBadRequest || code != oauth2.ErrorInvalidGrant || reason != ReasonRefreshReused {
				t.Errorf("replay = %d %v, want 400 invalid_grant %s", resp.StatusCode, body, ReasonRefreshReused)
			}
			if resp, body := send(url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt2}, "identity_pool_id": {"offline"}}); resp.StatusCode == http.StatusOK {
				t.Errorf("after the replay the successor still refreshes (scope %v): the reuse did not end the family", body["scope"])
			}
		})
	}
}
