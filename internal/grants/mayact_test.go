package grants

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
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

// TestBareMayActOfOurOwnTokenKeepsItsIssuer: a token of ours minted
// before may_act was carried with its issuer holds {"sub":"bot"} alone
// (and so does every token a refresh family begun then mints, for its
// 30 days). Judged as it reads, it admitted an actor "bot" of any issuer
// the organization trusts (docs/security.md T-167): a re-exchange with an
// actor token of another issuer whose sub is "bot" was a delegation the
// subject never allowed. Its sub is read under the issuer of the token it
// was exchanged from (src), whose may_act it is; without a src it admits
// none.
func TestBareMayActOfOurOwnTokenKeepsItsIssuer(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	elsewhere := newTestIssuer(t) // another issuer the organization trusts
	if err := e.store.CreatePool(ctx, storage.Pool{ID: "elsewhere", OrgID: "acme", Condition: "true", Scopes: []string{"read"}, AllowUnauthenticated: true}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateProvider(ctx, storage.Provider{PoolID: "elsewhere", ID: "p", Issuer: elsewhere.URL, Audiences: []string{"elsewhere"}}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	sc := e.issuer.claims(now, "u1")
	sc["may_act"] = map[string]any{"sub": "bot"}
	resp, body := e.post(t, PathToken, exchangeForm(e.issuer.mint(t, "RS256", sc), "pool", "ci"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("exchange = %d %v %v", resp.StatusCode, body["error"], body["reason"])
	}
	// old is the same token as minted before the change: may_act bare.
	remint := func(edit func(c *tokens.AccessClaims)) string {
		t.Helper()
		c := accessPayload(t, body["access_token"].(string))
		c.ID = ""
		edit(&c)
		tok, _, err := e.grant.Issuer.MintAccessToken(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	old := remint(func(c *tokens.AccessClaims) { c.MayAct.Issuer = "" })
	if m := accessPayload(t, old).MayAct; m == nil || m.Subject != "bot" || m.Issuer != "" {
		t.Fatalf("old token's may_act = %+v, want bare sub bot", m)
	}
	actorOf := func(iss *testIssuer, aud string) string {
		c := iss.claims(now, "bot")
		c["aud"] = aud
		return iss.mint(t, "RS256", c)
	}
	reexchange := func(own, actor string) (int, string) {
		t.Helper()
		v := exchangeForm(own, "actor_token", actor, "actor_token_type", oauth2.TokenTypeJWT)
		v.Set("subject_token_type", oauth2.TokenTypeAccessToken)
		resp, body := e.post(t, PathToken, v)
		reason, _ := body["reason"].(string)
		return resp.StatusCode, reason
	}
	if code, reason := reexchange(old, actorOf(elsewhere, "elsewhere")); code != http.StatusBadRequest || reason != ReasonActorNotAllowed {
		t.Errorf("old token re-exchanged with bot of another issuer = %d %s, want 400 %s", code, reason, ReasonActorNotAllowed)
	}
	if code, reason := reexchange(old, actorOf(e.issuer, "sts")); code != http.StatusOK {
		t.Errorf("old token re-exchanged with bot of the subject token's issuer = %d %s, want 200", code, reason)
	}
	// Without src there is no issuer to read it under: it admits none.
	nosrc := remint(func(c *tokens.AccessClaims) { c.MayAct.Issuer, c.Src = "", nil })
	if code, reason := reexchange(nosrc, actorOf(e.issuer, "sts")); code != http.StatusBadRequest || reason != ReasonActorNotAllowed {
		t.Errorf("bare may_act without src re-exchanged = %d %s, want 400 %s", code, reason, ReasonActorNotAllowed)
	}
}

// TestBareMayActOfAnOlderFamilyGetsItsIssuer: a refresh family begun
// before may_act was carried with its issuer holds a bare may_act in its
// template, and minted it into every access token for its 30 days: a
// delegation judged elsewhere by that token (another STS, a resource
// server reading may_act) admitted that sub of any issuer. Its refreshes
// now carry it under the issuer of the token the family was exchanged
// from (src), as a family begun today does (docs/security.md T-167).
func TestBareMayActOfAnOlderFamilyGetsItsIssuer(t *testing.T) {
	o := newOfflineEnv(t)
	e := o.env
	ctx := t.Context()
	sc := e.issuer.claims(time.Now(), "u1")
	sc["aud"] = "offline"
	sc["may_act"] = map[string]any{"sub": "bot"}
	resp, body := o.post(exchangeForm(e.issuer.mint(t, "RS256", sc), "pool", "offline", "scope", "read offline_access"), true)
	rt, _ := body["refresh_token"].(string)
	if resp.StatusCode != http.StatusOK || rt == "" {
		t.Fatalf("exchange = %d %v", resp.StatusCode, body)
	}
	// The family as begun before the change: its template's may_act bare.
	stored, err := e.store.GetRefreshTokenByDigest(ctx, secret.Digest(o.pepper, rt))
	if err != nil {
		t.Fatal(err)
	}
	err = e.store.UpdateRefreshToken(ctx, stored.ID, func(old storage.RefreshToken) (storage.RefreshToken, error) {
		var tmpl map[string]any
		if err := json.Unmarshal(old.Claims, &tmpl); err != nil {
			return old, err
		}
		m, ok := tmpl["may_act"].(map[string]any)
		if !ok || m["iss"] != e.issuer.URL {
			return old, fmt.Errorf("stored template's may_act = %v, want one under %s", tmpl["may_act"], e.issuer.URL)
		}
		delete(m, "iss")
		b, err := json.Marshal(tmpl)
		old.Claims = b
		return old, err
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, body = o.post(url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}}, true)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("refresh = %d %v", resp.StatusCode, body)
	}
	if m := accessPayload(t, body["access_token"].(string)).MayAct; m == nil || m.Subject != "bot" || m.Issuer != e.issuer.URL {
		t.Errorf("refreshed may_act of an older family = %+v, want sub bot under %s", m, e.issuer.URL)
	}
}
