package app_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/cli"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/ststest/faultproxy"
)

// bearerRT adds a bearer token to every request.
type bearerRT struct{ tok string }

func (b bearerRT) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.tok)
	return http.DefaultTransport.RoundTrip(r)
}

// TestUnknownKidTwoReplicas (docs/security.md F-45): two servers on one
// PostgreSQL database. A rotates its signing key with force twice, so it
// signs with a key B has not loaded (B polls once a minute, and checks the
// stored set's version once a second, F-66). B accepts A's token at once
// (it re-reads the stored keys); and while B cannot reach the database,
// so that its checks fail too, introspection of such a token on B is 503
// with Retry-After, never {"active":false}.
func TestUnknownKidTwoReplicas(t *testing.T) {
	t.Parallel()
	p := newReplicaPair(t)
	a, b, proxyB, keys := p.a, p.b, p.proxyB, p.keys
	post := func(base, path string, form url.Values) (int, http.Header, string) {
		t.Helper()
		return p.post(t, base, path, form)
	}
	for range 2 {
		if _, err := keys.RotateSigningKey(t.Context(), &stsv1.RotateSigningKeyRequest{Force: true}); err != nil {
			t.Fatalf("RotateSigningKey on A: %v", err)
		}
	}
	token := func() string { t.Helper(); return p.token(t, a) }

	// B re-reads the stored set and accepts the token signed with A's new key.
	status, _, body := post(b, "/oauth2/introspect", url.Values{"token": {token()}})
	if status != 200 || !strings.Contains(body, `"active":true`) {
		t.Fatalf("B introspects A's token = %d %s, want active", status, body)
	}

	// Again, and B cannot read storage: 503, never inactive.
	time.Sleep(signer.LookupInterval + time.Second/5) // B's re-read interval is over
	// B reads the client's row now, so it authenticates the client from
	// its record cache (5 s) below: only the key lookup needs storage.
	if status, _, body := post(b, "/oauth2/introspect", url.Values{"token": {"not-a-token"}}); status != 200 {
		t.Fatalf("B introspects garbage = %d %s", status, body)
	}
	// Cut off before the rotations, so B's key-set check cannot load the
	// new key either.
	proxyB.Set(faultproxy.BlackHole)
	for range 2 {
		if _, err := keys.RotateSigningKey(t.Context(), &stsv1.RotateSigningKeyRequest{Force: true}); err != nil {
			t.Fatalf("RotateSigningKey on A: %v", err)
		}
	}
	tok := token()
	status, h, body := post(b, "/oauth2/introspect", url.Values{"token": {tok}})
	if status != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
		t.Fatalf("B introspects A's token with storage unreachable = %d %s (Retry-After %q), want 503 with Retry-After", status, body, h.Get("Retry-After"))
	}
	proxyB.Set(faultproxy.Pass)
}

// replicaPair is two `sts serve` replicas on one PostgreSQL database,
// each through its own fault proxy, with one issuer and master key, a
// client_credentials client and an instance administrator's KeyService
// client on A.
type replicaPair struct {
	a, b           string // base URLs
	proxyA, proxyB *faultproxy.Proxy
	keys           stsv1connect.KeyServiceClient
	id, sec        string
	admin, org     string // an sts:admin PAT of the bootstrap admin; the organization default
}

func newReplicaPair(t *testing.T) *replicaPair {
	t.Helper()
	cfgA, proxyA := pgThroughProxy(t)
	cfgB := testConfig(t)
	cfgB.Storage = cfgA.Storage
	cfgB.DataDir = cfgA.DataDir // the same master key file
	cfgB.Listen = freeAddr(t)
	cfgB.Issuer, cfgB.IssuerDerived = cfgA.Issuer, false // one issuer, two replicas
	proxyB := faultproxy.New(t, proxyA.Addr())
	u, _ := url.Parse(cfgA.Storage.DSN)
	u.Host = proxyB.Addr()
	cfgB.Storage.DSN = u.String()
	setCallTimeout(&cfgA, 2*time.Second)
	setCallTimeout(&cfgB, 2*time.Second)
	startApp(t, cfgA)
	startApp(t, cfgB)
	p := &replicaPair{a: "http://" + cfgA.Listen, b: "http://" + cfgB.Listen, proxyA: proxyA, proxyB: proxyB}

	sts := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		// The environment given, not set (t.Setenv), so that tests on a
		// pair can run in parallel.
		env := append(os.Environ(), "STS_STORAGE_TYPE=postgres", "STS_STORAGE_DSN="+cfgA.Storage.DSN)
		if code := cli.MainEnv(t.Context(), append(args, "--data-dir", cfgA.DataDir), env, &out, &errb); code != 0 {
			t.Fatalf("sts %s = %d: %s", strings.Join(args, " "), code, errb.String())
		}
		return out.String()
	}
	var org string
	for _, line := range strings.Split(sts("org", "list"), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[1] == "default" {
			org = f[0]
		}
	}
	sa := strings.TrimSpace(sts("principal", "create", "--org", org, "--kind", "service-account", "--name", "svc"))
	// The client's ID, then its secret (docs/cli.md "Output").
	if f := strings.Fields(sts("client", "create", "--org", org, "--principal", sa, "--audience", "https://rs.example", "--scope", "read")); len(f) == 2 {
		p.id, p.sec = f[0], f[1]
	}
	admin := strings.TrimSpace(sts("pat", "create", "--user", "admin", "--expires-in", "1d", "--scope", "*", "--scope", "sts:admin"))
	p.keys = stsv1connect.NewKeyServiceClient(&http.Client{Transport: bearerRT{admin}}, p.a)
	p.admin, p.org = admin, org
	return p
}

// post sends a form to base+path, authenticated as the pair's client.
func (p *replicaPair) post(t *testing.T, base, path string, form url.Values) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(p.id), url.QueryEscape(p.sec))
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}

// token is a client_credentials access token from the replica at base.
func (p *replicaPair) token(t *testing.T, base string) string {
	t.Helper()
	status, _, body := p.post(t, base, "/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}})
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if status != 200 || json.Unmarshal([]byte(body), &tok) != nil {
		t.Fatalf("token from %s = %d %s", base, status, body)
	}
	return tok.AccessToken
}
