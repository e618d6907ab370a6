package app

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

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
	if id := rec.Header().Get("X-Request-Id"); id == "" || e0["id"] != id || e0["status"] != "500" || e0["code"] == "" || e0["title"] == "" {
		t.Errorf("Confluent path: errors[0] = %v, X-Request-Id %q", e0, id)
	}
	if rec, body = post(grants.PathToken); rec.Code != 500 || body["error"] == nil || body["errors"] != nil {
		t.Errorf("standard path: %d %v, want the OAuth-shaped 500", rec.Code, body)
	}
}
