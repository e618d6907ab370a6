package web_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	xoauth2 "golang.org/x/oauth2"

	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/web"
)

// sessionApp is a registered web application that may ask for
// offline_access, and the server it signs people in through.
type sessionApp struct {
	s    *server
	conf *xoauth2.Config
}

func newSessionApp(t *testing.T, s *server) sessionApp {
	t.Helper()
	sa := s.sts(t, "principal", "create", "--org", "default", "--kind", "service-account", "--name", "notes-app")
	out := s.sts(t, "client", "create", "--org", "default", "--principal", sa, "--name", "Notes",
		"--redirect-uri", "http://127.0.0.1:1/cb", "--audience", s.URL, "--scope", "openid", "--scope", "offline_access")
	id := regexp.MustCompile(`^(\S+)\n`).FindStringSubmatch(out)
	sec := regexp.MustCompile(`\n(sts_cs_\S+)$`).FindStringSubmatch(out)
	if id == nil || sec == nil {
		t.Fatalf("client create printed %q", out)
	}
	return sessionApp{s: s, conf: &xoauth2.Config{ClientID: id[1], ClientSecret: sec[1], RedirectURL: "http://127.0.0.1:1/cb",
		Endpoint: xoauth2.Endpoint{AuthURL: s.URL + "/oauth2/authorize", TokenURL: s.URL + "/oauth2/token", AuthStyle: xoauth2.AuthStyleInHeader}}}
}

// tokens runs the authorization-code flow for the person signed in to p
// (the consent screen approved when shown) and redeems the code with
// golang.org/x/oauth2; the token has a refresh token.
func (a sessionApp) tokens(t *testing.T, p *person, scopes ...string) *xoauth2.Token {
	t.Helper()
	conf := *a.conf
	conf.Scopes = scopes
	verifier := xoauth2.GenerateVerifier()
	r := p.do(t, http.MethodGet, strings.TrimPrefix(conf.AuthCodeURL("st", xoauth2.S256ChallengeOption(verifier)), a.s.URL), nil, nil)
	r = approveIfAsked(t, p.c, a.s, r)
	loc, err := url.Parse(r.header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("authorize answered %d to %q, want the callback with a code\n%s", r.status, r.header.Get("Location"), r.body)
	}
	tok, err := conf.Exchange(t.Context(), loc.Query().Get("code"), xoauth2.VerifierOption(verifier))
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("x/oauth2 Exchange = %+v, %v, want a refresh token", tok, err)
	}
	return tok
}

// refresh refreshes tok's family with golang.org/x/oauth2, keeping the
// rotated refresh token in tok; "" is success, else the OAuth error code.
func (a sessionApp) refresh(t *testing.T, tok *xoauth2.Token) string {
	t.Helper()
	next, err := a.conf.TokenSource(t.Context(), &xoauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err == nil {
		tok.RefreshToken = next.RefreshToken
		return ""
	}
	if re, ok := err.(*xoauth2.RetrieveError); ok {
		return re.ErrorCode
	}
	t.Fatalf("refresh: %v", err)
	return ""
}

// active introspects tok's refresh token as the application.
func (a sessionApp) active(t *testing.T, tok *xoauth2.Token) bool {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, a.s.URL+"/oauth2/introspect", strings.NewReader(url.Values{"token": {tok.RefreshToken}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(a.conf.ClientID), url.QueryEscape(a.conf.ClientSecret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("introspect = %d %v %v", resp.StatusCode, m, err)
	}
	return m["active"] == true
}

// onlySession is the ID of the one session of the admin begun since
// before (the sessions stored then).
func onlySession(t *testing.T, st *sqlstore.Store, before map[string]bool) string {
	t.Helper()
	var found []string
	for id := range sessionIDs(t, st) {
		if !before[id] {
			found = append(found, id)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d new sessions, want 1", len(found))
	}
	return found[0]
}

// sessionIDs is the set of the admin's stored sessions.
func sessionIDs(t *testing.T, st *sqlstore.Store) map[string]bool {
	t.Helper()
	id, _ := adminOf(t, st)
	list, err := st.ListWebSessions(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, w := range list {
		ids[w.ID] = true
	}
	return ids
}

// TestSignOutEndsTheSessionsRefreshFamilies (docs/security.md A-99): a
// refresh family the authorization_code grant began without
// offline_access is bound to the browser session that signed the person
// in, as an online session's refresh tokens are at Keycloak: once that
// session ends, however it ends (Sign out on the pages, RP-initiated
// logout at /oauth2/logout, the person ending it from the session list,
// its absolute end, the bound on a person's sessions), its refresh is
// invalid_grant and its refresh token introspects inactive. A family
// with offline_access (OIDC Core §11) outlives the session, and a family
// of a session still live keeps refreshing. golang.org/x/oauth2 is the
// judge of the refresh; SQLite and PostgreSQL.
func TestSignOutEndsTheSessionsRefreshFamilies(t *testing.T) {
	t.Parallel()
	for _, b := range sessionBackends {
		t.Run(b.name, func(t *testing.T) {
			s, st := b.start(t)
			app := newSessionApp(t, s)

			// signedIn is a new browser signed in as admin, its session's
			// ID, a family begun in it, and one with offline_access.
			signedIn := func(t *testing.T) (*person, string, *xoauth2.Token, *xoauth2.Token) {
				before := sessionIDs(t, st)
				p := newPerson(t, s)
				p.signIn(t, "admin", "/tokens")
				id := onlySession(t, st, before)
				online, offline := app.tokens(t, p, "openid"), app.tokens(t, p, "openid", "offline_access")
				if got := app.refresh(t, online); got != "" || !app.active(t, online) {
					t.Fatalf("a family of a live session: refresh %q, active %v", got, app.active(t, online))
				}
				return p, id, online, offline
			}
			ended := func(t *testing.T, how string, online, offline *xoauth2.Token) {
				t.Helper()
				if got := app.refresh(t, online); got != "invalid_grant" {
					t.Errorf("%s: refresh of the session's family = %q, want invalid_grant", how, got)
				}
				if app.active(t, online) {
					t.Errorf("%s: the session's refresh token introspects active", how)
				}
				if got := app.refresh(t, offline); got != "" {
					t.Errorf("%s: refresh of the offline_access family = %q, want it to outlive the session", how, got)
				}
				if !app.active(t, offline) {
					t.Errorf("%s: the offline_access refresh token introspects inactive", how)
				}
			}

			bystander, _, bystanderTok, _ := signedIn(t)

			p, _, online, offline := signedIn(t)
			if r := p.do(t, http.MethodPost, "/logout", url.Values{}, nil); r.status != http.StatusSeeOther {
				t.Fatalf("POST /logout = %d", r.status)
			}
			ended(t, "Sign out", online, offline)

			p, _, online, offline = signedIn(t)
			hint, _ := online.Extra("id_token").(string)
			lo := "/oauth2/logout?" + url.Values{"id_token_hint": {hint}}.Encode()
			if r := p.do(t, http.MethodGet, lo, nil, nil); r.status != http.StatusOK || !strings.Contains(r.body, "signed out") {
				t.Fatalf("RP-initiated logout = %d\n%s", r.status, r.body)
			}
			ended(t, "RP-initiated logout", online, offline)

			_, id, online, offline := signedIn(t)
			if r := bystander.do(t, http.MethodPost, "/sessions/"+id+"/end", url.Values{}, nil); r.status != http.StatusSeeOther {
				t.Fatalf("ending the session from the list = %d\n%s", r.status, r.body)
			}
			ended(t, "End session", online, offline)

			_, id, online, offline = signedIn(t)
			if _, err := st.DB().ExecContext(t.Context(), `UPDATE web_sessions SET expires_at = created_at WHERE id = $1`, id); err != nil {
				t.Fatal(err)
			}
			ended(t, "session past its absolute end", online, offline)

			if got := app.refresh(t, bystanderTok); got != "" {
				t.Errorf("a family of a session still live, after the others ended: refresh = %q", got)
			}
			// The oldest of the person's sessions is ended by the bound
			// (T-208): the bystander's, made first.
			admin, org := adminOf(t, st)
			storeSessions(t, st, admin, org, web.MaxSessions, time.Now().Add(time.Second))
			newPerson(t, s).signIn(t, "admin", "/tokens")
			if got := app.refresh(t, bystanderTok); got != "invalid_grant" {
				t.Errorf("session trimmed by the bound: refresh = %q, want invalid_grant", got)
			}
		})
	}
}

// TestSignInAgainKeepsTheSessionsRefreshFamilies (docs/security.md A-99,
// the same person signing in again in the same browser (sudo
// mode's re-authentication, an application's prompt=login or max_age)
// replaces the session (T-82) but continues it, as Keycloak keeps the SSO
// session across a re-authentication: the families begun in it, and in
// the session before it, keep refreshing, and signing out of the last
// one ends them all. A different person signing in over the session ends
// it, and the families with it; another browser of the same person is
// another chain, untouched. SQLite and PostgreSQL.
func TestSignInAgainKeepsTheSessionsRefreshFamilies(t *testing.T) {
	t.Parallel()
	for _, b := range sessionBackends {
		t.Run(b.name, func(t *testing.T) {
			s, _ := b.start(t)
			app := newSessionApp(t, s)
			s.sts(t, "principal", "create", "--org", "default", "--kind", "user", "--name", "grace")

			other := newPerson(t, s)
			other.signIn(t, "admin", "/tokens")
			otherTok := app.tokens(t, other, "openid")

			p := newPerson(t, s)
			p.signIn(t, "admin", "/tokens")
			first := app.tokens(t, p, "openid")
			p.signIn(t, "admin", "/tokens") // signing in again: sudo mode, prompt=login
			if got := app.refresh(t, first); got != "" || !app.active(t, first) {
				t.Fatalf("after signing in again as the same person: refresh of the session's family = %q, active %v; want it kept", got, app.active(t, first))
			}
			second := app.tokens(t, p, "openid")
			p.signIn(t, "admin", "/tokens")
			for i, tok := range []*xoauth2.Token{first, second} {
				if got := app.refresh(t, tok); got != "" {
					t.Errorf("after a third sign-in: refresh of family %d = %q, want it kept", i, got)
				}
			}
			if r := p.do(t, http.MethodPost, "/logout", url.Values{}, nil); r.status != http.StatusSeeOther {
				t.Fatalf("POST /logout = %d", r.status)
			}
			for i, tok := range []*xoauth2.Token{first, second} {
				if got := app.refresh(t, tok); got != "invalid_grant" || app.active(t, tok) {
					t.Errorf("signed out after signing in again: refresh of family %d = %q, active %v; want invalid_grant, inactive", i, got, app.active(t, tok))
				}
			}
			if got := app.refresh(t, otherTok); got != "" {
				t.Errorf("another browser's family of the same person: refresh = %q, want it untouched", got)
			}

			// grace signs in over the admin's session in the other browser:
			// the admin's session ends, and the family with it.
			_, sec, _ := strings.Cut(s.loginLink(t, "grace"), "#")
			if r := other.do(t, http.MethodPost, "/login/link", url.Values{"token": {sec}, "return_to": {"/tokens"}, "switch": {"1"}}, nil); r.status != http.StatusSeeOther {
				t.Fatalf("switching to grace: %d %s", r.status, r.body)
			}
			if got := app.refresh(t, otherTok); got != "invalid_grant" || app.active(t, otherTok) {
				t.Errorf("another person signed in over the session: refresh = %q, active %v; want invalid_grant, inactive", got, app.active(t, otherTok))
			}
		})
	}
}
