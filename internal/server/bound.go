package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/opensts/sts/internal/oauth2"
)

// Class is a route class of admission control: each has its own bound on
// requests in flight, so a flood of token requests cannot starve the
// health checks or the admin API (docs/reliability.md#admission-control).
type Class int

// Route classes.
const (
	ClassAPI   Class = iota // Connect and gRPC services, the web pages, anything else
	ClassToken              // the OAuth endpoints
	ClassOps                // /livez, /readyz, /metrics, discovery, the JWKS
	numClasses
)

var classNames = [numClasses]string{"api", "token", "ops"}

func (c Class) String() string { return classNames[c] }

// opsClass is the default classifier: the ops endpoints the server mounts
// itself are ClassOps, the rest ClassAPI.
func opsClass(r *http.Request) Class {
	switch r.URL.Path {
	case "/livez", "/readyz", "/metrics":
		return ClassOps
	}
	return ClassAPI
}

// admit bounds the requests in flight per class: a request over its
// class's limit is answered 503 with Retry-After at once, before its body
// is read or any storage call is made. A limit of 0 admits everything. A
// class with a gate (gates[c] != nil) admits through it instead: the
// request may wait for a running slot (see gate).
//
// A request over the limit first takes the slot of an admitted one of its
// class whose body has stalled (no byte from its client) for bodies.after:
// that one's body is cut off, so it answers 400 and leaves. Otherwise a
// client that stalls its bodies would hold the class's slots for all of
// http.read_timeout, and over HTTP/2 one connection carries as many
// requests as the class admits (docs/security.md F-73).
func admit(limits [numClasses]int, gates [numClasses]*gate, bodies *bodyWaits, classify func(*http.Request) Class, jsonAPI func(string) bool, onShed func(class string)) func(http.Handler) http.Handler {
	var inflight [numClasses]atomic.Int64
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hasBody := r.Body != nil && r.Body != http.NoBody
			var lc *limitConn // its connection under the cap
			if hasBody || r.ProtoMajor == 2 {
				lc, _ = r.Context().Value(connKey{}).(*limitConn)
			}
			if lc != nil && r.ProtoMajor == 2 {
				// Its HTTP/2 connection is at work while a handler is
				// (closeIdle, docs/security.md F-81).
				lc.streamBegin()
				defer lc.streamEnd()
			}
			c := classify(r)
			if g := gates[c]; g != nil {
				if !g.acquire(r.Context()) {
					if r.Context().Err() != nil || !bodies.evict(c) {
						onShed(c.String())
						shed(w, r, jsonAPI)
						return
					}
					g.admitOver() // the slot the cut-off request is leaving
				}
				defer g.release()
			} else if limit := int64(limits[c]); limit > 0 {
				n := inflight[c].Add(1)
				defer inflight[c].Add(-1)
				if n > limit && !bodies.evict(c) {
					onShed(c.String())
					shed(w, r, jsonAPI)
					return
				}
			}
			if hasBody {
				// The long-lived gRPC streams wait on their clients
				// by design: their body is never cut off to free a
				// request slot. Their connection still gives way at
				// the cap like any connection waiting on its client:
				// anyone may open a reflection stream, and one that
				// counted as at work would hold a connection for free
				// (docs/security.md F-81).
				bounded := (gates[c] != nil || limits[c] > 0) && !streamExempt(r)
				bw := bodies.await(w, r, lc, c, bounded)
				defer bw.done()
				r.Body = bw
				next.ServeHTTP(w, r)
				if bw.failed && !wroteHeader(w) {
					// Over HTTP/1 a failed read (http.read_timeout, a
					// cut) also cancels the request's context, and a
					// handler that takes that for a client gone answers
					// nothing: the server would send 200 and an empty
					// body (docs/security.md F-74).
					w.Header().Set("Connection", "close")
					const msg = "request body not received in time"
					switch {
					case jsonAPI != nil && jsonAPI(r.URL.Path):
						writeJSONAPIError(w, http.StatusRequestTimeout, RequestID(r.Context()), "invalid_request", msg)
					case writeRPCError(w, r, connect.CodeDeadlineExceeded, msg):
					default:
						writeJSON(w, http.StatusRequestTimeout, errorBody{Error: msg, RequestID: RequestID(r.Context())})
					}
				}
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// shed answers an overloaded request: 503, the one Retry-After policy and
// a small OAuth-shaped body. The connection is kept: closing it made every
// shed client reconnect, and under overload a new connection waits in the
// accept queue behind all the others (seconds, measured with
// scripts/bench.sh OVERLOAD=5000), while a kept one costs only its share of
// http.max_connections.
func shed(w http.ResponseWriter, r *http.Request, jsonAPI func(string) bool) {
	markShed(w)
	h := w.Header()
	oauth2.SetRetryAfter(h, 0)
	if jsonAPI != nil && jsonAPI(r.URL.Path) {
		writeJSONAPIError(w, http.StatusServiceUnavailable, RequestID(r.Context()), "temporarily_unavailable", "the server is overloaded, retry later")
		return
	}
	if writeRPCError(w, r, connect.CodeUnavailable, "the server is overloaded, retry later") {
		return
	}
	// Shared values (length = capacity, so an Add elsewhere copies) and a
	// fixed body: a shed answer allocates nothing of its own beyond the
	// one Retry-After policy's.
	h["Cache-Control"] = shedCacheControl
	h["Content-Type"] = shedContentType
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write(shedBody)
}

var (
	shedCacheControl = []string{"no-store"}
	shedContentType  = []string{"application/json"}
	shedBody         = []byte(`{"error":"temporarily_unavailable","error_description":"the server is overloaded, retry later"}` + "\n")
)

// streamExempt reports the long-lived gRPC streams, which get no call
// deadline.
func streamExempt(r *http.Request) bool {
	p := r.URL.Path
	return strings.HasPrefix(p, "/grpc.reflection.") || p == "/grpc.health.v1.Health/Watch"
}

// limitListener caps the open connections at n. A connection over the cap
// is never served: a short-lived goroutine (at most shedWorkers at once,
// each done within shedDeadline) reads the start of its request, answers
// a fixed 503 (Retry-After, Connection: close) and closes it; beyond
// shedWorkers it is closed at once. A connection flood so costs a few
// bytes each, not a request's worth of memory.
//
// And it costs little CPU: over the cap, the listener takes at most one
// connection per refuseEvery to refuse it; the others wait in the kernel's
// accept queue (which drops new SYNs once full) until a slot frees or
// their turn to be refused comes. Refusing as fast as connections came
// (accept, close: up to 20 000 a second under a flood of clients that
// reconnect at once) took 16 % of the server's CPU in a profile, CPU the
// admitted requests then lacked (docs/reliability.md#the-token-gate-measured).
//
// Waiting connections give way: at the cap, a new connection is served in
// place of a connection that has used up its allowance for waiting on its
// client (the one overdue longest). Kept alive between requests (as the
// HTTP server reports through connState), it may wait closeIdleAfter: a
// client must expect a kept connection to be closed while idle (RFC 9112
// §9.5; the idle timeout does the same), so the cap bounds the connections
// with work, and a fleet of keep-alive clients whose idle connections fill
// it is not locked out. Sending a request head (from accept, or from the
// first byte of the next one on a kept connection) or a body (while the
// handler waits for it, as await marks, or the server reads the rest after
// the handler), it is held to the minimum rate of slowRule: a slowloris's
// head or body, which would otherwise hold its slot for all of
// http.read_header_timeout or http.read_timeout, again and again, gives
// way within seconds, an honest slow client's does not (docs/security.md
// F-72, F-79, F-80). Over HTTP/2 a connection carries many requests, each
// with its own allowance: it waits on its client when every handler
// running on it waits for more of its body, and gives way once the last
// of their allowances has run out (F-81). A busy connection (a request
// being served: a flood's) is never closed this way.
type limitListener struct {
	net.Listener
	overload []byte // the answer to a connection over the cap (overloadResponse)
	sem      chan struct{}
	workers  chan struct{}
	shed     func()
	next     time.Time // the next refusal, at the earliest (Accept's goroutine only)

	closeIdleAfter time.Duration
	slow           *slowRule
	closedIdle     func()
	// tls, when set, is the listener's TLS configuration for refusals,
	// HTTP/1.1 only (the fixed answer is HTTP/1.1).
	tls   *tls.Config
	mu    sync.Mutex
	conns map[*limitConn]struct{} // the open connections
}

const (
	shedWorkers  = 64
	shedDeadline = 200 * time.Millisecond
	// closeIdleAfter: how long a kept connection must have been idle
	// before a new one may take its place at the cap. A flood's
	// connections never wait that long; a keep-alive client's between
	// its requests do.
	closeIdleAfter = time.Second
	// slowGrace and minRate: under pressure, a request head or body may
	// keep its client waiting for slowGrace plus a second for every
	// minRate bytes it has sent (slowRule). A 1 KiB/s link (a poor mobile
	// one) delivers a full-size TCP segment (1 448 bytes) every 1.4 s:
	// slowGrace covers the first, and minRate is half its rate. Apache's
	// mod_reqtimeout asks 500 bytes a second of heads and bodies, Kestrel
	// and IIS 240, always; here only under pressure. A trickle far below
	// the rate (a byte a second) gives way once slowGrace is over.
	slowGrace = 2 * time.Second
	minRate   = 512 // bytes a second
	// refuseEvery paces refusals: 1 000 a second.
	refuseEvery = time.Millisecond
	// refuseEveryTLS paces refusals over TLS with an ECDSA or Ed25519
	// key, each a full handshake: 100 a second. One ECDSA P-256 signature
	// is ~0.07 ms of CPU (go test -bench of crypto/ecdsa SignASN1, 2
	// cores shared), so about 1 % of a core with the key exchange.
	refuseEveryTLS = 10 * time.Millisecond
	// refuseEveryRSA paces refusals over TLS with an RSA (or unknown)
	// key: 10 a second. One RSA signature is ~1.9 ms (2048 bits) or
	// ~8.7 ms (4096 bits) of CPU (crypto/rsa SignPSS, same bench): at
	// refuseEveryTLS that was ~19 % or ~87 % of a core, spent while
	// over the cap and at no cost to the client; now ~2 % or ~9 %.
	refuseEveryRSA = 100 * time.Millisecond
)

// newLimitListener caps ln's open connections at n > 0; shed counts a
// refused connection, closedIdle an idle or slow one closed to make room.
func newLimitListener(ln net.Listener, n int, closeIdleAfter time.Duration, slow *slowRule, shed, closedIdle func()) *limitListener {
	return &limitListener{Listener: ln, overload: overloadResponse(""), sem: make(chan struct{}, n), workers: make(chan struct{}, shedWorkers), shed: shed,
		closeIdleAfter: closeIdleAfter, slow: slow, closedIdle: closedIdle, conns: make(map[*limitConn]struct{})}
}

// slowRule is the least a client must send while the server waits on it,
// under pressure (at http.max_connections, or over a class's
// http.max_in_flight): a request head or body may wait grace, plus perByte
// for every byte that has come. Only the time spent waiting counts (not a
// handler's work between its reads), so its allowance is kept as the
// instant it runs out while waiting, and as what is left of it otherwise
// (docs/security.md F-79, F-80).
type slowRule struct {
	grace   time.Duration
	perByte time.Duration // 1 s / the minimum rate
}

func newSlowRule() *slowRule {
	return &slowRule{grace: slowGrace, perByte: time.Second / minRate}
}

// connState is the HTTP server's ConnState hook: it gives a connection
// gone idle its closeIdleAfter, and marks a busy one (wrap gives a new one
// its head's allowance). It runs twice a request, so it takes no lock.
func (l *limitListener) connState(c net.Conn, state http.ConnState) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	lc, ok := c.(*limitConn)
	if !ok {
		return
	}
	switch state {
	case http.StateNew:
		// Waiting for its first head since wrap.
	case http.StateIdle:
		lc.idle.Store(true)
		lc.due.Store(time.Now().UnixNano() + int64(l.closeIdleAfter))
	default:
		lc.idle.Store(false)
		lc.due.Store(0)
	}
}

type connKey struct{}

// connContext is the HTTP server's ConnContext hook: it lets limitBody
// find the connection a request came on (awaitBody).
func (l *limitListener) connContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if lc, ok := c.(*limitConn); ok {
		return context.WithValue(ctx, connKey{}, lc)
	}
	return ctx
}

// closeIdle closes the connection waiting on its client (idle, sending a
// head, or a body) whose allowance ran out first, if one has, and reports
// whether it did: its slot is then free. A connection that turns busy or
// receives a byte meanwhile is left alone.
func (l *limitListener) closeIdle() bool {
	now := time.Now().UnixNano()
	var oldest *limitConn
	var due int64
	var streams bool // oldest is an HTTP/2 connection whose handlers wait
	l.mu.Lock()
	for c := range l.conns {
		t, s := c.due.Load(), false
		if t == 0 && c.running.Load() > 0 {
			c.mu.Lock()
			t, s = c.streamsDue(), true
			c.mu.Unlock()
		}
		if t != 0 && (oldest == nil || t < due) {
			oldest, due, streams = c, t, s
		}
	}
	l.mu.Unlock()
	if oldest == nil || due > now {
		return false
	}
	if streams {
		// Still so? Its body Reads that return from now on fail
		// (readEnd): their answers could not be sent.
		oldest.mu.Lock()
		t := oldest.streamsDue()
		oldest.gone = t != 0 && t <= now
		gone := oldest.gone
		oldest.mu.Unlock()
		if !gone {
			return false
		}
	} else if !oldest.due.CompareAndSwap(due, 0) {
		return false
	}
	_ = oldest.Close() // releases its slot
	l.closedIdle()
	return true
}

// wrap registers c in a slot taken for it, waiting for its first head.
func (l *limitListener) wrap(c net.Conn) net.Conn {
	lc := &limitConn{Conn: c, slow: l.slow}
	lc.due.Store(time.Now().UnixNano() + int64(l.slow.grace))
	lc.release = func() {
		l.mu.Lock()
		delete(l.conns, lc)
		l.mu.Unlock()
		<-l.sem
	}
	l.mu.Lock()
	l.conns[lc] = struct{}{}
	l.mu.Unlock()
	return lc
}

// overloadResponse is the whole answer to a connection over the cap. It
// carries hsts as Strict-Transport-Security when set: written before any
// handler runs, it would otherwise be the one answer of an https issuer
// without it (docs/security.md T-207).
func overloadResponse(hsts string) []byte {
	const body = `{"error":"temporarily_unavailable","error_description":"too many connections, retry later"}` + "\n"
	var sts string
	if hsts != "" {
		sts = "Strict-Transport-Security: " + hsts + "\r\n"
	}
	return []byte("HTTP/1.1 503 Service Unavailable\r\nRetry-After: " + oauth2.RetryAfterValue(0) +
		"\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n" + sts + "Connection: close\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		// At the cap, wait for a slot or for the next refusal's turn.
		if wait := time.Until(l.next); wait > 0 && len(l.sem) == cap(l.sem) {
			t := time.NewTimer(wait)
			select {
			case l.sem <- struct{}{}:
				t.Stop()
				c, err := l.Listener.Accept()
				if err != nil {
					<-l.sem
					return nil, err
				}
				return l.wrap(c), nil
			case <-t.C:
			}
		}
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.sem <- struct{}{}:
			return l.wrap(c), nil
		default:
		}
		if l.closeIdle() {
			// Its close freed a slot, and only this goroutine
			// takes slots.
			l.sem <- struct{}{}
			return l.wrap(c), nil
		}
		l.next = time.Now().Add(l.refusePace())
		l.shed()
		select {
		case l.workers <- struct{}{}:
			go l.refuse(c)
		default:
			_ = c.Close()
		}
	}
}

// refusePace is the least time between two refusals: a TLS handshake
// costs far more CPU than a plain refusal, an RSA one most. The key is
// looked up at each refusal, as GetCertificate may change it.
func (l *limitListener) refusePace() time.Duration {
	if l.tls == nil {
		return refuseEvery
	}
	var cert *tls.Certificate
	if len(l.tls.Certificates) > 0 {
		cert = &l.tls.Certificates[0]
	} else if l.tls.GetCertificate != nil {
		cert, _ = l.tls.GetCertificate(&tls.ClientHelloInfo{})
	}
	if cert != nil {
		switch cert.PrivateKey.(type) {
		case *ecdsa.PrivateKey, ed25519.PrivateKey:
			return refuseEveryTLS
		}
	}
	return refuseEveryRSA
}

// refuse answers c's first request with the fixed 503, reading it first
// so the client does not meet an answer before it has asked (and the
// close does not reset a request still unread). On a TLS listener the
// answer goes over TLS: written plain into a TLS connection it reached the
// client as a broken handshake, without a status or Retry-After
// (docs/security.md F-75).
func (l *limitListener) refuse(c net.Conn) {
	defer func() { <-l.workers }()
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(shedDeadline))
	if l.tls != nil {
		c = tls.Server(c, l.tls) // its first Read runs the handshake
	}
	buf := make([]byte, 1024)
	if _, err := c.Read(buf); err != nil {
		return
	}
	_, _ = c.Write(l.overload)
	if cw, ok := c.(interface{ CloseWrite() error }); ok { // TCP, TLS
		_ = cw.CloseWrite()
	}
	// Drain what else the client sent until it closes or the deadline.
	for {
		if _, err := c.Read(buf); err != nil {
			return
		}
	}
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
	slow    *slowRule
	// due: while it waits on its client, the instant its allowance runs
	// out (unix nanoseconds); 0: busy.
	due  atomic.Int64
	idle atomic.Bool  // kept alive between requests: a byte begins a head
	got  atomic.Int64 // bytes read off it
	// Over HTTP/2, the requests it carries (docs/security.md F-81):
	// running counts their handlers (admit; written under mu, read
	// without it as a hint), reading those of them waiting in a body
	// Read; gone: closed to make room.
	mu      sync.Mutex
	running atomic.Int32
	reading map[*bodyWait]struct{}
	gone    bool
}

// streamBegin and streamEnd bracket the handler of a request over HTTP/2.
func (c *limitConn) streamBegin() {
	c.mu.Lock()
	c.running.Add(1)
	c.mu.Unlock()
}

func (c *limitConn) streamEnd() {
	c.mu.Lock()
	c.running.Add(-1)
	c.mu.Unlock()
}

// readBegin and readEnd bracket a body Read over HTTP/2, b.own set;
// readEnd reports false if the connection was closed to make room
// meanwhile.
func (c *limitConn) readBegin(b *bodyWait) {
	c.mu.Lock()
	if c.reading == nil {
		c.reading = make(map[*bodyWait]struct{})
	}
	c.reading[b] = struct{}{}
	c.mu.Unlock()
}

func (c *limitConn) readEnd(b *bodyWait) bool {
	c.mu.Lock()
	delete(c.reading, b)
	gone := c.gone
	c.mu.Unlock()
	return !gone
}

// streamsDue is, over HTTP/2, when every handler running on c waits in a
// body Read, the instant the last of their allowances runs out; 0
// otherwise (a handler at work, or none). Under c.mu.
func (c *limitConn) streamsDue() int64 {
	n := int(c.running.Load())
	if c.gone || n == 0 || len(c.reading) != n {
		return 0
	}
	var last int64
	for b := range c.reading {
		t := b.own.Load()
		if t == 0 {
			return 0 // evict is cutting it off: its handler goes on
		}
		last = max(last, t)
	}
	return last
}

// Read credits what came to the allowance of the head or body the
// connection waits for. On a kept connection the first byte begins the
// next request's head, which gets an allowance of its own from then on,
// as net/http starts http.read_header_timeout only once the next request's
// bytes come: an honest client whose head takes a while must not be
// judged by how long it was idle before (docs/security.md F-80).
func (c *limitConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.got.Add(int64(n))
		c.credit(n)
	}
	return n, err
}

func (c *limitConn) credit(n int) {
	add := int64(n) * int64(c.slow.perByte)
	for {
		due := c.due.Load()
		if due == 0 {
			return // busy, or closed to make room
		}
		idle := c.idle.Load()
		next := due + add
		if idle {
			next = time.Now().UnixNano() + int64(c.slow.grace) + add
		}
		if c.due.CompareAndSwap(due, next) {
			if idle {
				c.idle.Store(false)
			}
			return
		}
	}
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// bodyWaits tracks the admitted requests whose bodies are still arriving,
// per class, so that a request over its class's limit can take the slot of
// one that has waited on its client too long (admit, docs/security.md F-73).
type bodyWaits struct {
	slow *slowRule // how long a body may wait before it gives way
	cut  *prometheus.CounterVec
	mu   sync.Mutex
	sets [numClasses]map[*bodyWait]struct{}
}

func newBodyWaits(slow *slowRule, m *Metrics) *bodyWaits {
	b := &bodyWaits{slow: slow, cut: newBodyCutCounter(m)}
	for i := range b.sets {
		b.sets[i] = make(map[*bodyWait]struct{})
	}
	return b
}

// errBodyCut is the read error of a body cut off to serve another request.
var errBodyCut = errors.New("request body cut off: it arrived too slowly while others waited")

// await wraps r's body, r admitted in class c; bounded: whether c has a
// limit that another request may take its slot under.
//
// While the handler waits in a Read for more of the body, the request
// waits on its client, within the allowance of b.slow: slow.grace, plus
// slow.perByte for every byte of the body that came, counting only the
// time spent waiting. A body that arrives at the minimum rate or faster,
// however unevenly, keeps its allowance; a trickle or a stalled body runs
// out of it. So, over HTTP/1 on a connection under the cap, does its
// connection, whose allowance the body's is (bytes are credited as they
// come off the connection, also within a long Read, a chunked body's, and
// those that came with the head as the handler reads them), and
// also after the handler returned with the body unfinished (the server
// then reads the rest to keep the connection): at the cap it gives way
// like a slowloris's unfinished head (docs/security.md F-72, F-79). A
// request being served, its body all read, is busy and never cut off or
// closed.
func (b *bodyWaits) await(w http.ResponseWriter, r *http.Request, lc *limitConn, c Class, bounded bool) *bodyWait {
	bw := &bodyWait{ReadCloser: r.Body, slow: b.slow, allow: int64(b.slow.grace), left: r.ContentLength}
	bw.due = &bw.own
	if lc != nil {
		if r.ProtoMajor == 1 {
			bw.conn, bw.due = lc, &lc.due
		} else {
			bw.streams = lc
		}
	}
	if bounded {
		bw.owner, bw.class, bw.w = b, c, w
		b.mu.Lock()
		b.sets[c][bw] = struct{}{}
		b.mu.Unlock()
	}
	return bw
}

// evict cuts off the body of the request of class c, waiting on its
// client, whose allowance ran out first, if one has, and reports whether
// it did: its slot is then the caller's.
func (b *bodyWaits) evict(c Class) bool {
	now := time.Now().UnixNano()
	var oldest *bodyWait
	var due int64
	b.mu.Lock()
	for bw := range b.sets[c] {
		if t := bw.due.Load(); t != 0 && (oldest == nil || t < due) {
			oldest, due = bw, t
		}
	}
	if oldest == nil || due > now || !oldest.due.CompareAndSwap(due, 0) {
		b.mu.Unlock()
		return false
	}
	oldest.cut = true // read by its Read only once due is 0 (see Read)
	delete(b.sets[c], oldest)
	// Its blocked Read returns now (a read deadline in the past, on the
	// HTTP/1 connection or the HTTP/2 stream). Under b.mu: its handler
	// cannot have ended (done takes b.mu first), and over HTTP/2 the
	// server reuses an ended stream's writer state for another stream,
	// whose body a deadline set later would cut.
	_ = http.NewResponseController(oldest.w).SetReadDeadline(time.Now())
	b.mu.Unlock()
	b.cut.WithLabelValues(c.String()).Inc()
	return true
}

// bodyWait is one admitted request's body while it arrives. One handler
// goroutine reads a body; due (and cut, under owner.mu) are shared with
// evict, and with the connection cap through conn.
type bodyWait struct {
	io.ReadCloser
	conn     *limitConn // its HTTP/1 connection under the cap, or nil
	streams  *limitConn // its HTTP/2 connection under the cap, or nil
	owner    *bodyWaits // nil: not to be cut off (its class has no limit)
	class    Class
	w        http.ResponseWriter
	slow     *slowRule
	allow    int64         // what is left of its allowance while no Read waits (nanoseconds; < 0: overdue)
	left     int64         // bytes declared and not yet read; -1: chunked
	finished bool          // the body was read to its end (or failed)
	failed   bool          // a Read failed (not EOF): the body never arrived whole
	due      *atomic.Int64 // while a Read waits, when its allowance runs out; 0 otherwise: &own, or &conn.due
	own      atomic.Int64
	cut      bool // evict cut the body off
	// Over conn: the bytes its Reads returned, those read off conn
	// (and credited there) during them, and the bytes credited here
	// that conn had read before (with the head).
	read, off, early int64
}

func (b *bodyWait) Read(p []byte) (int, error) {
	if b.finished {
		return b.ReadCloser.Read(p)
	}
	var before int64
	if b.conn != nil {
		before = b.conn.got.Load()
	}
	b.due.Store(time.Now().UnixNano() + b.allow)
	if b.streams != nil {
		b.streams.readBegin(b)
	}
	n, err := b.ReadCloser.Read(p)
	cut := b.streams != nil && !b.streams.readEnd(b)
	due := b.due.Swap(0)
	if due == 0 {
		// evict (or the connection cap) took it meanwhile: whatever
		// this Read returned, the request has given its slot away
		// (or its connection, over HTTP/1).
		cut = cut || b.conn != nil
		if b.owner != nil {
			b.owner.mu.Lock()
			cut = cut || b.cut
			b.owner.mu.Unlock()
		}
	}
	if cut {
		b.finished, b.failed = true, true
		return 0, errBodyCut
	}
	if due != 0 {
		b.allow = due - time.Now().UnixNano()
	}
	credit := int64(n)
	if b.conn != nil {
		// Over a connection under the cap, its Read credited the bytes
		// read off it meanwhile; the body's bytes that came with the
		// head, read off it before, are credited here, once.
		b.read += int64(n)
		b.off += b.conn.got.Load() - before
		credit = max(0, b.read-b.off-b.early)
		b.early += credit
	}
	b.allow += credit * int64(b.slow.perByte)
	if b.left > 0 {
		b.left -= int64(n)
	}
	// A decoder may stop at the last byte without reading the EOF.
	b.finished = err != nil || b.left == 0
	b.failed = err != nil && err != io.EOF
	return n, err
}

// done is called when the handler has returned. An unfinished body marks
// the connection waiting, with what is left of the body's allowance: the
// server reads the rest (or closes). The handler's own time did not count,
// so one that ran long does not see its connection closed for it.
func (b *bodyWait) done() {
	if b.owner != nil {
		b.owner.mu.Lock()
		delete(b.owner.sets[b.class], b)
		b.owner.mu.Unlock()
	}
	if !b.finished && b.conn != nil {
		b.conn.due.Store(time.Now().UnixNano() + b.allow)
	}
}

// newShedCounter registers sts_http_shed_total on m's registry.
func newShedCounter(m *Metrics) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sts_http_shed_total",
		Help: "Requests and connections refused with 503 by admission control, by route class (\"connection\" for the connection cap).",
	}, []string{"class"})
	m.registry.MustRegister(c)
	return c
}

// newBodyCutCounter registers sts_http_body_cut_total on m's registry.
func newBodyCutCounter(m *Metrics) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sts_http_body_cut_total",
		Help: "Request bodies cut off, by route class, to give their request's slot to a request over the class's limit: stalled, or arriving below the minimum rate.",
	}, []string{"class"})
	m.registry.MustRegister(c)
	return c
}

// newIdleClosedCounter registers sts_http_idle_connections_closed_total on
// m's registry.
func newIdleClosedCounter(m *Metrics) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sts_http_idle_connections_closed_total",
		Help: "Connections closed at the connection cap to serve a new connection: kept alive and idle, or waiting for a request head or body stalled or arriving below the minimum rate.",
	})
	m.registry.MustRegister(c)
	return c
}
