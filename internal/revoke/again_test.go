package revoke

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
	"github.com/opensts/sts/internal/tokens"
)

// againEnv is a revocation endpoint over a SQLite store on loopback with
// a public client "spa", shared by the T-187 tests.
type againEnv struct {
	st     storage.Store
	srv    *httptest.Server
	issuer *tokens.Issuer
	pepper []byte
}

func newAgainEnv(t *testing.T) *againEnv {
	t.Helper()
	const iss = "https://sts.example"
	st := sqlitetest.NewStore(t)
	keys, err := signer.NewStatic(signer.ES256)
	if err != nil {
		t.Fatal(err)
	}
	pepper := []byte(strings.Repeat("p", 32))
	h := &Handler{Clients: &clientauth.Authenticator{Store: st, Pepper: pepper}, Tokens: &tokens.Verifier{Keys: keys, Issuer: iss}, Store: st, Pepper: pepper}
	mux := http.NewServeMux()
	h.Mount(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	if err := st.CreateClient(t.Context(), storage.Client{ID: "spa", OrgID: "acme", PrincipalID: "sa", AuthMethod: oauth2.AuthMethodNone}); err != nil {
		t.Fatal(err)
	}
	return &againEnv{st: st, srv: srv, issuer: &tokens.Issuer{Signer: keys, IssuerURL: iss}, pepper: pepper}
}

// mint is an access token of clientID (none: client-less) expiring in an hour.
func (e *againEnv) mint(t *testing.T, clientID string) (string, tokens.AccessClaims) {
	t.Helper()
	now := time.Now()
	tok, c, err := e.issuer.MintAccessToken(t.Context(), tokens.AccessClaims{Subject: "u1", OrgID: "acme", Principal: "user", ClientID: clientID,
		Audience: tokens.Audience{e.issuer.IssuerURL}, IssuedAt: tokens.NewNumericDate(now), Expiry: tokens.NewNumericDate(now.Add(time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	return tok, c
}

// events counts the audit events of action.
func (e *againEnv) events(t *testing.T, action string) int {
	t.Helper()
	evs, err := e.st.ListAudit(t.Context(), storage.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ev := range evs {
		if ev.Action == action {
			n++
		}
	}
	return n
}

// revoke posts form n times, each answered 200.
func (e *againEnv) revoke(t *testing.T, form url.Values, n int) {
	t.Helper()
	for i := range n {
		resp, err := http.Post(e.srv.URL+Path, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("revocation %d: %d, want 200", i+1, resp.StatusCode)
		}
	}
}

// TestRevokedAgainWritesNothing: an access token already revoked is
// answered 200 again and nothing more is written, so that one token
// presented over and over, by its holder without credentials or by a
// public client named by client_id alone (neither rate-limited), costs
// storage one revocation row and the audit trail one event, not one of
// each per request (docs/security.md T-187). A row that stands shorter
// than the token (leeway included) is extended, with its event.
func TestRevokedAgainWritesNothing(t *testing.T) {
	e := newAgainEnv(t)
	for _, tc := range []struct{ name, tokenClient, clientID string }{
		{"client-less token by its holder", "sts-api", ""},
		{"public client's token by client_id alone", "spa", "spa"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, _ := e.mint(t, tc.tokenClient)
			before := e.events(t, ActionTokenRevoke)
			form := url.Values{"token": {tok}}
			if tc.clientID != "" {
				form.Set("client_id", tc.clientID)
			}
			e.revoke(t, form, 5)
			if got := e.events(t, ActionTokenRevoke) - before; got != 1 {
				t.Errorf("%d token.revoke events for one token revoked 5 times, want 1", got)
			}
		})
	}
	t.Run("a shorter row is extended", func(t *testing.T) {
		ctx := t.Context()
		tok, c := e.mint(t, "spa")
		id, now := tokens.RevocationIDJTI(c.ID), storage.Now(time.Now())
		if err := e.st.PutRevocation(ctx, storage.Revocation{ID: id, Reason: "test", CreatedAt: now, ExpiresAt: now.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		before := e.events(t, ActionTokenRevoke)
		e.revoke(t, url.Values{"token": {tok}, "client_id": {"spa"}}, 1)
		r, err := e.st.GetRevocation(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if want := c.Expiry.Time().Add(tokens.DefaultLeeway); r.ExpiresAt.Before(want) {
			t.Errorf("row stands until %v, want at least %v (the token's expiry and leeway)", r.ExpiresAt, want)
		}
		if got := e.events(t, ActionTokenRevoke) - before; got != 1 {
			t.Errorf("%d token.revoke events for the extension, want 1", got)
		}
	})
}

// TestRefreshRevokedAgainWritesNothing: a refresh token revoked over and
// over ends its family once: one grant row, one refresh_family.revoke
// event; a token rotated away whose successor is revoked too likewise,
// however long the chain (docs/security.md T-187). The tokens are stored
// directly for client "spa", which revokes by client_id alone: through
// the product only a confidential client holds one, and the endpoint
// judges the token the same way. A family whose row stands but whose
// tokens are not all marked revoked (the flags' UPDATE failed, T-160, or
// missed a rotation's successor, T-158) is ended again.
func TestRefreshRevokedAgainWritesNothing(t *testing.T) {
	e := newAgainEnv(t)
	ctx := t.Context()
	refresh := func(family string, revoked bool, successor string) string {
		t.Helper()
		raw, now := secret.PrefixRefreshToken.Generate(), storage.Now(time.Now())
		rt := storage.RefreshToken{ID: storage.NewID(), FamilyID: family, Digest: secret.Digest(e.pepper, raw), ClientID: "spa", OrgID: "acme",
			Subject: "u1", CreatedAt: now, ExpiresAt: now.Add(time.Hour), Revoked: revoked, SuccessorID: successor}
		if successor != "" {
			rt.RotatedAt = now
		}
		if err := e.st.CreateRefreshToken(ctx, rt); err != nil {
			t.Fatal(err)
		}
		return raw
	}
	revokedOnce := func(t *testing.T, raw string, n int) {
		t.Helper()
		before := e.events(t, ActionRefreshFamilyRevoke)
		e.revoke(t, url.Values{"token": {raw}, "client_id": {"spa"}}, n)
		if got := e.events(t, ActionRefreshFamilyRevoke) - before; got != 1 {
			t.Errorf("%d refresh_family.revoke events for one family revoked %d times, want 1", got, n)
		}
	}
	t.Run("current token", func(t *testing.T) {
		revokedOnce(t, refresh(storage.NewID(), false, ""), 5)
	})
	t.Run("token rotated away", func(t *testing.T) {
		family := storage.NewID()
		child := refresh(family, false, "")
		rt, err := e.st.GetRefreshTokenByDigest(ctx, secret.Digest(e.pepper, child))
		if err != nil {
			t.Fatal(err)
		}
		revokedOnce(t, refresh(family, false, rt.ID), 5)
	})
	t.Run("successor the flags missed", func(t *testing.T) {
		// The row stands (a minute left) and the parent is marked, but a
		// rotation's successor was not (T-158): the family is ended again.
		family := storage.NewID()
		child := refresh(family, false, "")
		rt, err := e.st.GetRefreshTokenByDigest(ctx, secret.Digest(e.pepper, child))
		if err != nil {
			t.Fatal(err)
		}
		if err := e.st.PutRevocation(ctx, tokens.GrantRevocation(family, "test", time.Now(), time.Minute)); err != nil {
			t.Fatal(err)
		}
		revokedOnce(t, refresh(family, true, rt.ID), 3)
		if rt, err := e.st.GetRefreshTokenByDigest(ctx, secret.Digest(e.pepper, child)); err != nil || !rt.Revoked {
			t.Errorf("successor after the revocation: revoked %v (%v), want revoked", rt.Revoked, err)
		}
		// The successor may have minted an access token after the row:
		// the row is written anew, to the family's expiry.
		if r, err := e.st.GetRevocation(ctx, tokens.RevocationIDGrant(family)); err != nil || r.ExpiresAt.Before(rt.ExpiresAt) {
			t.Errorf("grant row after the revocation: until %v (%v), want at least the family's expiry %v", r.ExpiresAt, err, rt.ExpiresAt)
		}
	})
	// chain stores a family of n tokens, each rotated to the next, all
	// marked revoked but the newest when newestLive, under a grant row in
	// force; it returns the oldest token and the newest's ID.
	chain := func(n int, newestLive bool) (family, oldest, newest string) {
		t.Helper()
		family = storage.NewID()
		oldest = refresh(family, !newestLive, "")
		for range n - 1 {
			rt, err := e.st.GetRefreshTokenByDigest(ctx, secret.Digest(e.pepper, oldest))
			if err != nil {
				t.Fatal(err)
			}
			if newest == "" {
				newest = rt.ID
			}
			oldest = refresh(family, true, rt.ID)
		}
		if err := e.st.PutRevocation(ctx, tokens.GrantRevocation(family, "test", time.Now(), 0)); err != nil {
			t.Fatal(err)
		}
		return family, oldest, newest
	}
	t.Run("ended family rotated 20 times", func(t *testing.T) {
		// However long the chain from the token presented, an ended
		// family is not ended again.
		_, oldest, _ := chain(20, false)
		before := e.events(t, ActionRefreshFamilyRevoke)
		e.revoke(t, url.Values{"token": {oldest}, "client_id": {"spa"}}, 5)
		if got := e.events(t, ActionRefreshFamilyRevoke) - before; got != 0 {
			t.Errorf("%d refresh_family.revoke events for an already-ended family (oldest token of a 20-token chain) revoked 5 times, want 0", got)
		}
	})
	t.Run("newest of 20 the flags missed", func(t *testing.T) {
		_, oldest, newest := chain(20, true)
		revokedOnce(t, oldest, 5)
		if rt, err := e.st.GetRefreshToken(ctx, newest); err != nil || !rt.Revoked {
			t.Errorf("newest token after the revocation: revoked %v (%v), want revoked", rt.Revoked, err)
		}
	})
	t.Run("row without the flags", func(t *testing.T) {
		family := storage.NewID()
		raw := refresh(family, false, "")
		if err := e.st.PutRevocation(ctx, tokens.GrantRevocation(family, "test", time.Now(), 0)); err != nil {
			t.Fatal(err)
		}
		revokedOnce(t, raw, 3)
		if rt, err := e.st.GetRefreshTokenByDigest(ctx, secret.Digest(e.pepper, raw)); err != nil || !rt.Revoked {
			t.Errorf("refresh token after the revocation: revoked %v (%v), want revoked", rt.Revoked, err)
		}
	})
}
