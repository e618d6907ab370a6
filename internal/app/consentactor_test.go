package app_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/opensts/sts/internal/app"
	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/oauth2"
)

// TestConsentWithdrawnEndsDelegationsOfThePerson: a service's client
// obtains, by token exchange, a token for its service account with the
// person as actor (act), the actor token being client A's token for the
// person from the browser flow. Withdrawing the person's consent to A ends
// the delegated token as it ends A's own (docs/security.md A-69), and
// leaves the service's own token alone. Before, only the subject's
// consents were read, and the delegation stayed active until it expired.
// (Not parallel: it bounds how soon the revocation view catches up.)
func TestConsentWithdrawnEndsDelegationsOfThePerson(t *testing.T) {
	e := newCodeEnv(t)
	ctx := t.Context()
	person := e.tokenFor(t, e.user, "openid")
	id, sec := e.serviceClient(t, "openid")
	introspect := func(tok string) map[string]any {
		t.Helper()
		return e.introspected(t, id, sec, tok)
	}
	st, m := e.token(t, url.Values{"grant_type": {oauth2.GrantTypeClientCredentials}, "scope": {"openid"}}, id, sec)
	own, _ := m["access_token"].(string)
	if st != http.StatusOK || own == "" {
		t.Fatalf("client_credentials = %d %v", st, m)
	}
	st, m = e.token(t, url.Values{"grant_type": {oauth2.GrantTypeTokenExchange},
		"subject_token": {own}, "subject_token_type": {oauth2.TokenTypeAccessToken},
		"actor_token": {person.AccessToken}, "actor_token_type": {oauth2.TokenTypeAccessToken}}, id, sec)
	delegated, _ := m["access_token"].(string)
	if st != http.StatusOK || delegated == "" {
		t.Fatalf("delegation with the person as actor = %d %v", st, m)
	}
	if m := introspect(delegated); m["active"] != true {
		t.Fatalf("the delegated token before the withdrawal introspects %v, want active", m)
	} else if act, _ := m["act"].(map[string]any); act["sub"] != e.user.ID {
		t.Fatalf("the delegated token's act = %v, want the person %s", m["act"], e.user.ID)
	}

	// e.store is another process's view (the CLI's): the server sees the
	// row within 2 s on SQLite (docs/design.md#revocations-on-one-node).
	if err := app.NewConsents(e.store, 0).Revoke(ctx, audit.Caller{}, e.user.ID, e.conf.ID); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, pm := e.introspect(t, person.AccessToken) // as A
		m := introspect(delegated)
		if pm["active"] == false && m["active"] == false {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("3 s after the consent to A was withdrawn: A's token for the person introspects active=%v, "+
				"the delegation acting as the person %v; want both inactive", pm["active"], m)
		}
	}
	if m := introspect(own); m["active"] != true {
		t.Errorf("the service's own token after the withdrawal introspects %v, want active", m)
	}
}

// TestConsentWithdrawnEndsSecondHopDelegations: the service's client
// delegates twice: first with the person's token (client A's) as
// actor_token, then with that first delegation as actor_token. The second
// token's act names the service (the first delegation's subject), and the
// person only in src_sub; withdrawing the person's consent to A ends it
// with the first (docs/security.md A-69). Before, only the actors in act
// were read, and the second hop stayed active until it expired.
// (Not parallel: it bounds how soon the revocation view catches up.)
func TestConsentWithdrawnEndsSecondHopDelegations(t *testing.T) {
	e := newCodeEnv(t)
	person := e.tokenFor(t, e.user, "openid")
	id, sec := e.serviceClient(t, "openid")
	introspect := func(tok string) map[string]any {
		t.Helper()
		return e.introspected(t, id, sec, tok)
	}
	st, m := e.token(t, url.Values{"grant_type": {oauth2.GrantTypeClientCredentials}, "scope": {"openid"}}, id, sec)
	own, _ := m["access_token"].(string)
	if st != http.StatusOK || own == "" {
		t.Fatalf("client_credentials = %d %v", st, m)
	}
	delegate := func(actor string) string {
		t.Helper()
		st, m := e.token(t, url.Values{"grant_type": {oauth2.GrantTypeTokenExchange},
			"subject_token": {own}, "subject_token_type": {oauth2.TokenTypeAccessToken},
			"actor_token": {actor}, "actor_token_type": {oauth2.TokenTypeAccessToken}}, id, sec)
		tok, _ := m["access_token"].(string)
		if st != http.StatusOK || tok == "" {
			t.Fatalf("delegation = %d %v", st, m)
		}
		return tok
	}
	first := delegate(person.AccessToken) // act: the person
	second := delegate(first)             // act: the service; the person in src_sub
	if m := introspect(second); m["active"] != true {
		t.Fatalf("the second hop before the withdrawal introspects %v, want active", m)
	} else if act, _ := m["act"].(map[string]any); act["sub"] == e.user.ID {
		t.Fatalf("the second hop's act = %v: names the person, so it would not test src_sub", act)
	}

	// e.store is another process's view (the CLI's): the server sees the
	// row within 2 s on SQLite (docs/design.md#revocations-on-one-node).
	if err := app.NewConsents(e.store, 0).Revoke(t.Context(), audit.Caller{}, e.user.ID, e.conf.ID); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		m1, m2 := introspect(first), introspect(second)
		if m1["active"] == false && m2["active"] == false {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("3 s after the consent to A was withdrawn: the first delegation introspects active=%v, "+
				"the second hop (actor token: the first) %v; want both inactive", m1["active"], m2)
		}
	}
	if m := introspect(own); m["active"] != true {
		t.Errorf("the service's own token after the withdrawal introspects %v, want active", m)
	}
}
