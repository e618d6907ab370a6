package cli_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sts test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue writes a certificate for 127.0.0.1 with serial and its key to
// certFile and keyFile (key first, each replaced atomically).
func (ca *testCA) issue(t *testing.T, serial int64, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "sts"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writeAtomic(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
	writeAtomic(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func writeAtomic(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// servedSerial opens a new TLS connection to addr, verified against pool,
// and returns the serial of the certificate served (0 on failure).
func servedSerial(addr string, pool *x509.CertPool) int64 {
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, NextProtos: []string{"h2"}})
	if err != nil {
		return 0
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// TestServeTLS: with tls.cert_file and tls.key_file the public listener
// serves HTTPS, HTTP/2 and HTTP/1.1, gRPC clients work over it, and a
// renewed certificate is served without a restart while a bad one is
// refused and the previous one kept (docs/security.md F-33).
func TestServeTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := newTestCA(t)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	ca.issue(t, 100, certFile, keyFile)
	setenv(t, "STS_TLS_CERT_FILE", certFile)
	setenv(t, "STS_TLS_KEY_FILE", keyFile)
	r := serve(t, "--data-dir", filepath.Join(dir, "data"))
	addr := strings.TrimPrefix(r.base, "http://")
	base := "https://" + addr

	h2 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}, ForceAttemptHTTP2: true}}
	deadline := time.Now().Add(10 * time.Second)
	var resp *http.Response
	for {
		var err error
		resp, err = h2.Get(base + "/readyz")
		if err == nil && resp.StatusCode == 200 {
			resp.Body.Close()
			break
		}
		if err == nil {
			resp.Body.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("https /readyz not 200 within 10 s (%v); stderr:\n%s", err, r.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("https /readyz over %s, want HTTP/2", resp.Proto)
	}
	h1 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool},
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}}
	if resp, err := h1.Get(base + "/livez"); err != nil || resp.StatusCode != 200 || resp.ProtoMajor != 1 {
		t.Errorf("HTTP/1.1 over TLS: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	// Plain HTTP gets net/http's 400 "HTTP request to an HTTPS server".
	if resp, err := http.Get(r.base + "/livez"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP on the TLS listener answered %s, want 400", resp.Status)
		}
	}

	// sts healthcheck follows listen and tls.cert_file to https.
	setenv(t, "STS_LISTEN", addr)
	if code, _, stderr := runCLI(t, "healthcheck"); code != 0 {
		t.Errorf("healthcheck on the TLS listener = %d: %s", code, stderr)
	}

	// grpc-go, over TLS, verifying the certificate against the test CA.
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: ca.pool})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hc, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{})
	if err != nil || hc.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("grpc health over TLS = %v, %v; want SERVING", hc, err)
	}

	if got := servedSerial(addr, ca.pool); got != 100 {
		t.Fatalf("serial served = %d, want 100", got)
	}
	// A half-written renewal (a certificate that does not match the key)
	// is refused: the old certificate stays.
	writeAtomic(t, certFile, []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"))
	time.Sleep(1500 * time.Millisecond) // past the once-a-second check
	if got := servedSerial(addr, ca.pool); got != 100 {
		t.Errorf("after a bad certificate file, serial served = %d, want the old 100", got)
	}
	if !strings.Contains(r.stderr.String(), "does not load; serving the previous one") {
		t.Errorf("bad certificate not logged:\n%s", r.stderr.String())
	}
	// A good renewal is served to new connections within seconds.
	ca.issue(t, 200, certFile, keyFile)
	deadline = time.Now().Add(10 * time.Second)
	for servedSerial(addr, ca.pool) != 200 {
		if time.Now().After(deadline) {
			t.Fatalf("renewed certificate not served within 10 s; stderr:\n%s", r.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(r.stderr.String(), "certificate reloaded") {
		t.Errorf("reload not logged")
	}
}

// TestServeTLSBadPairAtStart: a certificate that does not load stops
// start-up, before anything is written.
func TestServeTLSBadPairAtStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile := filepath.Join(dir, "tls.crt")
	os.WriteFile(certFile, []byte("junk"), 0o600)
	setenv(t, "STS_TLS_CERT_FILE", certFile)
	setenv(t, "STS_TLS_KEY_FILE", filepath.Join(dir, "missing.key"))
	data := filepath.Join(dir, "data")
	code, stderr := serveBounded(t, "--listen", "127.0.0.1:0", "--data-dir", data)
	if code == 0 || !strings.HasPrefix(stderr, "sts: tls:") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("serve with a bad TLS pair = %d, stderr %q; want one line starting sts: tls:", code, stderr)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("data dir created although start-up failed (%v)", err)
	}
}
