package server

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// TestIssuerPathBeforeEveryLayer: a request under the issuer's path is
// served as the root route it names, and every layer sees it so: the
// admission class of <issuer>/oauth2/token is the token class, not the
// API class a path the classifier does not know falls into
// (docs/reliability.md, admission by route class).
func TestIssuerPathBeforeEveryLayer(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []string
	)
	classify := func(r *http.Request) Class {
		mu.Lock()
		seen = append(seen, r.URL.Path)
		mu.Unlock()
		if r.URL.Path == "/oauth2/token" {
			return ClassToken
		}
		return ClassAPI
	}
	s, _ := newTest(t, Options{GCInterval: time.Hour, IssuerPath: "/sts", Classify: classify}, func(mux *http.ServeMux) {
		mux.HandleFunc("POST /oauth2/token", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("token")) })
	})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	resp, err := http.Post(srv.URL+"/sts/oauth2/token", "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /sts/oauth2/token = %d, want 200", resp.StatusCode)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen[0] != "/oauth2/token" {
		t.Errorf("classified by %q, want the route's path /oauth2/token", seen)
	}
}

// TestIssuerPathKeepsEncodedSlashes: the issuer's path is cut only where
// the raw path spells it as configured, so an encoded slash stays part of
// a segment as it does at the root. Before, a prefix spelled with an
// escape (/%73ts) dropped the raw path and /%73ts/oauth2%2Ftoken reached
// POST /oauth2/token, past a proxy rule on the path.
func TestIssuerPathKeepsEncodedSlashes(t *testing.T) {
	s, _ := newTest(t, Options{GCInterval: time.Hour, IssuerPath: "/sts"}, func(mux *http.ServeMux) {
		mux.HandleFunc("POST /oauth2/token", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("token")) })
	})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	for path, want := range map[string]int{
		"/sts/oauth2/token":     http.StatusOK,
		"/oauth2%2Ftoken":       http.StatusNotFound,
		"/sts/oauth2%2Ftoken":   http.StatusNotFound,
		"/%73ts/oauth2%2Ftoken": http.StatusNotFound,
		"/sts%2Foauth2/token":   http.StatusNotFound,
	} {
		resp, err := http.Post(srv.URL+path, "application/x-www-form-urlencoded", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("POST %s = %d, want %d", path, resp.StatusCode, want)
		}
	}
}
