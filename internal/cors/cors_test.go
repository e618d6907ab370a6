package cors

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
)

func TestOrigin(t *testing.T) {
	for raw, want := range map[string]string{
		"https://App.Example/cb?x=1":      "https://app.example",
		"https://app.example:443/cb":      "https://app.example",
		"http://localhost:3000/callback":  "http://localhost:3000",
		"http://127.0.0.1:80/":            "http://127.0.0.1",
		"http://[::1]:8080/cb":            "http://[::1]:8080",
		"https://app.example:8443":        "https://app.example:8443",
		"com.example.app:/oauth2redirect": "",
		"https://user:pw@app.example/cb":  "",
		"null":                            "",
		"ftp://app.example/":              "",
		"https:///cb":                     "",
	} {
		if got := Origin(raw); got != want {
			t.Errorf("Origin(%q) = %q, want %q", raw, got, want)
		}
	}
}

// lister is a client store whose list can change, counting reads.
type lister struct {
	clients atomic.Pointer[[]storage.Client]
	reads   atomic.Int32
	fail    atomic.Bool
}

func (l *lister) ListClients(context.Context, string) ([]storage.Client, error) {
	l.reads.Add(1)
	if l.fail.Load() {
		return nil, errors.New("down")
	}
	return *l.clients.Load(), nil
}

func (l *lister) set(cs ...storage.Client) { l.clients.Store(&cs) }

// TestOriginsSnapshot: a client's redirect URIs' origins are allowed for
// it and preflighted for anyone; a disabled client's are not; a new
// registration is seen once MissRefresh has passed, a removed one once
// MaxAge has; storage failing keeps the last snapshot, and with none
// allows nothing.
func TestOriginsSnapshot(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := &lister{}
	l.set(storage.Client{ID: "spa", RedirectURIs: []string{"https://spa.example/cb", "com.example:/cb"}},
		storage.Client{ID: "off", Disabled: true, RedirectURIs: []string{"https://off.example/cb"}})
	o := &Origins{Clients: l, MaxAge: time.Minute, MissRefresh: 5 * time.Second, Now: func() time.Time { return now }}
	ctx := t.Context()
	check := func(origin, client string, want bool) {
		t.Helper()
		if got := o.allows(ctx, origin, client); got != want {
			t.Errorf("allows(%q, %q) = %v, want %v", origin, client, got, want)
		}
	}
	check("https://spa.example", "spa", true)
	check("https://spa.example", "", true)
	check("https://spa.example", "other", false)
	check("https://off.example", "", false)
	reads := l.reads.Load()
	check("https://evil.example", "", false) // a miss within MissRefresh reads nothing
	if l.reads.Load() != reads {
		t.Errorf("a miss within MissRefresh read storage")
	}
	l.set(storage.Client{ID: "spa", RedirectURIs: []string{"https://spa.example/cb"}},
		storage.Client{ID: "new", RedirectURIs: []string{"https://new.example/cb"}})
	check("https://new.example", "new", false)
	now = now.Add(5 * time.Second)
	check("https://new.example", "new", true)
	l.set(storage.Client{ID: "new", RedirectURIs: []string{"https://new.example/cb"}})
	check("https://spa.example", "spa", true) // a hit serves until MaxAge
	now = now.Add(time.Minute)
	check("https://spa.example", "spa", false)
	l.fail.Store(true)
	now = now.Add(time.Minute)
	check("https://new.example", "new", true) // the last snapshot stays
	fresh := &Origins{Clients: l}
	if fresh.allows(ctx, "https://new.example", "") {
		t.Error("with storage down and no snapshot, an origin was allowed")
	}
}

// TestHeaders: the public wrapper answers *, the client wrapper varies by
// Origin and allows only through Allow, and nothing allows credentials.
func TestHeaders(t *testing.T) {
	l := &lister{}
	l.set(storage.Client{ID: "spa", RedirectURIs: []string{"http://localhost:3000/cb"}})
	o := &Origins{Clients: l}
	serve := func(h http.Handler, method, origin string) http.Header {
		r := httptest.NewRequest(method, "/x", nil)
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		r.Header.Set("Access-Control-Request-Method", http.MethodPost)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Header().Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("credentials allowed: %v", w.Header())
		}
		return w.Header()
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	if h := serve(Public(ok), http.MethodGet, "https://any.example"); h.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("public: %v", h)
	}
	if h := serve(Public(ok), http.MethodGet, ""); h.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("public without Origin (a shared cache may keep it): %v", h)
	}
	allowing := o.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { Allow(r.Context(), "spa") }))
	if h := serve(allowing, http.MethodPost, "http://localhost:3000"); h.Get("Access-Control-Allow-Origin") != "http://localhost:3000" || h.Get("Vary") != "Origin" {
		t.Errorf("client endpoint, its origin: %v", h)
	}
	if h := serve(allowing, http.MethodPost, "http://127.0.0.1:3000"); h.Get("Access-Control-Allow-Origin") != "" || h.Get("Vary") != "Origin" {
		t.Errorf("client endpoint, another origin: %v", h)
	}
	if h := serve(allowing, http.MethodPost, "http://localhost:3000/path"); h.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("client endpoint, an Origin that is no origin: %v", h)
	}
	silent := o.Wrap(ok)
	if h := serve(silent, http.MethodPost, "http://localhost:3000"); h.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("client endpoint without Allow: %v", h)
	}
	if h := serve(o.Preflight(http.MethodPost), http.MethodOptions, "http://localhost:3000"); h.Get("Access-Control-Allow-Origin") != "http://localhost:3000" ||
		h.Get("Access-Control-Allow-Headers") != AllowHeaders {
		t.Errorf("preflight, a registered origin: %v", h)
	}
	var none *Origins
	if h := serve(none.Wrap(ok), http.MethodPost, "http://localhost:3000"); len(h) != 0 {
		t.Errorf("nil Origins added headers: %v", h)
	}
}
