package web_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/opensts/sts/internal/app"
	"github.com/opensts/sts/internal/config"
)

// TestUpstreamTokenRedirectNotFollowed: the upstream sign-in's code
// exchange follows no redirect (docs/security.md T-189). The token
// endpoint's answer, a 307, 308 or 302 to another server, used to be
// followed by a plain http.Client: that server received the
// authorization code with its PKCE verifier and the client secret (HTTP
// Basic, kept by net/http for the same host name on another port). Now
// the redirect is the exchange's answer: the sign-in fails and nothing is
// sent on, to another server or to another path of the provider's host.
func TestUpstreamTokenRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var received []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		received = append(received, describeTokenRequest(r))
		mu.Unlock()
		http.Error(w, "not here", http.StatusTeapot)
	}))
	t.Cleanup(other.Close)
	p := newIDP(t)
	s := startServer(t, oidcYAML(p, "email", "default"))
	p.signInAs(map[string]any{"sub": "u-1", "email": "dora@example.com", "email_verified": true})
	for _, to := range []idpRedirect{
		{http.StatusTemporaryRedirect, other.URL + "/token"},
		{http.StatusPermanentRedirect, other.URL + "/token"},
		{http.StatusFound, other.URL + "/token"},
		{http.StatusTemporaryRedirect, p.URL + "/moved"}, // the same host
	} {
		p.redirectTokens(&to)
		r := signInWith(t, follower(t), s, "test", "/tokens")
		if r.status != http.StatusUnauthorized || !strings.Contains(r.body, "Sign-in did not complete") {
			t.Errorf("%d to %s from the token endpoint: the sign-in answered %d\n%s", to.Status, to.URL, r.status, r.body)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, got := range received {
		t.Errorf("the server the token endpoint redirected to received: %s", got)
	}
	for _, got := range p.moved() {
		t.Errorf("the provider's /moved, which its token endpoint redirected to, received: %s", got)
	}
	// The same provider still signs people in once it answers.
	p.redirectTokens(nil)
	if r := signInWith(t, follower(t), s, "test", "/tokens"); !strings.Contains(r.body, "Signed in as <strong>dora@example.com</strong>") {
		t.Errorf("after the redirects: %d\n%s", r.status, r.body)
	}
}

// TestUpstreamSignInDialsOnlyAllowedAddresses: the upstream sign-in's
// fetches go through the dialer the rest of sts uses for outbound
// fetches (docs/security.md T-189, T-59). An issuer whose name resolves
// to a loopback address, without federation.allow_loopback, used to be
// dialed by a plain http.Client (and through any proxy of the
// environment); now no connection is made and the sign-in fails.
func TestUpstreamSignInDialsOnlyAllowedAddresses(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var dialed atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			dialed.Add(1)
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	// "localhost" itself is refused at start (TestUpstreamIssuerRefusedAtStart):
	// the dial is judged with another name that resolves to loopback, this
	// machine's own host name where /etc/hosts maps it so.
	host := loopbackName(t)
	y := "web:\n  login:\n    oidc:\n      - id: inner\n        issuer: https://" + host + ":" + port +
		"\n        client_id: sts-web\n        client_secret: s\n        link_claim: email\n"
	s := startServer(t, y) // no federation.allow_loopback
	r := signInWith(t, follower(t), s, "inner", "/tokens")
	if r.status != http.StatusServiceUnavailable || !strings.Contains(r.body, "cannot be reached") {
		t.Errorf("the sign-in answered %d\n%s", r.status, r.body)
	}
	if n := dialed.Load(); n != 0 {
		t.Errorf("the issuer on a loopback address was dialed %d times without federation.allow_loopback", n)
	}
	if !strings.Contains(s.logs.String(), "loopback address") {
		t.Errorf("the log does not say the address was refused:\n%s", s.logs)
	}
}

// TestUpstreamIssuerRefusedAtStart: an issuer the sign-in's client would
// refuse by its URL alone (plain http, a loopback address without
// federation.allow_loopback, the cloud metadata address) stops sts at
// start, naming the key, not at the first sign-in (docs/security.md
// T-59, T-189).
func TestUpstreamIssuerRefusedAtStart(t *testing.T) {
	t.Parallel()
	for _, issuer := range []string{"http://127.0.0.1:9", "https://127.0.0.1:9", "https://localhost:9", "https://169.254.169.254", "http://idp.example.com"} {
		err := startWithIssuer(t, "", issuer)
		var perm *app.PermanentError
		switch {
		case err == nil:
			t.Errorf("issuer %s: sts started", issuer)
		case !errors.As(err, &perm) || !strings.Contains(err.Error(), "web.login.oidc[inner].issuer"):
			t.Errorf("issuer %s: %v, want a permanent error naming web.login.oidc[inner].issuer", issuer, err)
		}
	}
}

// TestUpstreamPrivateIssuerNeedsAllowPrivate: an issuer on a private
// network (a self-hosted Keycloak on 10/8, 192.168/16, a Docker bridge in
// 172.16/12, a ULA) is refused at start without federation.allow_private
// and starts with it; the metadata addresses stay refused even then
// (docs/security.md T-59, T-189).
func TestUpstreamPrivateIssuerNeedsAllowPrivate(t *testing.T) {
	t.Parallel()
	const allow = "federation:\n  allow_private: true\n"
	for _, issuer := range []string{"https://10.0.0.5/realms/corp", "https://192.168.1.10:8443/realms/corp", "https://172.18.0.3:8443/realms/corp", "https://[fd12:3456::5]/realms/corp"} {
		if err := startWithIssuer(t, "", issuer); err == nil || !strings.Contains(err.Error(), "private address") {
			t.Errorf("issuer %s without federation.allow_private: %v, want refused as a private address", issuer, err)
		}
		if err := startWithIssuer(t, allow, issuer); err != nil {
			t.Errorf("issuer %s with federation.allow_private: %v", issuer, err)
		}
	}
	for _, issuer := range []string{"https://169.254.169.254", "https://[fd00:ec2::254]"} {
		if err := startWithIssuer(t, allow, issuer); err == nil || !strings.Contains(err.Error(), "web.login.oidc[inner].issuer") {
			t.Errorf("metadata issuer %s with federation.allow_private: %v, want refused", issuer, err)
		}
	}
}

// startWithIssuer builds sts (app.New) with one web.login.oidc provider of
// issuer after the YAML extra, runs and stops it if it builds, and returns
// app.New's error.
func startWithIssuer(t *testing.T, extra, issuer string) error {
	t.Helper()
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "sts.yaml")
	y := "listen: 127.0.0.1:0\ndata_dir: " + filepath.Join(dir, "data") + "\n" + extra + "web:\n  login:\n    oidc:\n      - id: inner\n        issuer: " +
		issuer + "\n        client_id: sts-web\n        link_claim: email\n"
	if err := os.WriteFile(cfgFile, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(config.Options{File: cfgFile, Environ: func() []string { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	a, err := app.New(ctx, cfg, app.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	cancel()
	<-done
	return nil
}

// TestUpstreamDiscoveryBodyCapped: the sign-in reads no more of a
// provider's discovery document than the outbound client's cap
// (docs/security.md T-60, T-189). go-oidc reads it with io.ReadAll: a
// provider sending 64 MiB had it all read (and held) before; now the
// client stops past 256 KiB, the connection is closed, and the sign-in
// fails. What the server managed to write is bounded by the loopback
// socket buffers, well under the 64 MiB.
func TestUpstreamDiscoveryBodyCapped(t *testing.T) {
	t.Parallel()
	const chunk, chunks = 1 << 20, 64
	var written atomic.Int64
	var big *httptest.Server
	big = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		head := `{"issuer":"` + big.URL + `","authorization_endpoint":"` + big.URL + `/authorize","token_endpoint":"` + big.URL + `/token","jwks_uri":"` + big.URL + `/jwks"}`
		n, _ := w.Write([]byte(head))
		written.Add(int64(n))
		pad := []byte(strings.Repeat(" ", chunk))
		for range chunks {
			n, err := w.Write(pad)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	t.Cleanup(big.Close)
	y := loopbackProviders + "web:\n  login:\n    oidc:\n      - id: big\n        issuer: " + big.URL + "\n        client_id: sts-web\n        client_secret: s\n        link_claim: email\n"
	s := startServer(t, y)
	r := signInWith(t, follower(t), s, "big", "/tokens")
	if r.status != http.StatusServiceUnavailable {
		t.Errorf("a 64 MiB discovery document: the sign-in answered %d\n%s", r.status, r.body)
	}
	big.Close() // waits for the handler: written is final
	if n := written.Load(); n > 16<<20 {
		t.Errorf("the sign-in read %d bytes of a discovery document (the client's cap: 262144)", n)
	}
	if !strings.Contains(s.logs.String(), "response exceeds the size limit") {
		t.Errorf("the log does not say the document was too large:\n%s", s.logs)
	}
}

// loopbackName is a host name other than "localhost" that resolves to
// loopback addresses only (this machine's name, as /etc/hosts commonly
// maps it); the test is skipped where there is none.
func loopbackName(t *testing.T) string {
	t.Helper()
	name, err := os.Hostname()
	if err != nil || strings.EqualFold(name, "localhost") {
		t.Skipf("no host name other than localhost: %q %v", name, err)
	}
	addrs, err := net.DefaultResolver.LookupNetIP(t.Context(), "ip", name)
	if err != nil || len(addrs) == 0 {
		t.Skipf("host name %q does not resolve: %v", name, err)
	}
	for _, a := range addrs {
		if !a.Unmap().IsLoopback() {
			t.Skipf("host name %q resolves to %s, not only loopback", name, a)
		}
	}
	return name
}
