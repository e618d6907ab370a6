package web_test

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest/pgtest"
)

// on is the application a, its token and introspection endpoints those
// of s, another server over the same storage and issuer, reached at its
// listen address.
func (a sessionApp) on(s *server) sessionApp {
	at := *s
	at.URL = "http://" + s.Addr
	conf := *a.conf
	conf.Endpoint.AuthURL, conf.Endpoint.TokenURL = at.URL+"/oauth2/authorize", at.URL+"/oauth2/token"
	return sessionApp{s: &at, conf: &conf}
}

// TestProviderRemovedEndsItsSessionsFamilies (docs/security.md A-51,
// a refresh family the authorization_code grant began without
// offline_access in a session signed in through a web.login.oidc provider
// ends with the provider, as the session does on the pages: once the
// operator removes the provider (or points its id at another issuer) and
// restarts, the family's refresh token introspects inactive and its
// refresh is invalid_grant at once, before the browser comes back, and
// the session is ended as the pages would end it. Its offline_access
// family and a family of a session signed in by link keep refreshing;
// the provider kept across a restart keeps the family. golang.org/x/oauth2
// is the judge of the refresh; SQLite and PostgreSQL.
func TestProviderRemovedEndsItsSessionsFamilies(t *testing.T) {
	t.Parallel()
	for _, backend := range []struct {
		name string
		// start's servers share storage; issuer "" is the listen address.
		start func(t *testing.T) (func(issuer string, extraYAML ...string) *server, func(s *server) *sqlstore.Store)
	}{
		{"SQLite", func(t *testing.T) (func(string, ...string) *server, func(*server) *sqlstore.Store) {
			dir := filepath.Join(t.TempDir(), "data")
			return func(issuer string, extra ...string) *server {
					if issuer != "" {
						extra = append([]string{"issuer: " + issuer + "\n"}, extra...)
					}
					return startServerIn(t, dir, extra...)
				},
				func(s *server) *sqlstore.Store { return s.store(t) }
		}},
		{"PostgreSQL", func(t *testing.T) (func(string, ...string) *server, func(*server) *sqlstore.Store) {
			dsn, dir := pgtest.DSN(t), t.TempDir()
			return func(issuer string, extra ...string) *server { return startServerPGIn(t, dsn, dir, issuer, extra...) },
				func(*server) *sqlstore.Store {
					st, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: dsn})
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { st.Close() })
					return st
				}
		}},
	} {
		t.Run(backend.name, func(t *testing.T) {
			start, storeOf := backend.start(t)
			idp := newIDP(t)
			s1 := start("", oidcYAML(idp, "email", "default"))
			st := storeOf(s1)
			app := newSessionApp(t, s1)

			// dora signs in through the provider; her browser is b.
			signInDora := func() *person {
				t.Helper()
				idp.signInAs(map[string]any{"sub": "u-1", "email": "dora@example.com", "email_verified": true})
				b := follower(t)
				if r := signInWith(t, b, s1, "test", ""); r.status != http.StatusOK {
					t.Fatalf("sign-in through the provider: %d\n%s", r.status, r.body)
				}
				return &person{s: s1, c: &http.Client{Jar: b.Jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
			}
			dora := signInDora()
			online, offline := app.tokens(t, dora, "openid"), app.tokens(t, dora, "openid", "offline_access")
			ada := newPerson(t, s1)
			ada.signIn(t, "admin", "/tokens")
			byLink := app.tokens(t, ada, "openid")
			doraSessions := func() int {
				t.Helper()
				ps, err := st.ListPrincipals(t.Context(), mustOrg(t, st))
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range ps {
					if p.Email == "dora@example.com" {
						list, err := st.ListWebSessions(t.Context(), p.ID)
						if err != nil {
							t.Fatal(err)
						}
						return len(list)
					}
				}
				t.Fatal("no principal dora@example.com")
				return 0
			}

			// The same provider after a restart (another server over the
			// same storage and issuer): the family lives (the test is not
			// vacuous).
			same := app.on(start(s1.URL, oidcYAML(idp, "email", "default")))
			if got := same.refresh(t, online); got != "" || !same.active(t, online) {
				t.Fatalf("the provider kept across a restart: refresh = %q, active %v; want the family kept\n%s", got, same.active(t, online), same.s.logs)
			}

			// The provider removed: before the browser comes back, the
			// family is inactive and invalid_grant, and the session ends.
			gone := app.on(start(s1.URL))
			if gone.active(t, online) {
				t.Error("the provider removed: the session's refresh token introspects active")
			}
			if got := gone.refresh(t, online); got != "invalid_grant" {
				t.Errorf("the provider removed: refresh of the session's family = %q, want invalid_grant", got)
			}
			if n := doraSessions(); n != 0 {
				t.Errorf("the provider removed: the refresh left %d sessions of dora stored; want the session ended", n)
			}
			if got := gone.refresh(t, offline); got != "" || !gone.active(t, offline) {
				t.Errorf("the provider removed: refresh of the offline_access family = %q, active %v; want it to outlive the session", got, gone.active(t, offline))
			}
			if got := gone.refresh(t, byLink); got != "" || !gone.active(t, byLink) {
				t.Errorf("the provider removed: refresh of a family of a sign-in link's session = %q, active %v; want it kept", got, gone.active(t, byLink))
			}

			// The provider repointed at another issuer under the same id.
			dora = signInDora()
			again := app.tokens(t, dora, "openid")
			repointed := app.on(start(s1.URL, oidcYAML(newIDP(t), "email", "default")))
			if repointed.active(t, again) {
				t.Error("the provider repointed: the session's refresh token introspects active")
			}
			if got := repointed.refresh(t, again); got != "invalid_grant" {
				t.Errorf("the provider repointed: refresh of the session's family = %q, want invalid_grant", got)
			}
			if r := dora.do(t, http.MethodGet, "/tokens", nil, nil); r.status != http.StatusSeeOther || !strings.Contains(r.header.Get("Location"), "/login") {
				t.Errorf("GET /tokens on a server with the provider after the refresh ended the session = %d %q, want 303 to sign in", r.status, r.header.Get("Location"))
			}
		})
	}
}
