package server

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The real route lists of sts serve (server.New's mounters; Ready's), with
// stub handlers that name their pattern.
var deferredOuterRoutes = []string{
	"GET /.well-known/jwks.json", "OPTIONS /.well-known/jwks.json",
	"GET /.well-known/openid-configuration", "OPTIONS /.well-known/openid-configuration",
	"GET /.well-known/oauth-authorization-server", "OPTIONS /.well-known/oauth-authorization-server",
	"GET /.well-known/oauth-authorization-server/sts", "OPTIONS /.well-known/oauth-authorization-server/sts",
	"/gitpod.v1.IdentityService/", "/api/gitpod.v1.IdentityService/",
}

var deferredLateRoutes = []string{
	"POST /oauth2/token", "OPTIONS /oauth2/token", "POST /v1/token", "POST /sts/v1/oauth2/token",
	"/sts/v1/oauth2/token", "POST /v1/oauthtoken",
	"POST /oauth2/revoke", "OPTIONS /oauth2/revoke", "POST /credentials/revoke",
	"GET /oauth2/userinfo", "POST /oauth2/userinfo", "OPTIONS /oauth2/userinfo",
	"POST /oauth2/introspect", "POST /v1/introspect",
	"GET /oauth2/authorize", "POST /oauth2/authorize", "GET /oauth2/logout", "POST /oauth2/logout",
	"GET /{$}", "GET /login", "GET /login/link", "POST /login/link", "POST /logout",
	"GET /tokens", "POST /tokens", "GET /tokens/{id}", "POST /tokens/{id}",
	"POST /tokens/{id}/regenerate", "GET /tokens/{id}/delete", "POST /tokens/{id}/delete",
	"GET /tokens/delete-all", "POST /tokens/delete-all",
	"POST /host-tokens/{id}/delete", "POST /sessions/{id}/end", "POST /consents/{client}/revoke",
	"GET /static/", "GET /login/oidc/{id}", "POST /login/oidc/{id}", "GET /login/oidc/{id}/callback",
}

func routeStub(p string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Stub", p)
		io.WriteString(w, "stub "+p+" pattern="+r.Pattern)
	}
}

func mountStubs(ps []string) MounterFunc {
	return func(mux *http.ServeMux) {
		for _, p := range ps {
			mux.Handle(p, routeStub(p))
		}
	}
}

// TestDeferredAnswersDump is a tool, not a check: it writes every
// (method, path) answer before and after Ready, with and without an issuer
// path, to $STS_DEFERRED_DUMP, to be run on two trees and diffed (a change
// to routing answers byte for byte as before, request IDs and /metrics
// aside).
func TestDeferredAnswersDump(t *testing.T) {
	out := os.Getenv("STS_DEFERRED_DUMP")
	if out == "" {
		t.Skip("STS_DEFERRED_DUMP unset")
	}
	paths := []string{"/", "/x", "/livez", "/livez/", "/readyz", "/metrics", "/oauth2/token", "/oauth2/token/", "/oauth2/token/x",
		"/oauth2", "/oauth2/", "/v1/token", "/v1/oauthtoken", "/sts/v1/oauth2/token", "/sts/v1/oauth2/token/", "/v1/introspect",
		"/oauth2/revoke", "/oauth2/userinfo", "/oauth2/introspect", "/oauth2/authorize", "/oauth2/logout", "/credentials/revoke",
		"/login", "/login/", "/login/link", "/logout", "/tokens", "/tokens/", "/tokens/abc", "/tokens/abc/delete", "/tokens/delete-all",
		"/static", "/static/", "/static/app.css", "/login/oidc/g", "/login/oidc/g/callback",
		"/.well-known/jwks.json", "/.well-known/openid-configuration", "/.well-known/oauth-authorization-server",
		"/.well-known/oauth-authorization-server/sts", "/gitpod.v1.IdentityService", "/gitpod.v1.IdentityService/GetX",
		"/api/gitpod.v1.IdentityService/GetX", "/oauth2//token", "/a/../oauth2/token", "/oauth2/./token",
		"/sts", "/sts/", "/sts/oauth2/token", "/sts/oauth2/token/", "/sts/v1/token", "/sts/sts/v1/oauth2/token", "/sts/static",
		"/sts/tokens", "/sts/livez", "/sts/.well-known/jwks.json", "/sts/x", "/sts/gitpod.v1.IdentityService/GetX",
		"/sts/oauth2//token", "/sts/login/oidc/g/callback"}
	methods := []string{"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"}
	var buf bytes.Buffer
	for _, issuer := range []string{"", "/sts", "/oauth2"} {
		d := &Deferred{JSONAPIErrors: func(p string) bool { return p == "/sts/v1/oauth2/token" }}
		s := New(Options{GCInterval: time.Hour, IssuerPath: issuer, Mounters: []Mounter{mountStubs(deferredOuterRoutes), d}})
		h := s.Handler()
		dump := func(stage string) {
			for _, p := range paths {
				for _, m := range methods {
					r := httptest.NewRequest(m, "http://example.com"+p, nil)
					r.Header.Set("Origin", "https://o.example")
					r.Header.Set("Access-Control-Request-Method", "POST")
					w := httptest.NewRecorder()
					h.ServeHTTP(w, r)
					var hs []string
					for k, v := range w.Header() {
						if k == "X-Request-Id" || k == "Date" {
							continue
						}
						hs = append(hs, k+"="+strings.Join(v, ","))
					}
					sort.Strings(hs)
					fmt.Fprintf(&buf, "issuer=%q %s %s %s -> %d %v %q\n", issuer, stage, m, p, w.Code, hs, w.Body.String())
				}
			}
		}
		dump("before")
		if err := d.Ready(mountStubs(deferredLateRoutes)); err != nil {
			t.Fatal(err)
		}
		dump("after")
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDeferredLookupRacesReady: net/http's ServeMux looks a handler up
// under its lock and calls it after releasing it. A request whose lookup
// found only the catch-all just before Ready, and is handled after Ready
// (or while Ready runs), is answered 503 with Retry-After, as before
// Ready: never a 405 or 404, which x/oauth2 and the other clients take as
// final. It used to be judged against the mux Ready was growing. This is
// that interleaving, made deterministic.
func TestDeferredLookupRacesReady(t *testing.T) {
	token := func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "token") }
	for _, stage := range []string{"after Ready", "during Ready"} {
		d := &Deferred{}
		s := New(Options{GCInterval: time.Hour, Mounters: []Mounter{d}})
		r := httptest.NewRequest(http.MethodPost, "/oauth2/token", nil)
		h, pattern := s.mux.Load().Handler(r) // the lookup, before Ready
		if pattern != deferredPattern {
			t.Fatalf("pattern %q", pattern)
		}
		w := httptest.NewRecorder()
		err := d.Ready(MounterFunc(func(mux *http.ServeMux) {
			mux.HandleFunc("POST /oauth2/token", token)
			if stage == "during Ready" {
				h.ServeHTTP(w, r) // between two of Ready's registrations
			}
			mux.HandleFunc("OPTIONS /oauth2/token", func(http.ResponseWriter, *http.Request) {})
		}))
		if err != nil {
			t.Fatal(err)
		}
		if stage == "after Ready" {
			h.ServeHTTP(w, r)
		}
		if w.Code != 503 || w.Header().Get("Retry-After") == "" {
			t.Errorf("POST /oauth2/token looked up before Ready, served %s = %d Allow %q Retry-After %q %q; want 503 with Retry-After",
				stage, w.Code, w.Header().Get("Allow"), w.Header().Get("Retry-After"), w.Body.String())
		}
		// A request that arrives now is the route's.
		w = httptest.NewRecorder()
		s.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/oauth2/token", nil))
		if w.Code != 200 || w.Body.String() != "token" {
			t.Errorf("POST /oauth2/token after Ready = %d %q, want the route's answer", w.Code, w.Body.String())
		}
	}
}

// TestDeferredHammerReady: real HTTP over loopback, clients posting to the
// token routes while Ready runs (run it under -race): every answer is 503
// or the route's, never a 404 or 405 from a mux half built.
func TestDeferredHammerReady(t *testing.T) {
	var answers readyAnswers
	for round := range 40 {
		d := &Deferred{}
		s := New(Options{GCInterval: time.Hour, Mounters: []Mounter{mountStubs(deferredOuterRoutes), d}})
		srv := httptest.NewServer(s.Handler())
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				c := srv.Client()
				for n := 0; n < 400; n++ {
					select {
					case <-stop:
						return
					default:
					}
					path := []string{"/oauth2/token", "/sts/v1/oauth2/token", "/oauth2/revoke", "/v1/token"}[n%4]
					if !answers.post(t, c, srv.URL, path, round) {
						return
					}
				}
			})
		}
		time.Sleep(2 * time.Millisecond)
		if err := d.Ready(mountStubs(deferredLateRoutes)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
		close(stop)
		wg.Wait()
		srv.Close()
	}
	if n := answers.bad.Load(); n > 0 {
		t.Errorf("%d POSTs to a token route answered neither 503 nor the route, e.g. %v", n, answers.sample.Load())
	}
}

// TestDeferredReadyConflict: a late route that conflicts with one of the
// server's own (net/http panics on two patterns that match the same
// requests with neither more specific) is Ready's error, not a panic (on
// PostgreSQL Ready runs in boot's retry goroutine: the process would die
// with a stack trace). The server keeps answering as before Ready; a
// later Ready without the conflict (a start-up retry) replaces it whole.
func TestDeferredReadyConflict(t *testing.T) {
	d := &Deferred{}
	s := New(Options{GCInterval: time.Hour, Mounters: []Mounter{MounterFunc(func(mux *http.ServeMux) {
		mux.HandleFunc("GET /.well-known/oauth-authorization-server/{rest...}", func(http.ResponseWriter, *http.Request) {})
	}), d}})
	h := s.Handler()
	code := func(m, p string) int {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(m, p, nil))
		return w.Code
	}
	err := d.Ready(MounterFunc(func(mux *http.ServeMux) {
		mux.HandleFunc("POST /oauth2/token", func(http.ResponseWriter, *http.Request) {})
		mux.HandleFunc("GET /{a}/oauth-authorization-server/x", func(http.ResponseWriter, *http.Request) {})
	}))
	if err == nil || !strings.Contains(err.Error(), "conflicts with pattern") {
		t.Fatalf("Ready with a conflicting route = %v, want the conflict as an error", err)
	}
	if c := code("POST", "/oauth2/token"); c != 503 {
		t.Errorf("POST /oauth2/token after a failed Ready = %d, want 503 as before Ready", c)
	}
	if c := code("GET", "/livez"); c != 200 {
		t.Errorf("GET /livez after a failed Ready = %d, want 200", c)
	}
	// A route added with Server.Mount since New is in the mux Ready builds.
	s.Mount(MounterFunc(func(mux *http.ServeMux) { mux.HandleFunc("GET /since", func(http.ResponseWriter, *http.Request) {}) }))
	if err := d.Ready(MounterFunc(func(mux *http.ServeMux) {
		mux.HandleFunc("POST /oauth2/token", func(http.ResponseWriter, *http.Request) {})
	})); err != nil {
		t.Fatal(err)
	}
	if err := d.Ready(MounterFunc(func(mux *http.ServeMux) {
		mux.HandleFunc("POST /v1/token", func(http.ResponseWriter, *http.Request) {})
	})); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		m, p string
		want int
	}{{"POST", "/v1/token", 200}, {"POST", "/oauth2/token", 404}, {"GET", "/since", 200}, {"GET", "/.well-known/oauth-authorization-server/y", 200}, {"PUT", "/livez", 405}} {
		if got := code(c.m, c.p); got != c.want {
			t.Errorf("after the second Ready: %s %s = %d, want %d", c.m, c.p, got, c.want)
		}
	}
	if err := (&Deferred{}).Ready(); err == nil {
		t.Error("Ready of a Deferred no server mounted: nil error")
	}
}

// TestDeferredReadyWindow: between two of Ready's registrations
// (grants.Handler.Mount registers "POST /sts/v1/oauth2/token" and then
// the any-method Confluent refusal; "POST /oauth2/token" and then its
// CORS preflight), a request is answered as before Ready or as after,
// in its dialect. It used to get a plain-text 405 on the Confluent path
// (not the errors[] 503) and a 405 to a CORS preflight, from the mux
// Ready was growing.
func TestDeferredReadyWindow(t *testing.T) {
	d := &Deferred{JSONAPIErrors: func(p string) bool { return p == "/sts/v1/oauth2/token" }}
	s := New(Options{GCInterval: time.Hour, Mounters: []Mounter{d}})
	h := s.Handler()
	type ans struct {
		code        int
		ctype, body string
	}
	got := map[string]ans{}
	probe := func(stage, m, p string) {
		r := httptest.NewRequest(m, p, nil)
		r.Header.Set("Origin", "https://o.example")
		r.Header.Set("Access-Control-Request-Method", "POST")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		got[stage+" "+m+" "+p] = ans{w.Code, w.Header().Get("Content-Type"), requestIDField.ReplaceAllString(w.Body.String(), "ID")}
	}
	probe("before", "GET", "/sts/v1/oauth2/token")
	probe("before", "OPTIONS", "/oauth2/token")
	err := d.Ready(MounterFunc(func(mux *http.ServeMux) {
		mux.Handle("POST /oauth2/token", routeStub("POST /oauth2/token"))
		probe("window", "OPTIONS", "/oauth2/token")
		mux.Handle("OPTIONS /oauth2/token", routeStub("OPTIONS /oauth2/token"))
		mux.Handle("POST /sts/v1/oauth2/token", routeStub("POST /sts/v1/oauth2/token"))
		probe("window", "GET", "/sts/v1/oauth2/token")
		mux.Handle("/sts/v1/oauth2/token", routeStub("confluent 405"))
	}))
	if err != nil {
		t.Fatal(err)
	}
	probe("after", "GET", "/sts/v1/oauth2/token")
	probe("after", "OPTIONS", "/oauth2/token")
	for _, k := range []string{"GET /sts/v1/oauth2/token", "OPTIONS /oauth2/token"} {
		b, w, a := got["before "+k], got["window "+k], got["after "+k]
		if w != b && w != a {
			t.Errorf("%s in Ready's window = %+v; before %+v, after %+v", k, w, b, a)
		}
	}
}

var requestIDField = regexp.MustCompile(`"id":"[0-9a-f]+"`)

// TestIssuerPathRoutedByTheMuxThatCutIt: with issuer path /oauth2 (a route
// of ours that begins with it is never cut, docs/configuration.md), a
// POST /oauth2/token racing Ready is answered 503 or by the route, never
// 404. underIssuerPath decided whether to cut the path by one load of the
// server's mux and the route was chosen by a second: New's mux (only the
// catch-all takes /oauth2/token) had it cut to /token, Ready's (no
// /token route) then refused it 404, which x/oauth2 takes as final. Ready
// runs here between the two, in the tracing layer, deterministically.
func TestIssuerPathRoutedByTheMuxThatCutIt(t *testing.T) {
	d := &Deferred{}
	var once sync.Once
	late := MounterFunc(func(mux *http.ServeMux) {
		mux.HandleFunc("POST /oauth2/token", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "token") })
	})
	s := New(Options{GCInterval: time.Hour, IssuerPath: "/oauth2", Mounters: []Mounter{d},
		Trace: func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				once.Do(func() {
					if err := d.Ready(late); err != nil {
						t.Error(err)
					}
				})
				next.ServeHTTP(w, r)
			})
		}})
	for _, stage := range []string{"racing Ready", "after Ready"} {
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/oauth2/token", nil))
		if w.Code != http.StatusServiceUnavailable && (w.Code != http.StatusOK || w.Body.String() != "token") {
			t.Errorf("POST /oauth2/token %s, issuer path /oauth2 = %d %q, want 503 or the route's answer", stage, w.Code, w.Body.String())
		}
		if stage == "after Ready" && w.Code != http.StatusOK {
			t.Errorf("POST /oauth2/token after Ready = %d, want the route's answer", w.Code)
		}
	}
}

// TestIssuerPathHammerReady: TestIssuerPathRoutedByTheMuxThatCutIt
// through loopback HTTP, its timing left to the scheduler: clients post
// to /oauth2/token (issuer path /oauth2) and to /oauth2/v1/token (cut to
// the late POST /v1/token) while Ready runs; every answer is 503 or the
// route's.
func TestIssuerPathHammerReady(t *testing.T) {
	var answers readyAnswers
	for round := range 40 {
		d := &Deferred{}
		s := New(Options{GCInterval: time.Hour, IssuerPath: "/oauth2", Mounters: []Mounter{mountStubs(deferredOuterRoutes), d}})
		srv := httptest.NewServer(s.Handler())
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				c := srv.Client()
				<-start
				for n := range 15 {
					path := []string{"/oauth2/token", "/oauth2/v1/token"}[n%2]
					if !answers.post(t, c, srv.URL, path, round) {
						return
					}
				}
			})
		}
		close(start)
		time.Sleep(time.Duration(round%5) * 100 * time.Microsecond)
		if err := d.Ready(mountStubs(deferredLateRoutes)); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		srv.Close()
	}
	if n := answers.bad.Load(); n > 0 {
		t.Errorf("%d POSTs under issuer path /oauth2 answered neither 503 nor the route, e.g. %v", n, answers.sample.Load())
	}
}

// TestDeferredReadyPanicLogsStack: a Mounter that panics in Ready for
// another reason than a route conflict is Ready's error, and the log has
// its stack (where it panicked), as a handler's panic has
// (recoverPanics): the error alone kept the value and lost the place. A
// route conflict, whose error names where both patterns were
// registered, logs no stack.
func TestDeferredReadyPanicLogsStack(t *testing.T) {
	for _, c := range []struct {
		name      string
		m         MounterFunc
		wantStack bool
	}{
		{"a panicking Mounter", func(*http.ServeMux) { panicInMounter() }, true},
		{"a route conflict", func(mux *http.ServeMux) {
			mux.HandleFunc("GET /livez", func(http.ResponseWriter, *http.Request) {})
		}, false},
	} {
		logs := &syncBuffer{}
		d := &Deferred{}
		New(Options{GCInterval: time.Hour, Logger: slog.New(slog.NewJSONHandler(logs, nil)), Mounters: []Mounter{d}})
		err := d.Ready(c.m)
		if err == nil {
			t.Fatalf("%s: Ready = nil, want the panic as an error", c.name)
		}
		gotStack := strings.Contains(logs.String(), "panicInMounter")
		if c.wantStack && (!gotStack || !strings.Contains(err.Error(), "mounter fell over")) {
			t.Errorf("%s: Ready = %v, log %q; want the value in the error and the stack naming panicInMounter in the log", c.name, err, logs.String())
		}
		if !c.wantStack && (strings.Contains(logs.String(), "goroutine ") || !strings.Contains(err.Error(), "conflicts with pattern")) {
			t.Errorf("%s: Ready = %v, log %q; want the conflict in the error and no stack", c.name, err, logs.String())
		}
	}
}

//go:noinline
func panicInMounter() { panic("mounter fell over") }

// readyAnswers counts the answers of the hammer tests' POSTs that are
// neither 503 nor the route's, keeping one for the failure message.
type readyAnswers struct {
	bad    atomic.Int64
	sample atomic.Value
}

// post sends a client_credentials form to base+path and records the
// answer; it reports false (the test failed) when the request did.
func (a *readyAnswers) post(t *testing.T, c *http.Client, base, path string, round int) bool {
	resp, err := c.Post(base+path, "application/x-www-form-urlencoded", strings.NewReader("grant_type=client_credentials"))
	if err != nil {
		t.Error(err)
		return false
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 && resp.StatusCode != 200 {
		a.bad.Add(1)
		a.sample.Store(fmt.Sprintf("round %d POST %s = %d Allow %q %q", round, path, resp.StatusCode, resp.Header.Get("Allow"), b))
	}
	return true
}
