package cli_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2/clientcredentials"
)

// TestServeClientCredentials drives the client_credentials path through the real
// server: the CLI creates a service account and a client (secret shown
// once), x/oauth2/clientcredentials gets a token, introspection (both
// dialects) sees it active, revocation makes it inactive at once.
func TestServeClientCredentials(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := serve(t, "--data-dir", dir)
	checkServing(t, r)

	sa := newServiceAccount(t, dir, "ci-bot")
	id, secret := newClient(t, dir, sa, r.base, "read")

	cc := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: r.base + "/oauth2/token", Scopes: []string{"read"}}
	tok, err := cc.Token(t.Context())
	if err != nil {
		t.Fatalf("clientcredentials: %v", err)
	}
	introspect := func(path string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest("POST", r.base+path, strings.NewReader(url.Values{"token": {tok.AccessToken}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(id, secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		if resp.StatusCode != 200 {
			t.Fatalf("%s = %d %v", path, resp.StatusCode, m)
		}
		return m
	}
	for _, path := range []string{"/oauth2/introspect", "/v1/introspect"} {
		if m := introspect(path); m["active"] != true || m["sub"] != sa || m["principal"] != "SERVICE_ACCOUNT" || m["scope"] != "read" {
			t.Errorf("%s = %v, want the active token of %s", path, m, sa)
		}
	}
	req, _ := http.NewRequest("POST", r.base+"/oauth2/revoke", strings.NewReader(url.Values{"token": {tok.AccessToken}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("revoke = %v %v", resp, err)
	}
	resp.Body.Close()
	if m := introspect("/oauth2/introspect"); len(m) != 1 || m["active"] != false {
		t.Errorf("introspection after revocation = %v, want exactly {active:false}", m)
	}

	// Break-glass: the CLI opens the same SQLite file and revokes the
	// subject. The server holds revocations in memory on one node and
	// catches up with other writers every second, so a new token of the
	// subject turns inactive within 2 s (docs/design.md#revocations-on-one-node).
	tok, err = cc.Token(t.Context())
	if err != nil {
		t.Fatalf("clientcredentials: %v", err)
	}
	if m := introspect("/oauth2/introspect"); m["active"] != true {
		t.Fatalf("second token = %v, want active", m)
	}
	if code, out, e := runCLI(t, "revoke", "subject", "--data-dir", dir, "--subject", sa); code != 0 {
		t.Fatalf("revoke subject = %d %q %q", code, out, e)
	}
	start := time.Now()
	for introspect("/oauth2/introspect")["active"] != false {
		if time.Since(start) > 2500*time.Millisecond {
			t.Fatal("a subject revoked by the CLI was still active after 2.5 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("CLI revocation seen after %v", time.Since(start).Round(time.Millisecond))
	if strings.Contains(r.stderr.String(), secret) || strings.Contains(r.stderr.String(), tok.AccessToken) {
		t.Error("a secret or token reached the server log")
	}
	r.stop(t)
}
