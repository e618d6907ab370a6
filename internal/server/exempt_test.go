package server

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// TestConnectionLimitKeepsExemptStreams: a long-lived gRPC stream
// (streamExempt: health Watch, reflection) waits on its client by design,
// so at the cap its HTTP/2 connection is not one that gives way, however
// long the stream's body waits (docs/security.md F-79).
func TestConnectionLimitKeepsExemptStreams(t *testing.T) {
	entered := make(chan struct{}, 1)
	s, _ := newTest(t, Options{GCInterval: time.Hour, MaxConnections: 1}, func(mux *http.ServeMux) {
		mux.HandleFunc("POST /grpc.health.v1.Health/Watch", func(w http.ResponseWriter, r *http.Request) {
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
	req, _ := http.NewRequest(http.MethodPost, base+"/grpc.health.v1.Health/Watch", pr)
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

	// Well past the grace: the stream's connection is still the one the
	// cap holds, so a new connection is refused.
	time.Sleep(1500 * time.Millisecond)
	resp, err := (&http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}).Get(base + "/livez")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a new connection while a health Watch stream holds the cap: %d, want 503 (the stream's connection was closed)", resp.StatusCode)
	}
	select {
	case err := <-done:
		t.Errorf("the Watch stream ended while its client was still sending: %v", err)
	default:
	}
}
