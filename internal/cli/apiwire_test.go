package cli_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"connectrpc.com/connect"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
)

var patRE = regexp.MustCompile(`sts_pat_[0-9A-Za-z]{36}`)

// TestServeConnectAPI: the README's first steps. A fresh server
// bootstraps an organization and an admin, `sts pat create` mints a PAT,
// and the PAT authenticates IdentityService calls over plain JSON (the Gitpod
// API's curl shape), Connect and gRPC over HTTP/2 without TLS. The PAT keeps
// working across a master-key rotation because the digest pepper is
// re-wrapped, not re-derived.
func TestServeConnectAPI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := serve(t, "--data-dir", dir)
	checkServing(t, r)
	if !strings.Contains(r.stderr.String(), "sts pat create --user admin") {
		t.Errorf("no bootstrap hint in the logs:\n%s", r.stderr.String())
	}
	code, out, errOut := runCLI(t, "pat", "create", "--data-dir", dir, "--user", "admin", "--expires-in", "30d", "--scope", "*")
	secret := patRE.FindString(out)
	if code != 0 || secret == "" {
		t.Fatalf("pat create = %d, %q %q", code, out, errOut)
	}
	if strings.Contains(r.stderr.String(), secret) {
		t.Fatal("the PAT appears in the server log")
	}

	call := func(t *testing.T, opts ...connect.ClientOption) (*gitpodv1.GetAuthenticatedIdentityResponse, error) {
		t.Helper()
		tr := &http.Transport{Protocols: new(http.Protocols)}
		tr.Protocols.SetUnencryptedHTTP2(true)
		client := &http.Client{Transport: bearer{secret, tr}}
		c := gitpodv1connect.NewIdentityServiceClient(client, r.base+"/api", opts...)
		return c.GetAuthenticatedIdentity(t.Context(), &gitpodv1.GetAuthenticatedIdentityRequest{})
	}
	for name, opts := range map[string][]connect.ClientOption{
		"connect": nil,
		"grpc":    {connect.WithGRPC()},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := call(t, opts...)
			if err != nil {
				t.Fatalf("GetAuthenticatedIdentity: %v", err)
			}
			if got.GetSubject().GetPrincipal() != gitpodv1.Principal_PRINCIPAL_USER || got.GetOrganizationId() == "" {
				t.Errorf("GetAuthenticatedIdentity = %v, want the admin user of an organization", got)
			}
		})
	}

	// A one-time exchange token from the CLI is traded exactly once.
	code, out, errOut = runCLI(t, "exchange-token", "create", "--data-dir", dir, "--principal", "admin")
	ext := regexp.MustCompile(`sts_ext_[0-9A-Za-z]{36}`).FindString(out)
	if code != 0 || ext == "" {
		t.Fatalf("exchange-token create = %d, %q %q", code, out, errOut)
	}
	for i, want := range []int{http.StatusOK, http.StatusUnauthorized} {
		resp, err := http.Post(r.base+"/api/gitpod.v1.IdentityService/ExchangeToken", "application/json",
			strings.NewReader(`{"exchangeToken":"`+ext+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("ExchangeToken use %d = %d, want %d", i+1, resp.StatusCode, want)
		}
	}

	req, _ := http.NewRequest("POST", r.base+"/api/gitpod.v1.IdentityService/GetAuthenticatedIdentity", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unauthenticated JSON call = %d, want 401", resp.StatusCode)
	}
	r.stop(t)

	// Master-key rotation keeps the PAT valid.
	newKey := dir + "/new.key"
	runCLI(t, "keys", "generate-master", "--out", newKey)
	yaml := dir + "/rot.yaml"
	writeFile(t, yaml, "master_key_file: "+newKey+"\nprevious_master_key_files: ["+dir+"/master.key]\n")
	if code, out, e := runCLI(t, "keys", "rotate-master", "--config", yaml, "--data-dir", dir); code != 0 || !strings.Contains(e, "1 server secret(s) and 0 host token(s)") {
		t.Fatalf("rotate-master = %d %s%s", code, out, e)
	}
	only := dir + "/new.yaml"
	writeFile(t, only, "master_key_file: "+newKey+"\n")
	r = serve(t, "--config", only, "--data-dir", dir)
	checkServing(t, r)
	if _, err := call(t); err != nil {
		t.Errorf("PAT after master-key rotation: %v", err)
	}
	r.stop(t)
}

// bearer adds an Authorization header to every request.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}
