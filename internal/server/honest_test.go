package server

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rateReader sends left bytes at bps bytes a second, steadily, in a
// chunk every 20 ms.
type rateReader struct {
	left int
	bps  int
}

func (r *rateReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	n := min(len(p), r.left, r.bps/50)
	time.Sleep(20 * time.Millisecond)
	copy(p, bytes.Repeat([]byte("a"), n))
	r.left -= n
	return n, nil
}

// TestAdmissionHonestSlowUploadKept (docs/security.md F-73): a body that
// arrives slowly but steadily (24 KiB a second, well within
// http.max_body_bytes and http.read_timeout) is not a trickle to cut off:
// only a body that has stalled for its grace gives its slot away. A
// request that finds the class full meanwhile is shed.
func TestAdmissionHonestSlowUploadKept(t *testing.T) {
	got := make(chan error, 1)
	s, _ := newTest(t, Options{GCInterval: time.Hour, MaxInFlight: [numClasses]int{ClassAPI: 1}}, func(mux *http.ServeMux) {
		mux.HandleFunc("POST /upload", func(w http.ResponseWriter, r *http.Request) {
			_, err := io.ReadAll(r.Body)
			got <- err
			if err != nil {
				WriteBodyError(w, r, err)
			}
		})
		mux.HandleFunc("POST /small", func(w http.ResponseWriter, r *http.Request) { io.ReadAll(r.Body) })
	})
	// A grace shorter than the 2 s upload, so that it is over meanwhile.
	s.slow.grace = 500 * time.Millisecond
	base := serveOn(t, s)
	protos := new(http.Protocols)
	protos.SetUnencryptedHTTP2(true)
	h2 := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Protocols: protos}}
	t.Cleanup(h2.CloseIdleConnections)
	status := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", base+"/upload", &rateReader{left: 48 << 10, bps: 24 << 10})
		req.ContentLength = 48 << 10
		resp, err := h2.Do(req)
		if err != nil {
			status <- -1
			return
		}
		resp.Body.Close()
		status <- resp.StatusCode
	}()
	time.Sleep(s.slow.grace + 700*time.Millisecond)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Post(base+"/small", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a request while the class's one slot had a steady upload: %d, want 503", resp.StatusCode)
	}
	if err := <-got; err != nil {
		t.Errorf("the steady upload's read: %v, want all of it", err)
	}
	if code := <-status; code != http.StatusOK {
		t.Errorf("the steady upload answered %d, want 200", code)
	}
}

// TestConnectionLimitHonestSlowUploadKept (docs/security.md F-72): at the
// connection cap, an HTTP/1 connection whose body arrives slowly but
// steadily is not closed for a new connection; only one whose body has
// stalled for the wait gives way.
func TestConnectionLimitHonestSlowUploadKept(t *testing.T) {
	got := make(chan error, 1)
	s, _ := newTest(t, Options{GCInterval: time.Hour, MaxConnections: 1}, func(mux *http.ServeMux) {
		mux.HandleFunc("POST /upload", func(w http.ResponseWriter, r *http.Request) {
			_, err := io.ReadAll(r.Body)
			got <- err
		})
	})
	s.idleCloseAfter = 300 * time.Millisecond
	s.slow.grace = 300 * time.Millisecond
	base := serveOn(t, s)
	c, err := net.Dial("tcp", base[len("http://"):])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const size = 12 << 10 // 1 s at 12 KiB/s
	c.Write([]byte("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 12288\r\n\r\n"))
	go io.Copy(c, &rateReader{left: size, bps: 12 << 10})
	time.Sleep(500 * time.Millisecond)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(base + "/livez")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a new connection while the cap's one connection had a steady upload: %d, want 503", resp.StatusCode)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Errorf("the steady upload's read: %v, want all of it", err)
		}
	case <-time.After(3 * time.Second):
		t.Error("the steady upload did not finish")
	}
}
