package web

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
)

// TestReauthWithUnreadableSessionAsksTheProvider (docs/security.md T-141,
// T-146): a sign-in through an upstream provider started in a browser
// whose session is older than web.session.reauth_after is a
// re-authentication (max_age=0, then a fresh auth_time) also when
// storage could not read that session just then: it may be live and
// old. It was taken for no session, a first sign-in: the provider could
// answer from its own earlier sign-in, and the callback, storage back,
// replaced the old session with a fresh one that passes sudo mode
// without anyone signing in again.
func TestReauthWithUnreadableSessionAsksTheProvider(t *testing.T) {
	var disc *httptest.Server
	disc = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": disc.URL, "authorization_endpoint": disc.URL + "/authorize",
			"token_endpoint": disc.URL + "/token", "jwks_uri": disc.URL + "/jwks", "id_token_signing_alg_values_supported": []string{"RS256"}})
	}))
	t.Cleanup(disc.Close)
	st := sqlitetest.NewStore(t)
	p := acmeAda(t, st)
	pats, err := pat.NewService(st, []byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	store := laterSessionReads{st, &atomic.Int32{}, &atomic.Int32{}}
	h, err := New(Options{Issuer: "http://sts.example", Store: store, PATs: pats, Logger: slog.New(slog.DiscardHandler),
		IdleTimeout: time.Hour, AbsoluteTimeout: 8 * time.Hour,
		OIDC: []OIDCProvider{{ID: "corp", Issuer: disc.URL, ClientID: "c", LinkClaim: "email", OrgID: "acme"}}})
	if err != nil {
		t.Fatal(err)
	}
	value, now := randomValue(), storage.Now(time.Now())
	if err := st.CreateWebSession(t.Context(), storage.WebSession{ID: storage.NewID(), Digest: digest(value), OrgID: p.OrgID,
		PrincipalID: p.ID, Method: "link", CreatedAt: now.Add(-3 * time.Hour), LastSeenAt: now, ExpiresAt: now.Add(5 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	csrf := randomValue()
	start := func() url.Values {
		t.Helper()
		r := httptest.NewRequest(http.MethodPost, "http://sts.example/login/oidc/corp",
			strings.NewReader(url.Values{"csrf": {csrf}, "return_to": {"/tokens"}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Origin", "http://sts.example")
		r.AddCookie(&http.Cookie{Name: CookieInsecure, Value: value})
		r.AddCookie(&http.Cookie{Name: h.startCSRFCookie(), Value: csrf})
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		loc, err := url.Parse(w.Header().Get("Location"))
		if w.Code != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), disc.URL+"/authorize?") {
			t.Fatalf("start of the sign-in: %d, Location %q; want 302 to the provider", w.Code, w.Header().Get("Location"))
		}
		return loc.Query()
	}
	store.failAfter(0, 1)
	if got := start(); got.Get("max_age") != "0" {
		t.Errorf("sign-in over a session of 3 h storage could not read asked the provider %v; want max_age=0", got)
	}
	// The same with storage answering: the session is old.
	store.failAfter(0, 0)
	if got := start(); got.Get("max_age") != "0" {
		t.Errorf("sign-in over a session of 3 h asked the provider %v; want max_age=0", got)
	}
}
