package grants

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	googlecreds "golang.org/x/oauth2/google"

	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// testClock is a clock the test moves by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *testClock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// TestGoogleAuthorizedUserFileSharedByProcesses (docs/security.md T-112):
// an external_account_authorized_user credential file holds one fixed
// refresh token, and every process started from it refreshes with that
// token at /v1/oauthtoken, as against Google, whose refresh tokens do not
// rotate. The judge is golang.org/x/oauth2/google: two token sources made
// from the same file are two processes. The second one's refresh, long
// after the first one's, must not look like a reuse that ends the family
// for both. Revocation and the family's lifetime still end it; at
// /oauth2/token the same family still rotates.
func TestGoogleAuthorizedUserFileSharedByProcesses(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	clock := &testClock{t: time.Now()}
	e.verify.Now = clock.Now
	pepper := []byte(strings.Repeat("p", 32))
	sa := storage.Principal{ID: storage.NewID(), OrgID: "acme", Kind: storage.PrincipalServiceAccount, Name: "gcloud"}
	if err := e.store.CreatePrincipal(ctx, sa); err != nil {
		t.Fatal(err)
	}
	sec := secret.PrefixClientSecret.Generate()
	client := storage.Client{ID: storage.NewID(), OrgID: "acme", PrincipalID: sa.ID, AuthMethod: oauth2.AuthMethodClientSecretBasic,
		SecretDigest: secret.Digest(pepper, sec), GrantTypes: []string{oauth2.GrantTypeAuthorizationCode, oauth2.GrantTypeRefreshToken}, Scopes: []string{"read"},
		Audiences: []string{stsIssuer}}
	if err := e.store.CreateClient(ctx, client); err != nil {
		t.Fatal(err)
	}
	e.handler.Clients = Clients{Authenticator: &clientauth.Authenticator{Store: e.store, Pepper: pepper}}
	// Access tokens of 5 s: x/oauth2 holds a token until 10 s before its
	// expiry, so every Token() call below is a refresh at the server.
	refresh := &Refresh{Store: e.store, Issuer: e.grant.Issuer, Pepper: pepper, Now: clock.Now,
		AccessLifetime: 5 * time.Second, Lifetime: 24 * time.Hour}
	e.handler.Grants = append(e.handler.Grants, refresh)
	mux := http.NewServeMux()
	e.handler.Mount(mux)
	e.srv.Config.Handler = mux

	issue := func() string {
		rt, err := refresh.Issue(ctx, oauth2.GrantTypeAuthorizationCode, &client, tokens.AccessClaims{Subject: sa.ID, OrgID: "acme", ClientID: client.ID}, []string{"read"}, []string{stsIssuer})
		if err != nil {
			t.Fatal(err)
		}
		return rt
	}
	rt := issue()
	file, _ := json.Marshal(map[string]string{
		"type":          "external_account_authorized_user",
		"audience":      "//iam.googleapis.com/locations/global/workforcePools/ci/providers/github",
		"client_id":     client.ID,
		"client_secret": sec,
		"refresh_token": rt,
		"token_url":     e.srv.URL + PathGoogleOAuthToken,
	})
	process := func() func() (string, error) {
		creds, err := googlecreds.CredentialsFromJSON(ctx, file, cloudPlatform)
		if err != nil {
			t.Fatal(err)
		}
		return func() (string, error) {
			tok, err := creds.TokenSource.Token()
			if err != nil {
				return "", err
			}
			if _, err := e.verify.VerifyAccessToken(ctx, tok.AccessToken, stsIssuer); err != nil {
				t.Errorf("our verifier rejects the refreshed access token: %v", err)
			}
			return tok.AccessToken, nil
		}
	}

	first, second := process(), process()
	if _, err := first(); err != nil {
		t.Fatalf("first process: %v", err)
	}
	clock.Advance(DefaultRefreshGrace + time.Minute) // long past any retry window
	if _, err := second(); err != nil {
		t.Fatalf("second process started from the same file: %v (want a token: Google's refresh tokens do not rotate)", err)
	}
	if _, err := first(); err != nil {
		t.Fatalf("first process again, after the second one's refresh: %v", err)
	}
	if _, err := process()(); err != nil {
		t.Fatalf("a third process from the same file: %v", err)
	}
	stored, err := e.store.GetRefreshTokenByDigest(ctx, secret.Digest(pepper, rt))
	if err != nil || stored.Revoked || !stored.RotatedAt.IsZero() {
		t.Fatalf("the file's refresh token after four refreshes: %+v %v, want it stored, not rotated, not revoked", stored, err)
	}

	// The answer carries no refresh_token, as Google's: the client keeps
	// the one it has (RFC 6749 §6 "MAY issue a new refresh token").
	got, err := postOAuthToken(t, e.srv.URL, client.ID, sec, oauthTokenRequest{GrantType: oauth2.GrantTypeRefreshToken, RefreshToken: rt})
	if err != nil || got.AccessToken == "" || got.RefreshToken != "" {
		t.Fatalf("/v1/oauthtoken = %+v %v, want an access token and no refresh_token", got, err)
	}
	// Bound to its client as before: another client is refused.
	other := client
	otherSec := secret.PrefixClientSecret.Generate()
	other.ID, other.SecretDigest = storage.NewID(), secret.Digest(pepper, otherSec)
	if err := e.store.CreateClient(ctx, other); err != nil {
		t.Fatal(err)
	}
	if _, err := postOAuthToken(t, e.srv.URL, other.ID, otherSec, oauthTokenRequest{GrantType: oauth2.GrantTypeRefreshToken, RefreshToken: rt}); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("another client with the file's refresh token: %v, want invalid_grant", err)
	}

	t.Run("revocation ends it", func(t *testing.T) {
		if _, err := e.store.RevokeRefreshFamily(ctx, stored.FamilyID); err != nil {
			t.Fatal(err)
		}
		if _, err := first(); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
			t.Errorf("refresh after the family was revoked: %v, want invalid_grant", err)
		}
	})
	t.Run("the family's lifetime ends it", func(t *testing.T) {
		rt := issue()
		if _, err := postOAuthToken(t, e.srv.URL, client.ID, sec, oauthTokenRequest{GrantType: oauth2.GrantTypeRefreshToken, RefreshToken: rt}); err != nil {
			t.Fatal(err)
		}
		clock.Advance(24 * time.Hour)
		if _, err := postOAuthToken(t, e.srv.URL, client.ID, sec, oauthTokenRequest{GrantType: oauth2.GrantTypeRefreshToken, RefreshToken: rt}); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
			t.Errorf("refresh past the family's lifetime: %v, want invalid_grant", err)
		}
	})
	t.Run("/oauth2/token still rotates", func(t *testing.T) {
		rt := issue()
		form := url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}}
		r, _ := http.NewRequest(http.MethodPost, e.srv.URL+PathToken, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.SetBasicAuth(client.ID, sec)
		resp, out := do(t, r)
		succ, _ := out["refresh_token"].(string)
		if resp.StatusCode != http.StatusOK || succ == "" || succ == rt {
			t.Fatalf("/oauth2/token = %d %v, want a rotated refresh token", resp.StatusCode, out)
		}
		// Within the retry window the rotated token, at /v1/oauthtoken
		// too, gets the same successor back.
		got, err := postOAuthToken(t, e.srv.URL, client.ID, sec, oauthTokenRequest{GrantType: oauth2.GrantTypeRefreshToken, RefreshToken: rt})
		if err != nil || got.RefreshToken != succ {
			t.Fatalf("rotated token at /v1/oauthtoken in the retry window = %+v %v, want the successor", got, err)
		}
		// The successor refreshes here without rotating; once the window
		// has passed, the rotated token is a reuse, here as at
		// /oauth2/token, and ends the family.
		if _, err := postOAuthToken(t, e.srv.URL, client.ID, sec, oauthTokenRequest{GrantType: oauth2.GrantTypeRefreshToken, RefreshToken: succ}); err != nil {
			t.Fatal(err)
		}
		clock.Advance(DefaultRefreshGrace + time.Second)
		if _, err := postOAuthToken(t, e.srv.URL, client.ID, sec, oauthTokenRequest{GrantType: oauth2.GrantTypeRefreshToken, RefreshToken: rt}); err == nil || !strings.Contains(err.Error(), ReasonRefreshReused) {
			t.Errorf("rotated token after its successor's use: %v, want %s", err, ReasonRefreshReused)
		}
		if _, err := postOAuthToken(t, e.srv.URL, client.ID, sec, oauthTokenRequest{GrantType: oauth2.GrantTypeRefreshToken, RefreshToken: succ}); err == nil {
			t.Error("the successor after the reuse still refreshes, want the family revoked")
		}
	})
	// docs/security.md T-119: the successor's first use closes its
	// parent's retry window at /v1/oauthtoken as at /oauth2/token, where
	// that use rotates it: the rotated token presented after it, however
	// soon, is a reuse that ends the family, never the successor's secret
	// handed out again.
	for _, where := range []string{PathToken, PathGoogleOAuthToken} {
		t.Run("the successor's use at "+where+" closes the window", func(t *testing.T) {
			rt := issue()
			form := url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}}
			r, _ := http.NewRequest(http.MethodPost, e.srv.URL+PathToken, strings.NewReader(form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.SetBasicAuth(client.ID, sec)
			resp, out := do(t, r)
			succ, _ := out["refresh_token"].(string)
			if resp.StatusCode != http.StatusOK || succ == "" {
				t.Fatalf("/oauth2/token = %d %v, want a rotated refresh token", resp.StatusCode, out)
			}
			form.Set("refresh_token", succ)
			r, _ = http.NewRequest(http.MethodPost, e.srv.URL+where, strings.NewReader(form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.SetBasicAuth(client.ID, sec)
			if resp, out := do(t, r); resp.StatusCode != http.StatusOK {
				t.Fatalf("the successor at %s = %d %v", where, resp.StatusCode, out)
			}
			if got, err := postOAuthToken(t, e.srv.URL, client.ID, sec, oauthTokenRequest{GrantType: oauth2.GrantTypeRefreshToken, RefreshToken: rt}); err == nil || !strings.Contains(err.Error(), ReasonRefreshReused) {
				t.Fatalf("the rotated token after its successor's use = %+v %v, want %s", got, err, ReasonRefreshReused)
			}
			if _, err := postOAuthToken(t, e.srv.URL, client.ID, sec, oauthTokenRequest{GrantType: oauth2.GrantTypeRefreshToken, RefreshToken: succ}); err == nil {
				t.Error("the successor after the reuse still refreshes, want the family revoked")
			}
		})
	}
	// A family's first token has no parent, so its use closes no window:
	// its refreshes at /v1/oauthtoken write nothing (used_at stays NULL),
	// where a successor's first one is recorded (T-119).
	t.Run("a family's first token records no use", func(t *testing.T) {
		rt := issue()
		for range 2 {
			if _, err := postOAuthToken(t, e.srv.URL, client.ID, sec, oauthTokenRequest{GrantType: oauth2.GrantTypeRefreshToken, RefreshToken: rt}); err != nil {
				t.Fatal(err)
			}
		}
		first, err := e.store.GetRefreshTokenByDigest(ctx, secret.Digest(pepper, rt))
		if err != nil || first.ID != first.FamilyID || !first.UsedAt.IsZero() {
			t.Errorf("a family's first token after refreshes at /v1/oauthtoken: used_at %v, %v; want none recorded", first.UsedAt, err)
		}
		form := url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}}
		r, _ := http.NewRequest(http.MethodPost, e.srv.URL+PathToken, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.SetBasicAuth(client.ID, sec)
		_, out := do(t, r)
		succ, _ := out["refresh_token"].(string)
		if _, err := postOAuthToken(t, e.srv.URL, client.ID, sec, oauthTokenRequest{GrantType: oauth2.GrantTypeRefreshToken, RefreshToken: succ}); err != nil {
			t.Fatal(err)
		}
		if got, err := e.store.GetRefreshTokenByDigest(ctx, secret.Digest(pepper, succ)); err != nil || got.UsedAt.IsZero() {
			t.Errorf("the successor after its use at /v1/oauthtoken: used_at %v, %v; want it recorded", got.UsedAt, err)
		}
	})
}
