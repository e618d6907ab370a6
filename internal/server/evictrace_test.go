package server

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestAdmissionEvictRacesHandlerEnd (docs/security.md F-73): a request
// over its class's limit cuts off the body of one that waits on its
// client, then sets that request's read deadline. Over HTTP/2 the cut
// request's handler may end at the same moment (its Read returned data),
// and the server then pools its stream's writer state for another stream:
// a deadline set after the handler ended raced that (and could cut another
// request's body). Run under -race: victims whose bodies arrive a byte
// every 200 µs are cut all the time while newcomers find the class full.
func TestAdmissionEvictRacesHandlerEnd(t *testing.T) {
	var cuts atomic.Int64
	s, _ := newTest(t, Options{GCInterval: time.Hour, MaxInFlight: [numClasses]int{ClassAPI: 4}}, func(mux *http.ServeMux) {
		mux.HandleFunc("POST /read", func(w http.ResponseWriter, r *http.Request) {
			if _, err := io.ReadAll(r.Body); err != nil {
				cuts.Add(1)
				WriteBodyError(w, r, err)
			}
		})
	})
	// Any body waiting in a Read may be cut: the race is in the cut.
	s.slow.grace, s.slow.perByte = time.Microsecond, 0
	base := serveOn(t, s)
	protos := new(http.Protocols)
	protos.SetUnencryptedHTTP2(true)
	h2 := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Protocols: protos}}
	defer h2.CloseIdleConnections()
	deadline := time.Now().Add(3 * time.Second)
	var wg sync.WaitGroup
	for range 4 { // trickling victims, renewed
		wg.Go(func() {
			for time.Now().Before(deadline) {
				pr, pw := io.Pipe()
				go func() {
					for range 1000 {
						if _, err := pw.Write([]byte("a")); err != nil {
							return
						}
						time.Sleep(200 * time.Microsecond)
					}
					pw.Close()
				}()
				req, _ := http.NewRequest("POST", base+"/read", pr)
				req.ContentLength = 1000
				if resp, err := h2.Do(req); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				pw.CloseWithError(io.ErrClosedPipe)
			}
		})
	}
	for range 4 { // newcomers finding the class full
		wg.Go(func() {
			for time.Now().Before(deadline) {
				req, _ := http.NewRequest("POST", base+"/read", strings.NewReader("x"))
				if resp, err := h2.Do(req); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	if cuts.Load() == 0 {
		t.Error("no body was cut off: the test did not exercise evict")
	}
}
