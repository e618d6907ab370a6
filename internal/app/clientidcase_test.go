package app

import (
	"net/url"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/oauth2"
)

// TestClientIDTakenAsSent: the OAuth endpoints take a client_id exactly as
// sts issued it (lower case), however a client names itself: an upper-case spelling of a client's UUID is a client sts
// does not know (401 invalid_client), never that client, though the
// admin APIs lower it (docs/api.md "IDs in UUID form"). The same request
// with the ID as issued is taken, so the case is the only difference.
func TestClientIDTakenAsSent(t *testing.T) {
	t.Parallel()
	e := newOAuthEnv(t)
	upper := strings.ToUpper(e.a.ID)
	if upper == e.a.ID {
		t.Fatal("the client's ID has no letter to raise")
	}
	cc := url.Values{"grant_type": {oauth2.GrantTypeClientCredentials}, "scope": {"read"}}
	introspect := url.Values{"token": {"not-a-token"}}
	for _, c := range []struct {
		name, path string
		form       url.Values
		ok         int // the status of the request naming the client as issued
	}{
		{"token endpoint", "/oauth2/token", cc, 200},
		{"introspection", "/oauth2/introspect", introspect, 200},
		{"revocation", "/oauth2/revoke", introspect, 200},
	} {
		if status, _, body := e.post(t, c.path, c.form, e.a.ID, e.secA); status != c.ok {
			t.Errorf("%s, Basic with the client_id as issued: %d %s, want %d", c.name, status, body, c.ok)
		}
		if status, _, body := e.post(t, c.path, c.form, upper, e.secA); status != 401 || !strings.Contains(body, "invalid_client") {
			t.Errorf("%s, Basic with the client_id in upper case: %d %s, want 401 invalid_client", c.name, status, body)
		}
	}
	// The body's client_id beside Basic credentials must be the same
	// string, not the same UUID.
	named := url.Values{"grant_type": {oauth2.GrantTypeClientCredentials}, "scope": {"read"}, "client_id": {upper}}
	if status, _, body := e.post(t, "/oauth2/token", named, e.a.ID, e.secA); status != 400 || !strings.Contains(body, "invalid_request") {
		t.Errorf("client_id in upper case beside Basic credentials as issued: %d %s, want 400 invalid_request", status, body)
	}
	// Nothing was issued to the upper-case spelling: the token a
	// client_credentials request got names the client as issued.
	if m := e.introspect(t, e.ccToken(t, e.a, e.secA)); m["client_id"] != e.a.ID {
		t.Errorf("client_id of a client_credentials token = %v, want %s", m["client_id"], e.a.ID)
	}
}
