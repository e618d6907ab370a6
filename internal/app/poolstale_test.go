package app_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
	"github.com/opensts/sts/internal/ststest/faultproxy"
	"github.com/opensts/sts/internal/trust"
)

// TestPoolDisabledElsewhereWhileStorageUnreadable is docs/security.md
// F-108 on two servers on one PostgreSQL database: pool ci admits
// exchanges without client authentication, so an exchange through it
// needs no storage read on the replica that serves it but the trust
// registry's. Replica B loses its connection to the database; an
// administrator disables ci through replica A. B went on minting tokens
// through the disabled pool for as long as it could not refresh its
// registry (its last snapshot kept serving, for ever); now it stops within
// the registry's bound (twice its 5 s refresh) and answers 503 until it
// can read the pools again, then refuses the pool (400).
func TestPoolDisabledElsewhereWhileStorageUnreadable(t *testing.T) {
	t.Parallel()
	p := newReplicaPair(t)
	ctx := t.Context()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	const issuer = "https://ci.example"
	pools := stsv1connect.NewPoolServiceClient(&http.Client{Transport: bearerRT{p.admin}}, p.a)
	if _, err := pools.CreatePool(ctx, &stsv1.CreatePoolRequest{PoolId: "ci", OrganizationId: p.org, Condition: "true",
		Mapping: &stsv1.PoolMapping{Subject: "assertion.sub"}, Scopes: []string{"read"}, AllowUnauthenticated: true}); err != nil {
		t.Fatalf("CreatePool on A: %v", err)
	}
	if _, err := pools.CreateProvider(ctx, &stsv1.CreateProviderRequest{PoolId: "ci", ProviderId: "local", Issuer: issuer,
		Audiences: []string{"sts"}, Jwks: string(jwks)}); err != nil {
		t.Fatalf("CreateProvider on A: %v", err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1").WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	subjectToken := func() string {
		now := time.Now()
		payload, _ := json.Marshal(map[string]any{"iss": issuer, "sub": "repo:acme/app", "aud": "sts",
			"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(), "jti": rand.Text()})
		jws, err := signer.Sign(payload)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := jws.CompactSerialize()
		return s
	}
	// exchange at base, with no client authentication: the status and the
	// reason, never the token.
	exchange := func(base string) (int, string) {
		t.Helper()
		form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {subjectToken()},
			"subject_token_type": {"urn:ietf:params:oauth:token-type:jwt"}, "scope": {"read"}, "pool": {"ci"}}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/oauth2/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var m struct {
			Reason string `json:"reason"`
			Error  string `json:"error"`
		}
		json.Unmarshal(body, &m)
		return resp.StatusCode, m.Error + " " + m.Reason
	}
	for _, base := range []string{p.a, p.b} {
		if code, why := exchange(base); code != 200 {
			t.Fatalf("exchange through pool ci at %s = %d %s", base, code, why)
		}
	}

	p.proxyB.Set(faultproxy.Refuse)
	if _, err := pools.UpdatePool(ctx, &stsv1.UpdatePoolRequest{PoolId: "ci", Disabled: new(true)}); err != nil {
		t.Fatalf("UpdatePool disable on A: %v", err)
	}
	disabled := time.Now()
	if code, why := exchange(p.a); code != 400 {
		t.Errorf("exchange at A right after A disabled the pool = %d %s, want 400", code, why)
	}
	// The bound: the registry's MaxAge (twice its refresh interval) from
	// B's last successful refresh, which began before the disable; plus
	// slack for a loaded machine.
	bound := 2*trust.DefaultRefreshInterval + 3*time.Second
	for {
		code, why := exchange(p.b)
		if code != 200 {
			if code != http.StatusServiceUnavailable {
				t.Errorf("exchange at B, which cannot read storage, through a pool disabled elsewhere = %d %s, want 503", code, why)
			}
			t.Logf("B stopped exchanging through the pool disabled on A %v after the disable (%d %s)", time.Since(disabled).Round(time.Millisecond), code, why)
			break
		}
		if time.Since(disabled) > bound {
			t.Fatalf("B, unable to read storage, still exchanges through pool ci %v after A disabled it (bound %v)",
				time.Since(disabled).Round(time.Millisecond), bound)
		}
		time.Sleep(250 * time.Millisecond)
	}

	p.proxyB.Set(faultproxy.Pass)
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, why := exchange(p.b)
		if code == 400 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("exchange at B once it reads storage again = %d %s, want 400 (the pool is disabled)", code, why)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
