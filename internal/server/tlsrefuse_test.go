package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/opensts/sts/internal/oauth2"
)

// selfSigned is a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// TestConnectionLimitRefusesOverTLS (docs/security.md F-75): when sts
// serves TLS itself, a connection over http.max_connections gets its 503
// with Retry-After over TLS. The refusal used to write the plain-HTTP
// answer into the TLS connection, which clients report as a broken
// handshake ("first record does not look like a TLS handshake", curl's
// "wrong version number"), with no status and no Retry-After.
func TestConnectionLimitRefusesOverTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	s, _ := newTest(t, Options{GCInterval: time.Hour, MaxConnections: 1,
		TLS: &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}}, nil)
	addr, held := holdOnlySlot(t, s)
	defer held.Close()
	for _, h2 := range []bool{false, true} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: h2, DisableKeepAlives: true}
		client := &http.Client{Timeout: 5 * time.Second, Transport: tr}
		resp, err := client.Get("https://" + addr + "/livez")
		if err != nil {
			t.Fatalf("h2 offered %v: a connection over the cap: %v, want a 503 over TLS", h2, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != oauth2.RetryAfterValue(0) {
			t.Errorf("h2 offered %v: a connection over the cap: %d Retry-After %q, want 503 with Retry-After", h2, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		time.Sleep(2 * refuseEvery)
	}
}

// TestConnectionRefusalsPacedTLSByKey (docs/security.md F-75): over TLS
// each refusal is a full handshake, whose signature costs ~1.9 ms of CPU
// with an RSA-2048 key (8.7 ms with RSA-4096) against ~0.07 ms with
// ECDSA P-256, paid by the server only. With an RSA key (also one served
// through GetCertificate, as tls.cert_file is) the listener refuses at
// most one connection per refuseEveryRSA; with ECDSA, per refuseEveryTLS.
func TestConnectionRefusalsPacedTLSByKey(t *testing.T) {
	ecCert, _ := selfSigned(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaCert := tls.Certificate{Certificate: ecCert.Certificate, PrivateKey: rsaKey}
	for _, tc := range []struct {
		name  string
		cfg   *tls.Config
		every time.Duration
	}{
		{"rsa", &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &rsaCert, nil }}, refuseEveryRSA},
		{"ecdsa", &tls.Config{Certificates: []tls.Certificate{ecCert}}, refuseEveryTLS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newTest(t, Options{GCInterval: time.Hour, MaxConnections: 1, TLS: tc.cfg}, nil)
			refused, elapsed := floodOverCap(t, s, 40, 300*time.Millisecond)
			if max := float64(elapsed/tc.every) + 2; refused > max {
				t.Errorf("%.0f connections refused in %s, want at most %.0f (one per %s)", refused, elapsed, max, tc.every)
			}
			if min := float64(elapsed/tc.every) / 4; refused < min || refused < 1 {
				t.Errorf("%.0f connections refused in %s, want about one per %s", refused, elapsed, tc.every)
			}
		})
	}
}

// TestConnectionLimitRefusalCarriesHSTS (docs/security.md T-207): the
// 503 a connection over http.max_connections gets is written by the
// listener, before any handler, so it went without the
// Strict-Transport-Security every handler's answer of an https issuer
// carries. It carries it now, over TLS and plain (behind a proxy), and
// never when none is configured.
func TestConnectionLimitRefusalCarriesHSTS(t *testing.T) {
	const hsts = "max-age=31536000"
	cert, pool := selfSigned(t)
	for _, tc := range []struct {
		name  string
		tls   bool
		value string
	}{{"tls", true, hsts}, {"plain", false, hsts}, {"none configured", true, ""}} {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{GCInterval: time.Hour, MaxConnections: 1, StrictTransportSecurity: tc.value}
			if tc.tls {
				o.TLS = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
			}
			s, _ := newTest(t, o, nil)
			addr, held := holdOnlySlot(t, s)
			defer held.Close()
			client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}
			scheme := "http://"
			if tc.tls {
				scheme = "https://"
			}
			resp, err := client.Get(scheme + addr + "/livez")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("a connection over the cap: %d, want 503", resp.StatusCode)
			}
			if v := resp.Header.Values("Strict-Transport-Security"); (tc.value == "" && len(v) != 0) || (tc.value != "" && (len(v) != 1 || v[0] != tc.value)) {
				t.Errorf("the refusal's Strict-Transport-Security %q, want %q", v, tc.value)
			}
		})
	}
}
