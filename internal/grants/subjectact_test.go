package grants

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/tokens"
)

// TestExternalSubjectKeepsItsDelegation: a subject token of a pool's
// provider that is itself a delegation (its act claim: someone acting for
// its sub) is exchanged for a token that still names them in act, nested
// under the actor of this exchange when there is one, never for a token
// that reads as the subject's own (docs/security.md T-166). An actor
// without iss is named under the subject token's issuer, a client_id of
// another issuer is not carried, a chain of exactly the cap is carried,
// and a malformed or too deep act, or one naming an actor under our own
// issuer (which we never verified), is refused.
func TestExternalSubjectKeepsItsDelegation(t *testing.T) {
	e := newEnv(t, nil)
	now := time.Now()
	const other = "https://other.example"
	subject := func(act any) string {
		c := e.issuer.claims(now, "u1")
		c["act"] = act
		return e.issuer.mint(t, "RS256", c)
	}
	issued := func(t *testing.T, form map[string][]string) *tokens.AccessClaims {
		t.Helper()
		resp, body := e.post(t, PathToken, form)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("exchange = %d %v %v", resp.StatusCode, body["error"], body["reason"])
		}
		c, err := e.verify.VerifyAccessTokenAnyAudience(t.Context(), body["access_token"].(string))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	chain := map[string]any{"iss": other, "sub": "svc", "client_id": "c-elsewhere", "act": map[string]any{"sub": "deeper"}}
	want := &tokens.Actor{Issuer: other, Subject: "svc", Act: &tokens.Actor{Issuer: e.issuer.URL, Subject: "deeper"}}

	t.Run("alone", func(t *testing.T) {
		if got := issued(t, exchangeForm(subject(chain), "pool", "ci")).Act; !reflect.DeepEqual(got, want) {
			t.Errorf("act = %+v, want %+v", got, want)
		}
	})
	t.Run("under this exchange's actor", func(t *testing.T) {
		actor := e.issuer.mint(t, "RS256", e.issuer.claims(now, "bot"))
		got := issued(t, exchangeForm(subject(chain), "pool", "ci", "actor_token", actor, "actor_token_type", oauth2.TokenTypeJWT)).Act
		if w := (&tokens.Actor{Issuer: e.issuer.URL, Subject: "bot", Act: want}); !reflect.DeepEqual(got, w) {
			t.Errorf("act = %+v, want %+v", got, w)
		}
	})
	t.Run("without act", func(t *testing.T) {
		if got := issued(t, exchangeForm(e.issuer.mint(t, "RS256", e.issuer.claims(now, "u1")), "pool", "ci")).Act; got != nil {
			t.Errorf("act = %+v, want none", got)
		}
	})

	full := map[string]any{"sub": "a1"}
	for i := 2; i <= DefaultMaxDelegationDepth; i++ {
		full = map[string]any{"sub": "a" + string(rune('0'+i)), "act": full}
	}
	t.Run("exactly the cap", func(t *testing.T) {
		n := 0
		for a := issued(t, exchangeForm(subject(full), "pool", "ci")).Act; a != nil; a = a.Act {
			n++
		}
		if n != DefaultMaxDelegationDepth {
			t.Errorf("carried chain of %d actors, want %d", n, DefaultMaxDelegationDepth)
		}
	})
	t.Run("exactly the cap under an actor", func(t *testing.T) {
		// The subject token's chain leaves no room: its fault, not the
		// actor token's.
		actor := e.issuer.mint(t, "RS256", e.issuer.claims(now, "bot"))
		resp, body := e.post(t, PathToken, exchangeForm(subject(full), "pool", "ci", "actor_token", actor, "actor_token_type", oauth2.TokenTypeJWT))
		if resp.StatusCode != http.StatusBadRequest || body["reason"] != ReasonDelegationTooDeep || body["error_description"] != descSubject {
			t.Errorf("exchange = %d %v %v %q, want 400 %s %q", resp.StatusCode, body["error"], body["reason"], body["error_description"], ReasonDelegationTooDeep, descSubject)
		}
	})

	deep := map[string]any{"sub": "a0", "act": full}
	for _, tc := range []struct {
		name   string
		act    any
		reason string
	}{
		{"not an object", "svc", ReasonSubjectActInvalid},
		{"no sub", map[string]any{"iss": other}, ReasonSubjectActInvalid},
		{"empty sub", map[string]any{"sub": ""}, ReasonSubjectActInvalid},
		{"sub not a string", map[string]any{"sub": 7}, ReasonSubjectActInvalid},
		{"iss not a string", map[string]any{"sub": "svc", "iss": true}, ReasonSubjectActInvalid},
		{"nested act malformed", map[string]any{"sub": "svc", "act": []any{"x"}}, ReasonSubjectActInvalid},
		{"deeper than the cap", deep, ReasonDelegationTooDeep},
		// An actor of ours we never verified: read by a resource server
		// or an ID token as one of our principals acting.
		{"names our issuer", map[string]any{"iss": stsIssuer, "sub": "admin-principal"}, ReasonSubjectActInvalid},
		{"nested names our issuer", map[string]any{"sub": "svc", "act": map[string]any{"iss": stsIssuer, "sub": "admin-principal"}}, ReasonSubjectActInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, reason := e.exchangeStatus(t, subject(tc.act), "pool", "ci")
			if code != http.StatusBadRequest || reason != tc.reason {
				t.Errorf("exchange = %d %s, want 400 %s", code, reason, tc.reason)
			}
		})
	}
}

// TestSubjectActOurIssuerSpelledOtherwise: an act entry under our issuer
// spelled otherwise (a trailing slash, another case of scheme or host, the
// default port) is refused as our issuer spelled byte for byte is: a
// relying party that normalises issuers reads it as one of our principals
// acting, which no other issuer can vouch for (docs/security.md T-166).
// An entry without iss is under the subject token's issuer, so the same
// holds when that issuer is ours spelled otherwise (a provider the
// operator's CLI created past the API's check, docs/security.md A-56).
func TestSubjectActOurIssuerSpelledOtherwise(t *testing.T) {
	e := newEnv(t, nil)
	now := time.Now()
	for _, iss := range []string{stsIssuer + "/", "HTTPS://STS.EXAMPLE", "https://STS.example", "https://sts.example:443", "https://sts.example:443/"} {
		t.Run(iss, func(t *testing.T) {
			c := e.issuer.claims(now, "u1")
			c["act"] = map[string]any{"sub": "svc", "act": map[string]any{"iss": iss, "sub": "admin-principal"}}
			if code, reason := e.exchangeStatus(t, e.issuer.mint(t, "RS256", c), "pool", "ci"); code != http.StatusBadRequest || reason != ReasonSubjectActInvalid {
				t.Errorf("act under %q: exchange = %d %s, want 400 %s", iss, code, reason, ReasonSubjectActInvalid)
			}
		})
	}
	t.Run("another issuer on our host", func(t *testing.T) {
		// A port of its own is another issuer: carried.
		c := e.issuer.claims(now, "u1")
		c["act"] = map[string]any{"iss": "https://sts.example:8443", "sub": "svc"}
		if code, reason := e.exchangeStatus(t, e.issuer.mint(t, "RS256", c), "pool", "ci"); code != http.StatusOK {
			t.Errorf("act under https://sts.example:8443: exchange = %d %s, want 200", code, reason)
		}
	})
	t.Run("without iss, under a subject issuer that is ours", func(t *testing.T) {
		// Our issuer is the test issuer's URL spelled otherwise: its
		// tokens' act entries without iss are under it.
		o := newEnv(t, nil)
		o.grant.Issuer = &tokens.Issuer{Signer: o.grant.Issuer.Signer, IssuerURL: "HTTP://" + strings.TrimPrefix(o.issuer.URL, "http://") + "/"}
		c := o.issuer.claims(now, "u1")
		c["act"] = map[string]any{"sub": "admin-principal"}
		if code, reason := o.exchangeStatus(t, o.issuer.mint(t, "RS256", c), "pool", "ci"); code != http.StatusBadRequest || reason != ReasonSubjectActInvalid {
			t.Errorf("act without iss under %s, ours %s: exchange = %d %s, want 400 %s", o.issuer.URL, o.grant.Issuer.IssuerURL, code, reason, ReasonSubjectActInvalid)
		}
		// With ours of another host, the same entry is carried.
		o.grant.Issuer = &tokens.Issuer{Signer: o.grant.Issuer.Signer, IssuerURL: stsIssuer}
		if code, reason := o.exchangeStatus(t, o.issuer.mint(t, "RS256", c), "pool", "ci"); code != http.StatusOK {
			t.Errorf("act without iss under %s, ours %s: exchange = %d %s, want 200", o.issuer.URL, stsIssuer, code, reason)
		}
	})
}

// TestSubjectActIssuerNotPlain: an act entry's iss that is not in plain
// form (federation.PlainIssuer) is refused: each of these is read as
// "https://sts.example/" by the WHATWG URL parser (new URL(iss).href in
// Node and browsers) or by DNS, so a relying party that normalises
// issuers would read the actor as one of ours (docs/security.md T-166).
// Plain issuers of others are still carried.
func TestSubjectActIssuerNotPlain(t *testing.T) {
	e := newEnv(t, nil)
	now := time.Now()
	for _, iss := range []string{
		"https://sts.example:0443", "https://%73ts.example", "https://ｓｔｓ.example", "https://sts.example/a/..",
		"https://sts.example\\", " https://sts.example", "https://sts%2Eexample", "https://sts.example.",
		"https://admin@sts.example", "https:sts.example", "https://sts.example/%2F",
	} {
		t.Run(iss, func(t *testing.T) {
			c := e.issuer.claims(now, "u1")
			c["act"] = map[string]any{"sub": "svc", "iss": "https://ci.example", "act": map[string]any{"iss": iss, "sub": "admin-principal"}}
			if code, reason := e.exchangeStatus(t, e.issuer.mint(t, "RS256", c), "pool", "ci"); code != http.StatusBadRequest || reason != ReasonSubjectActInvalid {
				t.Errorf("act under %q: exchange = %d %s, want 400 %s", iss, code, reason, ReasonSubjectActInvalid)
			}
		})
	}
	c := e.issuer.claims(now, "u1")
	c["act"] = map[string]any{"sub": "svc", "iss": "https://ci.example/tenant/", "act": map[string]any{"iss": "urn:upstream", "sub": "bot"}}
	if code, reason := e.exchangeStatus(t, e.issuer.mint(t, "RS256", c), "pool", "ci"); code != http.StatusOK {
		t.Errorf("act under plain issuers of others: exchange = %d %s, want 200", code, reason)
	}
}
