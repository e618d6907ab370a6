package grants

import (
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// TestAuthorizationCodeReplayEndsLongTokens (docs/security.md T-194): a
// replayed code ends the access token its first redemption issued for as
// long as that token lives, however long keys.max_token_lifetime lets it
// live. The row that ends it was kept 13 h from the first redemption
// (12 h, the default maximum, and an hour), so under a configured maximum
// of 48 h a token redeemed for 47 h was revoked by the replay, and live
// again for its last 34 h once garbage collection took the row. On SQLite
// and PostgreSQL, through the real token endpoint.
func TestAuthorizationCodeReplayEndsLongTokens(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) { testAuthorizationCodeReplayEndsLongTokens(t, backendStore(t, backend)) })
	}
}

func testAuthorizationCodeReplayEndsLongTokens(t *testing.T, store storage.Store) {
	const maxLife = 48 * time.Hour
	m := newMatrixEnvOn(t, store)
	ctx := t.Context()
	// As the server wires them: the grant's maximum and the refresh
	// grant's row keep are keys.max_token_lifetime's (and its leeway).
	m.ref.RevocationKeep = maxLife + time.Minute
	for _, g := range m.handler.Grants {
		if ac, ok := g.(*AuthorizationCode); ok {
			ac.MaxLifetime = maxLife
		}
	}
	var offset time.Duration
	var clockMu sync.Mutex
	clock := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return time.Now().Add(offset) }
	verifier := *m.verify
	verifier.Revocations, verifier.Now, verifier.MaxLifetime = tokens.StoreRevocations{Store: m.store}, clock, maxLife

	// A client without the refresh_token grant: no family, whose grant:
	// row would end the token too, only the row of the token's jti.
	c, sec := m.client(t, storage.Client{OrgID: "acme", GrantTypes: []string{oauth2.GrantTypeAuthorizationCode},
		Scopes: []string{"read"}, Audiences: []string{stsIssuer}})
	code := m.authCode(t, c, "ada", "read")
	long := maxLife - time.Hour
	code.Set("expires_in", strconv.Itoa(int(long/time.Second)))
	status, body := m.postAs(t, c.ID, sec, code)
	access, _ := body["access_token"].(string)
	if status != http.StatusOK || access == "" || body["refresh_token"] != nil {
		t.Fatalf("first redemption = %d %v %v", status, body["error"], body["reason"])
	}
	if status, body := m.postAs(t, c.ID, sec, code); status != http.StatusBadRequest || body["reason"] != ReasonCodeReused {
		t.Fatalf("second presentation = %d %v, want 400 %s", status, body["reason"], ReasonCodeReused)
	}
	if _, err := verifier.VerifyAccessToken(ctx, access, stsIssuer); tokens.Reason(err) != "token_revoked" {
		t.Fatalf("the first redemption's access token right after the replay = %v, want token_revoked", err)
	}
	// An hour before the token expires, every row expired by then
	// collected: still ended.
	late := time.Now().Add(long - time.Hour)
	if _, err := m.store.GarbageCollect(ctx, late); err != nil {
		t.Fatal(err)
	}
	clockMu.Lock()
	offset = time.Until(late)
	clockMu.Unlock()
	if _, err := verifier.VerifyAccessToken(ctx, access, stsIssuer); tokens.Reason(err) != "token_revoked" {
		t.Errorf("the replayed code's %s access token, an hour before it expires with expired rows collected = %v, want token_revoked", long, err)
	}
}
