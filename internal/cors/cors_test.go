package cors

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

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

// records is a record cache of fixed clients, counting reads.
type records struct {
	clients map[string]storage.Client
	reads   atomic.Int32
	fail    bool
}

func (r *records) CachedClient(_ context.Context, id string) (storage.Client, bool, error) {
	r.reads.Add(1)
	if r.fail {
		return storage.Client{}, false, errors.New("down")
	}
	c, ok := r.clients[id]
	if !ok {
		return storage.Client{}, false, storage.ErrNotFound
	}
	return c, true, nil
}

// TestRegistered: a client's origins are those of its http and https
// redirect URIs, exactly (scheme, host and port), and a disabled client
// has none.
func TestRegistered(t *testing.T) {
	spa := storage.Client{ID: "spa", RedirectURIs: []string{"https://spa.example/cb", "http://localhost:3000/callback", "com.example:/cb"}}
	for origin, want := range map[string]bool{
		"https://spa.example":      true,
		"http://localhost:3000":    true,
		"http://spa.example":       false,
		"https://spa.example:8443": false,
		"http://localhost:3001":    false,
		"https://evil.example":     false,
		"":                         false,
	} {
		if got := Registered(spa, origin); got != want {
			t.Errorf("Registered(spa, %q) = %v, want %v", origin, got, want)
		}
	}
	spa.Disabled = true
	if Registered(spa, "https://spa.example") {
		t.Error("a disabled client's origin is registered")
	}
}

// serve runs h on a request from origin (none when empty) with a
// preflight's Access-Control-Request-Method, and fails on credentials.
func serve(t *testing.T, h http.Handler, method, origin string) http.Header {
	t.Helper()
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

// TestHeaders: the public wrapper answers *; the client preflight
// reflects any well-formed origin and reads nothing; the client wrapper
// varies by Origin and allows only the identified client's origins, read
// from its record (in hand, or through the cache only when the request
// has an Origin); nothing allows credentials.
func TestHeaders(t *testing.T) {
	spa := storage.Client{ID: "spa", RedirectURIs: []string{"http://localhost:3000/cb"}}
	rec := &records{clients: map[string]storage.Client{"spa": spa, "off": {ID: "off", Disabled: true, RedirectURIs: spa.RedirectURIs}}}
	c := &Clients{Records: rec}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	if h := serve(t, Public(ok), http.MethodGet, "https://any.example"); h.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("public: %v", h)
	}
	if h := serve(t, Public(ok), http.MethodGet, ""); h.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("public without Origin (a shared cache may keep it): %v", h)
	}

	for _, origin := range []string{"http://localhost:3000", "https://never-registered.example"} {
		if h := serve(t, c.Preflight(http.MethodPost), http.MethodOptions, origin); h.Get("Access-Control-Allow-Origin") != origin ||
			h.Get("Access-Control-Allow-Headers") != AllowHeaders || h.Get("Access-Control-Allow-Methods") != http.MethodPost || h.Get("Vary") != "Origin" {
			t.Errorf("preflight from %s: %v", origin, h)
		}
	}
	if h := serve(t, c.Preflight(http.MethodPost), http.MethodOptions, "null"); h.Get("Access-Control-Allow-Origin") != "" || h.Get("Vary") != "Origin" {
		t.Errorf("preflight from Origin null: %v", h)
	}
	if n := rec.reads.Load(); n != 0 {
		t.Errorf("preflights read %d client records, want none", n)
	}

	byRecord := c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { Allow(r.Context(), spa) }))
	byID := func(id string) http.Handler {
		return c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { AllowID(r.Context(), id) }))
	}
	for name, h := range map[string]http.Handler{"Allow": byRecord, "AllowID": byID("spa")} {
		if got := serve(t, h, http.MethodPost, "http://localhost:3000"); got.Get("Access-Control-Allow-Origin") != "http://localhost:3000" ||
			got.Get("Access-Control-Expose-Headers") != ExposeHeaders || got.Get("Vary") != "Origin" {
			t.Errorf("%s, the client's origin: %v", name, got)
		}
		for _, origin := range []string{"http://127.0.0.1:3000", "http://localhost:3001", "http://localhost:3000/path"} {
			if got := serve(t, h, http.MethodPost, origin); got.Get("Access-Control-Allow-Origin") != "" || got.Get("Vary") != "Origin" {
				t.Errorf("%s, %s: %v", name, origin, got)
			}
		}
	}
	for _, id := range []string{"off", "unknown", ""} {
		if got := serve(t, byID(id), http.MethodPost, "http://localhost:3000"); got.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("AllowID(%q): %v", id, got)
		}
	}
	reads := rec.reads.Load()
	if got := serve(t, byID("spa"), http.MethodPost, ""); len(got) != 0 || rec.reads.Load() != reads {
		t.Errorf("without Origin: headers %v, %d reads; want none", got, rec.reads.Load()-reads)
	}
	rec.fail = true
	if got := serve(t, byID("spa"), http.MethodPost, "http://localhost:3000"); got.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("storage down: %v, want unreadable", got)
	}
	if got := serve(t, c.Wrap(ok), http.MethodPost, "http://localhost:3000"); got.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("client endpoint without Allow: %v", got)
	}
	var none *Clients
	if got := serve(t, none.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { Allow(r.Context(), spa) })), http.MethodPost, "http://localhost:3000"); len(got) != 0 {
		t.Errorf("nil Clients added headers: %v", got)
	}
}
