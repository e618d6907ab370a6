package app_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/ststest/faultproxy"
)

// TestRevokedKeyElsewhereWhileStorageUnreadable is docs/security.md F-109
// on two servers on one PostgreSQL database: B signs a token, loses its
// connection to the database, and the key that signed it is revoked
// through A. B cannot learn of the revocation; it went on signing with
// the key and trusting its tokens for as long as it could not read the
// stored set (F-66: "keeps its loaded keys until its first check that
// can"). Now, once B has not confirmed its key set for
// signer.DefaultUnconfirmedBound, it mints nothing (503 with
// Retry-After) and answers introspection of the key's token 503, never
// active, while its JWKS still serves; once it reads storage again, the
// token is inactive and B signs with A's new key.
func TestRevokedKeyElsewhereWhileStorageUnreadable(t *testing.T) {
	t.Parallel()
	p := newReplicaPair(t)
	old := p.token(t, p.b)
	bad := kidOf(t, old)

	p.proxyB.Set(faultproxy.Refuse)
	if _, err := p.keys.RevokeSigningKey(t.Context(), &stsv1.RevokeSigningKeyRequest{Kid: bad}); err != nil {
		t.Fatalf("RevokeSigningKey(%s) on A: %v", bad, err)
	}
	revoked := time.Now()
	bound := signer.DefaultUnconfirmedBound + 3*time.Second // slack for a loaded machine
	var minted, introspected bool
	for !minted || !introspected {
		if !minted {
			status, h, body := p.post(t, p.b, "/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}})
			switch {
			case status == http.StatusServiceUnavailable && h.Get("Retry-After") != "":
				minted = true
			case status == 200 && time.Since(revoked) > bound:
				t.Errorf("B, unable to read storage, still mints (kid %s revoked on A) %v after the revocation: %s",
					bad, time.Since(revoked).Round(time.Millisecond), body)
				minted = true
			case status != 200:
				t.Errorf("B mints with storage unreadable = %d %s (Retry-After %q), want 200 or 503 with Retry-After", status, body, h.Get("Retry-After"))
				minted = true
			}
		}
		if !introspected {
			status, h, body := p.post(t, p.b, "/oauth2/introspect", url.Values{"token": {old}})
			switch {
			case status == http.StatusServiceUnavailable && h.Get("Retry-After") != "":
				introspected = true
			case status == 200 && strings.Contains(body, `"active":true`) && time.Since(revoked) > bound:
				t.Errorf("B, unable to read storage, answers a token of the key revoked on A active %v after the revocation",
					time.Since(revoked).Round(time.Millisecond))
				introspected = true
			case status != 200 || !strings.Contains(body, `"active":true`):
				t.Errorf("B introspects the revoked key's token with storage unreadable = %d %s, want active (within the bound) or 503", status, body)
				introspected = true
			}
		}
		if time.Since(revoked) > 2*bound {
			t.Fatal("test did not end")
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("B stopped minting and trusting %v after the revocation on A", time.Since(revoked).Round(time.Millisecond))
	// The JWKS publishes, it does not trust: it still serves.
	resp, err := http.Get(p.b + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("B's JWKS with storage unreadable = %d, want 200", resp.StatusCode)
	}

	p.proxyB.Set(faultproxy.Pass)
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, _, body := p.post(t, p.b, "/oauth2/introspect", url.Values{"token": {old}})
		if status == 200 && strings.Contains(body, `"active":false`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("B introspects the revoked key's token once it reads storage = %d %s, want inactive", status, body)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if kid := kidOf(t, p.token(t, p.b)); kid == bad {
		t.Errorf("B signs with the revoked key %s once it reads storage again", bad)
	}
}
