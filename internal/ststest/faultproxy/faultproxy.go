// Package faultproxy is a TCP proxy for fault tests: it forwards
// connections to a backend (PostgreSQL, Redis) until told to refuse them
// or to black-hole them, the two ways a database outage looks from sts
// (docs/reliability.md). It is a test kit with no dependency on the rest of
// sts.
package faultproxy

import (
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Mode is what the proxy does with traffic.
type Mode int32

// Modes of a Proxy.
const (
	// Pass forwards every connection to the backend.
	Pass Mode = iota
	// Refuse closes every open connection and every new one at once, like
	// a database that is down (connection reset).
	Refuse
	// BlackHole keeps every connection open and accepts new ones, but
	// forwards nothing in either direction, like a network partition or a
	// frozen host: a client waits until its own deadline.
	BlackHole
)

// Proxy forwards loopback connections to a backend address.
type Proxy struct {
	ln     net.Listener
	target string
	mode   atomic.Int32

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// New starts a proxy on a free loopback port in front of target
// ("host:port") and closes it when the test ends.
func New(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.accept)
	t.Cleanup(p.Close)
	return p
}

// Addr is the proxy's "host:port".
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Set switches the mode; Refuse also drops every open connection.
func (p *Proxy) Set(m Mode) {
	p.mode.Store(int32(m))
	if m == Refuse {
		p.mu.Lock()
		for c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
	}
}

// Mode returns the current mode.
func (p *Proxy) Mode() Mode { return Mode(p.mode.Load()) }

// Close stops the proxy and every connection through it.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.ln.Close()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.Mode() == Refuse || !p.track(c) {
			c.Close()
			continue
		}
		p.wg.Go(func() { p.serve(c) })
	}
}

func (p *Proxy) serve(c net.Conn) {
	defer p.untrack(c)
	if p.Mode() == BlackHole {
		// Hold the connection open, answering nothing.
		_, _ = io.Copy(io.Discard, c)
		return
	}
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	if !p.track(up) {
		return
	}
	defer p.untrack(up)
	done := make(chan struct{}, 2)
	p.wg.Go(func() { p.pipe(up, c); done <- struct{}{} })
	p.wg.Go(func() { p.pipe(c, up); done <- struct{}{} })
	<-done
	// One side ended: end both (the deferred untracks close them).
}

// pipe copies src to dst while the mode is Pass; in BlackHole it keeps
// reading and drops what it reads, so neither side sees the other again.
func (p *Proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && p.Mode() == Pass {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// PostgresDSN puts a proxy in front of the PostgreSQL server of dsn and
// returns it with dsn rewritten to reach the server through it. dsn must
// be in URL form (postgres://…); a keyword/value DSN skips the test, which
// has no host to rewrite.
func PostgresDSN(t testing.TB, dsn string) (*Proxy, string) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		t.Skip("keyword/value STS_TEST_POSTGRES_DSN; this test needs the URL form")
	}
	target := u.Host
	if !strings.Contains(target, ":") {
		target += ":5432"
	}
	p := New(t, target)
	u.Host = p.Addr()
	return p, u.String()
}
