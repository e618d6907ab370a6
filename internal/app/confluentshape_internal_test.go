package app

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/grants"
	"github.com/opensts/sts/internal/server"
)

// TestConfluentServerErrorsShape: an error the server writes itself on
// the Confluent path, here the 500 of a handler that panicked, is
// Confluent's Failure ({"errors":[{id,status,code,title,detail}]}, the
// shape its clients decode for 500) with the request ID as its id; the
// standard endpoint keeps its OAuth-shaped body (docs/api.md "Confluent
// STS dialect").
func TestConfluentServerErrorsShape(t *testing.T) {
	var o server.Options
	boundOptions(config.DefaultConfig(), &o)
	o.Logger = slog.New(slog.DiscardHandler)
	o.Mounters = []server.Mounter{server.MounterFunc(func(mux *http.ServeMux) {
		boom := func(http.ResponseWriter, *http.Request) { panic("boom") }
		mux.HandleFunc("POST "+grants.PathConfluentToken, boom)
		mux.HandleFunc("POST "+grants.PathToken, boom)
	})}
	h := server.New(o).Handler()
	post := func(path string) (*httptest.ResponseRecorder, map[string]any) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader("grant_type=x"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		h.ServeHTTP(rec, req)
		var body map[string]any
		b, _ := io.ReadAll(rec.Body)
		if err := json.Unmarshal(b, &body); err != nil {
			t.Fatalf("%s: %d %q: %v", path, rec.Code, b, err)
		}
		return rec, body
	}

	rec, body := post(grants.PathConfluentToken)
	errs, _ := body["errors"].([]any)
	if rec.Code != 500 || len(errs) != 1 {
		t.Fatalf("Confluent path: %d %v, want 500 with one errors[] entry", rec.Code, body)
	}
	e0, _ := errs[0].(map[string]any)
	// server_error, the code the dialect's own 500 carries (grants
	// observe.go), so a client tells one kind of 500 from none.
	if id := rec.Header().Get("X-Request-Id"); id == "" || e0["id"] != id || e0["status"] != "500" || e0["code"] != "server_error" || e0["title"] == "" {
		t.Errorf("Confluent path: errors[0] = %v, X-Request-Id %q", e0, id)
	}
	if rec, body = post(grants.PathToken); rec.Code != 500 || body["error"] == nil || body["errors"] != nil {
		t.Errorf("standard path: %d %v, want the OAuth-shaped 500", rec.Code, body)
	}
}

// TestConfluentBodyTooLargeShape: on the running server, a body over
// http.max_body_bytes on the Confluent path is refused in the dialect's
// errors[] shape, the same entry whether its declared length is refused
// before the dialect is reached or a chunked body is cut off while the
// dialect reads it (docs/api.md "Confluent STS dialect").
func TestConfluentBodyTooLargeShape(t *testing.T) {
	cfg := config.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.MaxBodyBytes = 1024
	cfg.Derive()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(t.Context(), cfg, Options{Logger: slog.New(slog.DiscardHandler), Listener: ln})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	base := "http://" + ln.Addr().String()
	client := &http.Client{Timeout: 10 * time.Second}
	for i := 0; ; i++ {
		resp, err := client.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if i == 200 {
			t.Fatalf("not ready after 10 s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	form := "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&subject_token=" + strings.Repeat("x", 2000)
	entry := func(path string, chunked bool) map[string]any {
		req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if chunked {
			req.ContentLength = -1
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct{ Errors []map[string]any }
		b, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(b, &body); err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge || len(body.Errors) != 1 {
			t.Fatalf("%s (chunked %v): %d %s, want 413 with one errors[] entry", path, chunked, resp.StatusCode, b)
		}
		e := body.Errors[0]
		if e["id"] != resp.Header.Get("X-Request-Id") {
			t.Errorf("%s (chunked %v): id %v, X-Request-Id %q", path, chunked, e["id"], resp.Header.Get("X-Request-Id"))
		}
		return e
	}
	declared, chunked := entry(grants.PathConfluentToken, false), entry(grants.PathConfluentToken, true)
	for _, k := range []string{"status", "code", "title", "detail"} {
		if declared[k] != chunked[k] {
			t.Errorf("errors[0].%s: %v for a declared length over the cap, %v for a chunked body (the dialect's)", k, declared[k], chunked[k])
		}
	}
}
