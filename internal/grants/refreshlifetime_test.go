package grants

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/secret"
)

// TestRefreshHonoursExpiresIn: the refresh_token grant reads expires_in
// as every other grant does: a shorter lifetime is issued as asked, and
// one beyond the Confluent path's 900 s, the server's maximum or the
// family's end is refused, never clamped, before the refresh token is
// rotated (docs/security.md T-56; docs/api.md "Confluent STS dialect").
// It was ignored: expires_in=60 was answered with a token of 900 s (an
// hour at /oauth2/token), expires_in=901 at the Confluent path with 900.
func TestRefreshHonoursExpiresIn(t *testing.T) {
	o := newOfflineEnv(t)
	o.grant.Refresh.AccessLifetime = time.Hour
	send := func(path string, form url.Values) (*http.Response, map[string]any) { return o.postAt(t, path, form) }
	rt := o.confluentFamily(t) // it ends with its subject token, in an hour
	refresh := func(kv ...string) url.Values {
		v := url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	// notRotated: a refusal left the refresh token as it was.
	notRotated := func(name string) {
		t.Helper()
		stored, err := o.store.GetRefreshTokenByDigest(t.Context(), secret.Digest(o.pepper, rt))
		if err != nil || !stored.RotatedAt.IsZero() {
			t.Errorf("%s: the refresh token was rotated by a refusal (%v)", name, err)
		}
	}
	// issued checks a 200 whose token lives want, and takes its successor.
	issued := func(name string, resp *http.Response, body map[string]any, want time.Duration) {
		t.Helper()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %v", name, resp.StatusCode, body)
		}
		at := accessPayload(t, body["access_token"].(string))
		if n, _ := body["expires_in"].(float64); n != want.Seconds() || at.Expiry.Time().Sub(at.IssuedAt.Time()) != want {
			t.Errorf("%s: expires_in %v, token lives %v; want %v", name, body["expires_in"], at.Expiry.Time().Sub(at.IssuedAt.Time()), want)
		}
		rt, _ = body["refresh_token"].(string)
	}

	resp, body := send(PathConfluentToken, refresh("identity_pool_id", "offline", "expires_in", "901"))
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("Confluent refresh expires_in=901: %d %v, want 400", resp.StatusCode, body)
	}
	e0 := confluentErr(t, body)
	if src, _ := e0["source"].(map[string]any); e0["reason"] != ReasonLifetimeExceedsMax || src["parameter"] != "expires_in" {
		t.Errorf("Confluent refresh expires_in=901: %v, want %s naming expires_in", e0, ReasonLifetimeExceedsMax)
	}
	notRotated("Confluent expires_in=901")

	resp, body = send(PathConfluentToken, refresh("identity_pool_id", "offline", "expires_in", "60"))
	issued("Confluent refresh expires_in=60", resp, body, time.Minute)

	resp, body = send(PathToken, refresh("expires_in", "120"))
	issued("/oauth2/token refresh expires_in=120", resp, body, 2*time.Minute)

	// Beyond the family's end (the subject token's exp): refused.
	resp, body = send(PathToken, refresh("expires_in", "7200"))
	if resp.StatusCode != http.StatusBadRequest || body["reason"] != ReasonLifetimeExceedsSubject {
		t.Errorf("/oauth2/token refresh expires_in=7200: %d %v, want %s", resp.StatusCode, body, ReasonLifetimeExceedsSubject)
	}
	notRotated("/oauth2/token expires_in=7200")

	// Without expires_in, the default as before.
	resp, body = send(PathConfluentToken, refresh("identity_pool_id", "offline"))
	issued("Confluent refresh without expires_in", resp, body, ConfluentLifetime)
}
