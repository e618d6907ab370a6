package server

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// TestConnectionLimitClosesExemptStreams: a long-lived gRPC stream
// (streamExempt: health Watch, reflection) waits on its client by design
// and its body is never cut off for a request slot, but at the cap its
// HTTP/2 connection gives way like any connection waiting on its client:
// anyone may open a reflection stream, and one counted as at work would
// hold the cap for nothing (docs/security.md F-81).
func TestConnectionLimitClosesExemptStreams(t *testing.T) {
	for _, path := range []string{"/grpc.health.v1.Health/Watch", "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"} {
		t.Run(path, func(t *testing.T) { testConnectionLimitClosesExemptStream(t, path) })
	}
}

func testConnectionLimitClosesExemptStream(t *testing.T, path string) {
	entered := make(chan struct{}, 1)
	s, _ := newTest(t, Options{GCInterval: time.Hour, MaxConnections: 1}, func(mux *http.ServeMux) {
		mux.HandleFunc("POST "+path, func(w http.ResponseWriter, r *http.Request) {
			entered <- struct{}{}
			_, _ = io.ReadAll(r.Body) // waits on the client until the test ends
		})
	})
	s.idleCloseAfter = 200 * time.Millisecond
	s.slow.grace = 200 * time.Millisecond
	base := serveOn(t, s)

	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	c := &http.Client{Timeout: 20 * time.Second, Transport: tr}
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, base+path, pr)
	req.Header.Set("Content-Type", "application/grpc")
	done := make(chan error, 1)
	go func() {
		resp, err := c.Do(req)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		done <- err
	}()
	t.Cleanup(func() {
		pw.Close()
		<-done
		c.CloseIdleConnections()
	})
	_, _ = pw.Write([]byte{0, 0, 0, 0, 0}) // an empty gRPC message: the stream is open
	<-entered

	// Past the grace, a new connection takes the stream's place.
	start := time.Now()
	for {
		resp, err := (&http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}).Get(base + "/livez")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("no new connection served within 5 s while a %s stream waited on its client at the cap", path)
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case err := <-done:
		done <- err // for the cleanup
		if err == nil {
			t.Errorf("the %s stream given way ended without an error", path)
		}
	case <-time.After(3 * time.Second):
		t.Errorf("the %s stream given way has not ended", path)
	}
}
