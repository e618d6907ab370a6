package web_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest/pgtest"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
	"github.com/opensts/sts/internal/web"
)

// TestSignInWithAnyUserAgent: the browser's User-Agent, stored with the
// session for the page's list, is the browser's word and any bytes: one
// of Latin-1, or long enough to be cut inside a character, signs in like
// any other, on SQLite and PostgreSQL, and is listed as text (invalid
// bytes and control characters as '?', as in the audit trail). On
// PostgreSQL, which refuses invalid UTF-8 in text, such a sign-in was a
// storage failure: 503 every time for that browser, its link spent
// (docs/security.md T-132).
func TestSignInWithAnyUserAgent(t *testing.T) {
	t.Parallel()
	stores := map[string]func(t *testing.T) *sqlstore.Store{
		"SQLite": func(t *testing.T) *sqlstore.Store { return sqlitetest.NewStore(t) },
		"PostgreSQL": func(t *testing.T) *sqlstore.Store {
			st, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: pgtest.DSN(t)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			if err := st.Migrate(t.Context()); err != nil {
				t.Fatal(err)
			}
			return st
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			st := open(t)
			now := storage.Now(time.Now())
			_, ada := orgWithUser(t, st, now)
			pats, err := pat.NewService(st, make([]byte, pat.MinPepperSize))
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewUnstartedServer(nil)
			h, err := web.New(web.Options{Issuer: "http://" + srv.Listener.Addr().String(), Store: st, PATs: pats,
				IdleTimeout: time.Hour, AbsoluteTimeout: time.Hour, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			mux := http.NewServeMux()
			h.Mount(mux)
			srv.Config.Handler = mux
			srv.Start()
			t.Cleanup(srv.Close)
			client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			for _, ua := range []string{
				strings.Repeat("a", 199) + "é and more", // cut at 200 bytes inside "é"
				"Mozilla/5.0 (\xe9t\xe9)",               // Latin-1
				"Browser/1.0 \u00e9t\u00e9",             // UTF-8, kept as it is
			} {
				link, _, err := web.CreateLoginLink(t.Context(), st, audit.Caller{Actor: "test"}, srv.URL, ada, 0, "", now)
				if err != nil {
					t.Fatal(err)
				}
				_, sec, _ := strings.Cut(link, "#")
				req, _ := http.NewRequest(http.MethodPost, srv.URL+"/login/link", strings.NewReader(url.Values{"token": {sec}}.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("User-Agent", ua)
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 {
					t.Errorf("sign-in with User-Agent %q: %d", ua, resp.StatusCode)
				}
			}
			list, err := st.ListWebSessions(t.Context(), ada.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range list {
				if !utf8.ValidString(s.UserAgent) || strings.ContainsRune(s.UserAgent, utf8.RuneError) {
					t.Errorf("stored User-Agent %q is not clean text", s.UserAgent)
				}
			}
			var uas []string
			for _, s := range list {
				uas = append(uas, s.UserAgent)
			}
			if len(list) != 3 || !slices.Contains(uas, "Browser/1.0 \u00e9t\u00e9") || !slices.Contains(uas, "Mozilla/5.0 (?t?)") {
				t.Errorf("stored User-Agents: %q", uas)
			}
		})
	}
}
