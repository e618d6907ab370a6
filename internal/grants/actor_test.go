package grants

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/oauth2"
)

// TestActorTokenChecks: an actor token passes the checks of a subject
// token. One of a one-time-use provider is spent (a second use, as actor
// or as subject, is refused), and one of a pool that needs client
// authentication is refused without a client.
func TestActorTokenChecks(t *testing.T) {
	t.Parallel()
	e := oneTimeEnv(t, nil)
	now := time.Now()
	subject := func() string { return e.issuer.mint(t, "RS256", e.issuer.claims(now, "u1")) } // pool ci, anonymous
	actor := e.onceToken(t, "actor-jti-1")
	withActor := func(act string) (int, string) {
		return e.exchangeStatus(t, subject(), "pool", "ci", "actor_token", act, "actor_token_type", oauth2.TokenTypeJWT)
	}

	if code, reason := withActor(actor); code != http.StatusOK {
		t.Fatalf("first use of a one-time actor token = %d %s, want 200", code, reason)
	}
	if code, reason := withActor(actor); code != http.StatusBadRequest || reason != ReasonSubjectReplayed {
		t.Errorf("second use of a one-time actor token = %d %s, want 400 %s", code, reason, ReasonSubjectReplayed)
	}
	if code, reason := e.exchangeStatus(t, actor); code != http.StatusBadRequest || reason != ReasonSubjectReplayed {
		t.Errorf("a spent actor token as subject = %d %s, want 400 %s", code, reason, ReasonSubjectReplayed)
	}
	// A refused exchange spends nothing: an over-scoped request with a
	// fresh one-time actor, then the same actor in a good request.
	fresh := e.onceToken(t, "actor-jti-2")
	if code, _ := e.exchangeStatus(t, subject(), "pool", "ci", "scope", "admin", "actor_token", fresh, "actor_token_type", oauth2.TokenTypeJWT); code != http.StatusBadRequest {
		t.Fatalf("over-scoped exchange = %d, want 400", code)
	}
	if code, reason := withActor(fresh); code != http.StatusOK {
		t.Errorf("one-time actor after a refused exchange = %d %s, want 200 (nothing spent)", code, reason)
	}

	// Pool "locked" needs client authentication: its tokens do not act
	// for anyone in an anonymous request.
	c := e.issuer.claims(now, "bot")
	c["aud"] = "locked"
	code, reason := withActor(e.issuer.mint(t, "RS256", c))
	if code != http.StatusUnauthorized && code != http.StatusBadRequest || reason != ReasonClientAuthRequired {
		t.Errorf("anonymous actor of a client-only pool = %d %s, want %s", code, reason, ReasonClientAuthRequired)
	}
}

// TestAuditActorNamespaced: the audit actor of an exchange is the external
// identity under its issuer, so a token whose sub reads like one of our
// principals is never recorded as that principal.
func TestAuditActorNamespaced(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "principal:victim"))
	if resp, body := e.post(t, PathToken, exchangeForm(tok, "pool", "ci")); resp.StatusCode != http.StatusOK {
		t.Fatalf("exchange = %d %v", resp.StatusCode, body)
	}
	evs := e.audit.all()
	if len(evs) != 1 {
		t.Fatalf("audit events = %d, want 1", len(evs))
	}
	want := "external:" + e.issuer.URL + "#principal:victim"
	if got := evs[0].Actor; got != want || strings.HasPrefix(got, "principal:") {
		t.Errorf("audit actor = %q, want %q", got, want)
	}
}

// TestActorBoundsLifetime: a delegated token never outlives its actor
// token, as it never outlives its subject token (docs/design.md#lifetimes,
// docs/security.md T-56): the default lifetime is cut to the actor's
// remaining life, and an expires_in beyond it is refused, not clamped.
func TestActorBoundsLifetime(t *testing.T) {
	e := newEnv(t, nil)
	now := time.Now()
	subject := e.issuer.mint(t, "RS256", e.issuer.claims(now, "u1")) // an hour left
	ac := e.issuer.claims(now, "bot")
	ac["exp"] = now.Add(2 * time.Minute).Unix()
	actor := e.issuer.mint(t, "RS256", ac)

	resp, body := e.post(t, PathToken, exchangeForm(subject, "pool", "ci", "actor_token", actor, "actor_token_type", oauth2.TokenTypeJWT))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("delegation = %d %v", resp.StatusCode, body)
	}
	if exp, _ := body["expires_in"].(float64); exp <= 0 || exp > 120 {
		t.Errorf("delegated token expires_in = %v, want at most the actor's 120 s", body["expires_in"])
	}
	code, reason := e.exchangeStatus(t, subject, "pool", "ci", "actor_token", actor, "actor_token_type", oauth2.TokenTypeJWT, "expires_in", "600")
	if code != http.StatusBadRequest || reason != ReasonLifetimeExceedsActor {
		t.Errorf("expires_in beyond the actor's exp = %d %s, want 400 %s", code, reason, ReasonLifetimeExceedsActor)
	}
	// Without an actor the subject alone bounds it.
	if code, reason := e.exchangeStatus(t, subject, "pool", "ci", "expires_in", "600"); code != http.StatusOK {
		t.Errorf("expires_in 600 without an actor = %d %s, want 200", code, reason)
	}
}
