package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestRunSendsExactlyN: the count is what the instruction figures are
// divided by, so it must be exact, with the form and header the server
// authenticates.
func TestRunSendsExactlyN(t *testing.T) {
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Basic x" || r.FormValue("grant_type") != "client_credentials" {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		got.Add(1)
	}))
	defer srv.Close()
	var log bytes.Buffer
	if failed := run(srv.URL, "Basic x", 37, 4, &log); failed != 0 {
		t.Fatalf("%d failed: %s", failed, log.String())
	}
	if got.Load() != 37 {
		t.Fatalf("server saw %d requests, want 37", got.Load())
	}
}

// TestRunCountsRefusals: a non-200 answer is a failure, never counted as
// a measured request.
func TestRunCountsRefusals(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	var log bytes.Buffer
	if failed := run(srv.URL, "Basic x", 5, 2, &log); failed != 5 {
		t.Fatalf("failed = %d, want 5", failed)
	}
	if !strings.Contains(log.String(), "503") {
		t.Fatalf("log %q does not name the status", log.String())
	}
}
