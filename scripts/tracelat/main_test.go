package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime/trace"
	"strings"
	"testing"
	"time"
)

// TestAnalyzeFindsRequests traces a real loopback HTTP server serving
// paced requests on one kept connection, and checks that analyze finds
// them, that their parts add up, that the handler's sleep is where it
// belongs, and that no request takes longer on the server than the
// client saw.
func TestAnalyzeFindsRequests(t *testing.T) {
	const n, sleep, pause = 15, 2 * time.Millisecond, 20 * time.Millisecond
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		time.Sleep(sleep)
		_, _ = w.Write([]byte("ok"))
	}))
	defer srv.Close()
	client := srv.Client()

	var buf bytes.Buffer
	if err := trace.Start(&buf); err != nil {
		t.Fatal(err)
	}
	var slowest time.Duration
	for i := range n {
		t0 := time.Now()
		resp, err := client.Post(srv.URL, "text/plain", strings.NewReader("body"))
		if err != nil {
			trace.Stop()
			t.Fatalf("request %d: %v", i, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		slowest = max(slowest, time.Since(t0))
		time.Sleep(pause)
	}
	trace.Stop()

	reqs, _, err := analyze(&buf)
	if err != nil {
		t.Fatal(err)
	}
	paced := 0
	for _, r := range reqs {
		if r.paced {
			paced++
		}
		var sum time.Duration
		for _, d := range r.parts {
			sum += d
		}
		if sum != r.total() {
			t.Errorf("parts add up to %v, the request took %v", sum, r.total())
		}
		if r.parts["Waiting:sleep"] < sleep {
			t.Errorf("the handler's sleep: %v in Waiting:sleep, want at least %v (parts %v)", r.parts["Waiting:sleep"], sleep, r.parts)
		}
		if r.total() > slowest {
			t.Errorf("a request took %v on the server, longer than the slowest the client saw (%v)", r.total(), slowest)
		}
	}
	// A request is seen to start only when its connection's goroutine
	// waited before it (see the package comment). The first comes with
	// the connection; the others arrive on the idle, kept connection. On
	// a loaded machine (CI: 13 of 15 found) the goroutine may not yet
	// have got back to waiting when the next arrives, so that one is not
	// seen, or is seen to start at the end of the previous one's
	// background read rather than on the network.
	if len(reqs) < n/2 || len(reqs) > n {
		t.Errorf("found %d requests of %d sent", len(reqs), n)
	}
	if paced < n/3 {
		t.Errorf("found %d paced requests of %d, sent %v apart", paced, len(reqs), pause)
	}
}
