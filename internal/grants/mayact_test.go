package grants

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/opensts/sts/internal/oauth2"
)

// TestMayActSurvivesReexchange: a subject token's may_act (RFC 8693 §4.4:
// who may act for its subject) binds the tokens exchanged from it too. A
// token exchanged from it alone, then re-exchanged with another actor,
// was a delegation the subject never allowed (docs/security.md T-167): the
// issued token carries may_act, re-exchange judges the actor by it, and a
// may_act that names no actor admits none there either.
func TestMayActSurvivesReexchange(t *testing.T) {
	e := newEnv(t, nil)
	now := time.Now()
	exchanged := func(t *testing.T, mayAct any) string {
		t.Helper()
		c := e.issuer.claims(now, "u1")
		c["may_act"] = mayAct
		resp, body := e.post(t, PathToken, exchangeForm(e.issuer.mint(t, "RS256", c), "pool", "ci"))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("exchange alone = %d %v %v", resp.StatusCode, body["error"], body["reason"])
		}
		return body["access_token"].(string)
	}
	reexchange := func(t *testing.T, own, actorSub string) (int, string) {
		t.Helper()
		v := exchangeForm(own, "actor_token", e.issuer.mint(t, "RS256", e.issuer.claims(now, actorSub)), "actor_token_type", oauth2.TokenTypeJWT)
		v.Set("subject_token_type", oauth2.TokenTypeAccessToken)
		resp, body := e.post(t, PathToken, v)
		reason, _ := body["reason"].(string)
		return resp.StatusCode, reason
	}

	t.Run("names the actor", func(t *testing.T) {
		own := exchanged(t, map[string]any{"sub": "bot", "iss": e.issuer.URL})
		if code, reason := reexchange(t, own, "intruder"); code != http.StatusBadRequest || reason != ReasonActorNotAllowed {
			t.Errorf("re-exchange with an actor may_act does not name = %d %s, want 400 %s", code, reason, ReasonActorNotAllowed)
		}
		if code, reason := reexchange(t, own, "bot"); code != http.StatusOK {
			t.Errorf("re-exchange with the actor may_act names = %d %s, want 200", code, reason)
		}
	})
	t.Run("without iss, under the subject token's issuer", func(t *testing.T) {
		// Carried without iss it would admit that sub of any issuer in
		// every later re-exchange.
		own := exchanged(t, map[string]any{"sub": "bot"})
		if m := accessPayload(t, own).MayAct; m == nil || m.Subject != "bot" || m.Issuer != e.issuer.URL {
			t.Errorf("may_act = %+v, want sub bot under %s", m, e.issuer.URL)
		}
		if code, reason := reexchange(t, own, "bot"); code != http.StatusOK {
			t.Errorf("re-exchange with the actor may_act names = %d %s, want 200", code, reason)
		}
	})
	t.Run("names no actor", func(t *testing.T) {
		own := exchanged(t, "bot") // not an object: nobody may act
		if code, reason := reexchange(t, own, "bot"); code != http.StatusBadRequest || reason != ReasonActorNotAllowed {
			t.Errorf("re-exchange under a malformed may_act = %d %s, want 400 %s", code, reason, ReasonActorNotAllowed)
		}
	})
	t.Run("none", func(t *testing.T) {
		own := exchanged(t, nil)
		if code, reason := reexchange(t, own, "anyone"); code != http.StatusOK {
			t.Errorf("re-exchange without may_act = %d %s, want 200", code, reason)
		}
	})
}

// TestMayActSurvivesRefresh: the may_act a delegation's refresh family was
// begun with is carried by every token it mints (docs/security.md T-167).
func TestMayActSurvivesRefresh(t *testing.T) {
	o := newOfflineEnv(t)
	e := o.env
	sc := e.issuer.claims(time.Now(), "u1")
	sc["aud"] = "offline"
	sc["may_act"] = map[string]any{"sub": "bot"}
	resp, body := o.post(exchangeForm(e.issuer.mint(t, "RS256", sc), "pool", "offline", "scope", "read offline_access"), true)
	rt, _ := body["refresh_token"].(string)
	if resp.StatusCode != http.StatusOK || rt == "" {
		t.Fatalf("exchange = %d %v", resp.StatusCode, body)
	}
	resp, body = o.post(url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}}, true)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("refresh = %d %v", resp.StatusCode, body)
	}
	if m := accessPayload(t, body["access_token"].(string)).MayAct; m == nil || m.Subject != "bot" || m.Issuer != e.issuer.URL {
		t.Errorf("refreshed may_act = %+v, want sub bot under %s", m, e.issuer.URL)
	}
}
