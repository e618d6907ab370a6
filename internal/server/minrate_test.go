package server

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// These tests run with the server's own numbers (a 2 s grace, 512 bytes a
// second, docs/security.md F-79, F-80), in real time on loopback.

// knock asks for GET /livez on a fresh connection every interval until
// stop is closed, and returns the statuses it got (0: the request failed).
func knock(base string, every time.Duration, stop <-chan struct{}) <-chan []int {
	out := make(chan []int, 1)
	go func() {
		var got []int
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				out <- got
				return
			case <-tick.C:
			}
			code := 0
			if resp, err := client.Get(base + "/livez"); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				code = resp.StatusCode
			}
			got = append(got, code)
		}
	}()
	return out
}

// trickle writes head, then a byte every interval until stop is closed.
func trickle(t *testing.T, addr, head string, every time.Duration, stop <-chan struct{}, wg *sync.WaitGroup) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() {
		defer c.Close()
		if _, err := c.Write([]byte(head)); err != nil {
			return
		}
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := c.Write([]byte("a")); err != nil {
					return
				}
			}
		}
	})
}

// firstOK polls a fresh GET /livez every 100 ms until it is answered 200 or
// within has passed, and returns how long that took (within: never).
func firstOK(base string, within time.Duration) time.Duration {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	start := time.Now()
	for time.Since(start) < within {
		if resp, err := client.Get(base + "/livez"); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return within
}

// TestConnectionLimitClosesTricklingBodies (docs/security.md F-79): at the
// connection cap, bodies that never stall for a second but arrive a byte
// every 400 ms (far below 512 bytes a second) give way within a couple of
// seconds, not at http.read_timeout (15 s).
func TestConnectionLimitClosesTricklingBodies(t *testing.T) {
	s, _ := newTest(t, Options{GCInterval: time.Hour, MaxConnections: 2}, func(mux *http.ServeMux) {
		mux.HandleFunc("POST /read", func(w http.ResponseWriter, r *http.Request) { io.ReadAll(r.Body) })
	})
	base := serveOn(t, s)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() { close(stop); wg.Wait() })
	for range 2 {
		trickle(t, base[len("http://"):], "POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n", 400*time.Millisecond, stop, &wg)
	}
	time.Sleep(500 * time.Millisecond)
	if got := freshLivez(t, base); got != http.StatusServiceUnavailable {
		t.Errorf("a new connection half a second into the trickles: %d, want 503 (within the grace)", got)
	}
	const within = 6 * time.Second
	took := firstOK(base, within) + 500*time.Millisecond
	if took >= within {
		t.Fatalf("no new connection served within %s of two bodies trickling a byte every 400 ms on the cap", within)
	}
	t.Logf("a trickling body gave way after %s", took.Round(10*time.Millisecond))
	if n := counterValue(t, s, "sts_http_idle_connections_closed_total", ""); n < 1 {
		t.Errorf("sts_http_idle_connections_closed_total = %v, want >= 1", n)
	}
}

// TestAdmissionTricklingBodiesGiveWay (docs/security.md F-79): over
// HTTP/2, requests whose bodies arrive a byte every 400 ms hold their
// class's slots: a request over the limit takes the slot of one whose body
// arrives below 512 bytes a second, once its grace is over.
func TestAdmissionTricklingBodiesGiveWay(t *testing.T) {
	readErrs := make(chan error, 4)
	s, _ := newTest(t, Options{GCInterval: time.Hour, MaxInFlight: [numClasses]int{ClassAPI: 2}}, func(mux *http.ServeMux) {
		mux.HandleFunc("POST /read", func(w http.ResponseWriter, r *http.Request) {
			if _, err := io.ReadAll(r.Body); err != nil {
				readErrs <- err
				WriteBodyError(w, r, err)
			}
		})
	})
	base := serveOn(t, s)
	protos := new(http.Protocols)
	protos.SetUnencryptedHTTP2(true)
	h2 := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Protocols: protos}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() { close(stop); wg.Wait(); h2.CloseIdleConnections() })
	for range 2 {
		pr, pw := io.Pipe()
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, base+"/read", pr)
			req.ContentLength = 1000
			if resp, err := h2.Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
		wg.Go(func() {
			defer pw.Close()
			tick := time.NewTicker(400 * time.Millisecond)
			defer tick.Stop()
			for {
				if _, err := pw.Write([]byte("a")); err != nil {
					return
				}
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
		})
	}
	post := func() int {
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := client.Post(base+"/read", "text/plain", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	time.Sleep(500 * time.Millisecond)
	if got := post(); got != http.StatusServiceUnavailable {
		t.Errorf("a request half a second into the trickles: %d, want 503 (within the grace)", got)
	}
	start := time.Now()
	for post() != http.StatusOK {
		if time.Since(start) > 6*time.Second {
			t.Fatal("no request served within 6 s of two bodies trickling a byte every 400 ms in the class")
		}
		time.Sleep(100 * time.Millisecond)
	}
	select {
	case err := <-readErrs:
		if !errors.Is(err, errBodyCut) {
			t.Errorf("the trickling request's body read: %v, want errBodyCut", err)
		}
	case <-time.After(2 * time.Second):
		t.Error("no trickling request cut off")
	}
	if n := counterValue(t, s, "sts_http_body_cut_total", "api"); n < 1 {
		t.Errorf("sts_http_body_cut_total{class=\"api\"} = %v, want >= 1", n)
	}
}

// mobileSegment is how long a full-size TCP segment (1448 bytes) takes
// over a 1 KiB/s link (a poor mobile one).
const mobileSegment = 1414 * time.Millisecond

// segmentedPost is a client behind a slow link: it sends a POST of a form
// of size bytes, and the server receives it as the link delivers it, in
// full-size TCP segments (1448 bytes), each whole perSegment after the
// last (mobileSegment: a 1 KiB/s link). It returns the status and the
// bytes the handler read, as the handler reported them on got.
func segmentedPost(t *testing.T, addr string, size int, perSegment time.Duration, got <-chan int) (int, int) {
	t.Helper()
	const segment = 1448
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := []byte(fmt.Sprintf("POST /form HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s", size, strings.Repeat("a", size)))
	for len(req) > 0 {
		n := min(segment, len(req))
		time.Sleep(perSegment * time.Duration(n) / segment)
		if _, err := c.Write(req[:n]); err != nil {
			t.Fatalf("the slow client's write: %v", err)
		}
		req = req[n:]
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("the slow client's answer: %v (its connection was closed)", err)
	}
	resp.Body.Close()
	select {
	case n := <-got:
		return resp.StatusCode, n
	default:
		return resp.StatusCode, -1
	}
}

// TestHonestMobileClientKept (docs/security.md F-80): under pressure, a
// client on a 1 KiB/s link, whose request arrives in full-size segments
// 1.4 s apart, is served; others are refused meanwhile. It was closed at
// the connection cap (no byte of its head a second after accept) and cut
// off over its class's limit (no byte of its body for a second).
//
// A knock whose handler runs once the slow client's handler has read all
// of its body (a slot freed by then, however late the knock came under
// load) answers 204 and is not counted: only a knock served while the
// slow client still held the cap or the class (200) is a failure.
func TestHonestMobileClientKept(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		size int
	}{
		{"cap", Options{MaxConnections: 1}, 2 << 10},
		{"class", Options{MaxInFlight: [numClasses]int{ClassAPI: 1}}, 4 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := make(chan int, 1)
			entered := make(chan struct{}, 1)
			var served atomic.Bool // the slow client's body all read
			knocked := func(w http.ResponseWriter) {
				if served.Load() {
					w.WriteHeader(http.StatusNoContent)
				}
			}
			o := tc.o
			o.GCInterval = time.Hour
			s, _ := newTest(t, o, func(mux *http.ServeMux) {
				mux.HandleFunc("GET /knock", func(w http.ResponseWriter, r *http.Request) { knocked(w) })
				mux.HandleFunc("POST /form", func(w http.ResponseWriter, r *http.Request) {
					if r.ContentLength == 1 { // a knock
						knocked(w)
						return
					}
					entered <- struct{}{}
					b, err := io.ReadAll(r.Body)
					served.Store(true)
					got <- len(b)
					if err != nil {
						WriteBodyError(w, r, err)
					}
				})
			})
			base := serveOn(t, s)
			stop := make(chan struct{})
			// Others, each on a connection of its own: at the cap from
			// the start, in the class once the slow client is admitted.
			knock := func(client *http.Client) (*http.Response, error) {
				return client.Get(base + "/knock")
			}
			admitted := make(chan struct{})
			if tc.name == "class" {
				knock = func(client *http.Client) (*http.Response, error) {
					return client.Post(base+"/form", "text/plain", strings.NewReader("x"))
				}
				go func() {
					select {
					case <-entered:
						close(admitted)
					case <-stop:
					}
				}()
			} else {
				close(admitted)
			}
			knocks := make(chan []int, 1)
			go func() {
				var codes []int
				defer func() { knocks <- codes }()
				select {
				case <-admitted:
				case <-stop:
					return
				}
				client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
				for {
					select {
					case <-stop:
						return
					case <-time.After(200 * time.Millisecond):
					}
					code := 0
					if resp, err := knock(client); err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						code = resp.StatusCode
					}
					codes = append(codes, code)
				}
			}()
			status, n := segmentedPost(t, base[len("http://"):], tc.size, mobileSegment, got)
			close(stop)
			codes := <-knocks
			if status != http.StatusOK || n != tc.size {
				t.Errorf("the slow client: %d, its handler read %d bytes; want 200 and %d", status, n, tc.size)
			}
			refused := 0
			for i, c := range codes {
				switch c {
				case http.StatusServiceUnavailable:
					refused++
				case http.StatusNoContent: // once the slow client was served
				default:
					t.Errorf("knock %d of %d while the slow client held the %s: %d, want 503", i, len(codes), tc.name, c)
				}
			}
			if refused < 5 {
				t.Errorf("only %d knocks refused while the slow client was served (%v)", refused, codes)
			}
		})
	}
}

// TestConnectionLimitKeepsNextHead (docs/security.md F-80): on a kept
// connection, the next request's head is timed from its first byte, not
// from when the connection went idle: a client that sends it half a second
// after its last answer over a 4 KiB/s link (a 4 KiB head, a bearer token
// and a DPoP proof, done 1.25 s after the answer) is served at the cap.
func TestConnectionLimitKeepsNextHead(t *testing.T) {
	s, _ := newTest(t, Options{GCInterval: time.Hour, MaxConnections: 1}, nil)
	base := serveOn(t, s)
	c, err := net.Dial("tcp", base[len("http://"):])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	get := func(head string) (int, error) {
		if _, err := c.Write([]byte(head)); err != nil {
			return 0, err
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := get("GET /livez HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil || code != http.StatusOK {
		t.Fatalf("the first request: %d %v", code, err)
	}
	stop := make(chan struct{})
	knocks := knock(base, 100*time.Millisecond, stop)
	time.Sleep(500 * time.Millisecond)
	head := "GET /livez HTTP/1.1\r\nHost: x\r\nX-Pad: " + strings.Repeat("p", 4<<10-40) + "\r\n\r\n"
	for len(head) > 1<<10 {
		if _, err := c.Write([]byte(head[:1<<10])); err != nil {
			t.Fatal(err)
		}
		head = head[1<<10:]
		time.Sleep(250 * time.Millisecond)
	}
	code, err := get(head)
	close(stop)
	codes := <-knocks
	if err != nil || code != http.StatusOK {
		t.Errorf("the next request, its head begun half a second after the first's answer: %d %v, want 200 (the connection kept)", code, err)
	}
	for i, c := range codes {
		if c != http.StatusServiceUnavailable {
			t.Errorf("knock %d of %d: %d, want 503", i, len(codes), c)
		}
	}
}

// TestBodyBytesWithHeadCredited (docs/security.md F-79): the body bytes
// that arrive in the same segment as the head count towards the body's
// allowance, with the connection cap set (the default) as without it. A
// client at ~630 B/s (above the minimum rate), in full-size segments 2.3 s
// apart, is served over its class's limit; with the cap, the ~1.3 KiB of
// body in the head's segment went uncredited and its body was cut off
// before the next segment came.
func TestBodyBytesWithHeadCredited(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
	}{
		{"class", Options{MaxInFlight: [numClasses]int{ClassAPI: 1}}},
		{"class+cap", Options{MaxInFlight: [numClasses]int{ClassAPI: 1}, MaxConnections: 16}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := make(chan int, 1)
			entered := make(chan struct{}, 1)
			o := tc.o
			o.GCInterval = time.Hour
			s, _ := newTest(t, o, func(mux *http.ServeMux) {
				mux.HandleFunc("POST /form", func(w http.ResponseWriter, r *http.Request) {
					if r.ContentLength == 1 { // a knock
						return
					}
					entered <- struct{}{}
					b, err := io.ReadAll(r.Body)
					got <- len(b)
					if err != nil {
						WriteBodyError(w, r, err)
					}
				})
			})
			base := serveOn(t, s)
			// Others of the class, once the slow client is admitted,
			// so that its body is under pressure.
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				select {
				case <-entered:
				case <-stop:
					return
				}
				client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
				for {
					select {
					case <-stop:
						return
					case <-time.After(200 * time.Millisecond):
					}
					if resp, err := client.Post(base+"/form", "text/plain", strings.NewReader("x")); err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
				}
			}()
			const size = 4 << 10
			status, n := segmentedPost(t, base[len("http://"):], size, 2300*time.Millisecond, got)
			close(stop)
			<-done
			if status != http.StatusOK || n != size {
				t.Errorf("a ~630 B/s client (segments 2.3 s apart): %d, its handler read %d bytes; want 200 and %d (body cut: %v)",
					status, n, size, counterValue(t, s, "sts_http_body_cut_total", "api"))
			}
		})
	}
}
