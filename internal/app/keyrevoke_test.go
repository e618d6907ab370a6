package app_test

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
)

// keyBound is the documented bound within which a replica stops signing
// with, and trusting, a key another replica revoked (docs/security.md
// F-66): the key-set check interval (1 s) plus the reload it triggers.
const keyBound = 2 * time.Second

// kidOf is the kid of a compact JWS's protected header.
func kidOf(t *testing.T, tok string) string {
	t.Helper()
	head, _, _ := strings.Cut(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	var h struct {
		Kid string `json:"kid"`
	}
	if err != nil || json.Unmarshal(b, &h) != nil || h.Kid == "" {
		t.Fatalf("no kid in the token's header %q", head)
	}
	return h.Kid
}

// TestRevokedKeyTwoReplicas (docs/security.md F-66): two replicas on one
// PostgreSQL database, the key revoked through A's KeyService. A refuses
// the key's tokens at once. B went on signing new tokens with it, and
// answering them active, until its key poll (1 min), while A answered
// them inactive: clients behind a load balancer got tokens that failed at
// some replicas, then everywhere. Within keyBound B signs with A's new
// key, answers the revoked key's tokens inactive, and A accepts B's new
// tokens.
func TestRevokedKeyTwoReplicas(t *testing.T) {
	p := newReplicaPair(t)
	introspect := func(base, tok string) string {
		t.Helper()
		status, _, body := p.post(t, base, "/oauth2/introspect", url.Values{"token": {tok}})
		if status != 200 {
			t.Fatalf("introspection at %s = %d %s", base, status, body)
		}
		return body
	}
	const active, inactive = `"active":true`, `"active":false`
	old := p.token(t, p.b)
	bad := kidOf(t, old)
	if body := introspect(p.a, old); !strings.Contains(body, active) {
		t.Fatalf("test setup: A introspects B's token = %s", body)
	}
	if _, err := p.keys.RevokeSigningKey(t.Context(), &stsv1.RevokeSigningKeyRequest{Kid: bad}); err != nil {
		t.Fatalf("RevokeSigningKey(%s) on A: %v", bad, err)
	}
	revoked := time.Now()
	if body := introspect(p.a, old); !strings.Contains(body, inactive) {
		t.Fatalf("A introspects a token of the key it revoked = %s, want inactive", body)
	}
	for {
		tok := p.token(t, p.b)
		if kidOf(t, tok) != bad && strings.Contains(introspect(p.b, old), inactive) {
			if body := introspect(p.a, tok); !strings.Contains(body, active) {
				t.Errorf("A introspects B's token signed after the revocation = %s, want active", body)
			}
			break
		}
		if time.Since(revoked) > 2*keyBound {
			t.Fatalf("%s after the revocation on A, B still signs with the revoked key %s, or answers its tokens active (documented bound %s)",
				time.Since(revoked).Round(time.Millisecond), bad, keyBound)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("B stopped signing with, and trusting, the revoked key %s after the revocation on A", time.Since(revoked).Round(time.Millisecond))
}
