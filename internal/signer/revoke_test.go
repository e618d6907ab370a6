package signer_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/clocktest"
	"github.com/opensts/sts/internal/tokens"
)

const revokeIss = "https://sts.example"

// mintWith returns an access token for audience "api" signed by m's active
// key: what an attacker holding that key's private half can forge.
func mintWith(t *testing.T, m signer.Signer, clk *clocktest.Clock) string {
	t.Helper()
	tok, _, err := (&tokens.Issuer{Signer: m, IssuerURL: revokeIss, Now: clk.Now}).MintAccessToken(t.Context(), tokens.AccessClaims{
		Subject: "s", Audience: tokens.Audience{"api"}, Expiry: tokens.NewNumericDate(clk.Now().Add(10 * time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestRevokeActiveKey (docs/security.md T-77): the active key's private
// half is stolen. A forced rotation stops it signing, but keeps it
// published, and verifiable, for keys.max_token_lifetime + leeway + poll
// (12 h 2 min by default), so tokens forged with it pass every verifier
// for that long. RevokeKey rotates away from it and drops it from the set
// at once: on this node the JWKS, PublicKey and ResolveKey lose it before
// RevokeKey returns, a token it signed fails verification (and again on a
// second try, without being taken for a key this node has not loaded
// yet), the successor signs, and another replica sharing the store drops
// it at its next poll. The change commits with a signing_key.revoke event
// naming the kid.
func TestRevokeActiveKey(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, store storage.Store) {
		ctx := t.Context()
		clk, a, b := pair(t, store, store)
		bad, next := a.ActiveKeyID(), keysByState(t, store)[storage.KeyNext][0].ID
		forged := mintWith(t, a, clk)
		verifyA := &tokens.Verifier{Keys: a, Issuer: revokeIss, Now: clk.Now}
		verifyB := &tokens.Verifier{Keys: b, Issuer: revokeIss, Now: clk.Now}
		for name, v := range map[string]*tokens.Verifier{"A": verifyA, "B": verifyB} {
			if _, err := v.VerifyAccessToken(ctx, forged, "api"); err != nil {
				t.Fatalf("test setup: replica %s refuses the token before revocation: %v", name, err)
			}
		}

		r, err := a.RevokeKey(ctx, bad, func(r signer.Revocation) storage.AuditEvent {
			return r.AuditEvent("principal:admin", "req-1", clk.Now())
		})
		if err != nil {
			t.Fatalf("RevokeKey(active %s) = %v", bad, err)
		}
		if r.KeyID != bad || r.State != storage.KeyActive || r.Activated != next || r.Next == "" || r.Next == next || r.Next == bad {
			t.Fatalf("RevokeKey = %+v, want %s revoked, %s activated and a new next key", r, bad, next)
		}
		// This node: gone at once.
		if _, ok := a.PublicKey(bad); ok {
			t.Error("PublicKey still has the revoked key")
		}
		if k, ok, err := a.ResolveKey(ctx, bad); ok || err != nil {
			t.Errorf("ResolveKey(revoked) = %v, %v, %v; want unknown without error", k, ok, err)
		}
		if jwks, _ := a.JWKS(); strings.Contains(string(jwks), bad) {
			t.Errorf("JWKS still publishes the revoked key: %s", jwks)
		}
		for try := range 2 {
			if _, err := verifyA.VerifyAccessToken(ctx, forged, "api"); !errors.Is(err, tokens.ErrUnknownKey) {
				t.Errorf("try %d: a token of the revoked key on this node = %v, want ErrUnknownKey", try, err)
			}
		}
		if a.ActiveKeyID() != next {
			t.Errorf("active key after revocation = %s, want the successor %s", a.ActiveKeyID(), next)
		}
		if _, err := verifyA.VerifyAccessToken(ctx, mintWith(t, a, clk), "api"); err != nil {
			t.Errorf("a token of the successor: %v", err)
		}
		for _, k := range append(keysByState(t, store)[storage.KeyRetired], keysByState(t, store)[storage.KeyActive]...) {
			if k.ID == bad {
				t.Errorf("the stored set still holds the revoked key as %s", k.State)
			}
		}

		// Another replica: still trusts it until its poll, then drops it.
		if _, ok := b.PublicKey(bad); !ok {
			t.Fatal("test setup: replica B already reloaded")
		}
		clk.Advance(signer.DefaultConfig().PollInterval)
		if err := b.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		if _, ok := b.PublicKey(bad); ok {
			t.Error("replica B still has the revoked key after its poll")
		}
		if jwks, _ := b.JWKS(); strings.Contains(string(jwks), bad) {
			t.Error("replica B's JWKS still publishes the revoked key after its poll")
		}
		if _, err := verifyB.VerifyAccessToken(ctx, forged, "api"); !errors.Is(err, tokens.ErrUnknownKey) {
			t.Errorf("a token of the revoked key on replica B after its poll = %v, want ErrUnknownKey", err)
		}
		if b.ActiveKeyID() != next {
			t.Errorf("replica B signs with %s after its poll, want %s", b.ActiveKeyID(), next)
		}

		ev, err := store.ListAudit(ctx, storage.AuditFilter{Action: signer.ActionRevoke})
		if err != nil || len(ev) != 1 {
			t.Fatalf("signing_key.revoke events = %v, %v; want one", ev, err)
		}
		if e := ev[0]; e.Target != "signing_key:"+bad || e.Actor != "principal:admin" || e.RequestID != "req-1" ||
			!strings.Contains(e.Detail, "state=active") || !strings.Contains(e.Detail, "activated="+next) {
			t.Errorf("revoke event = %+v", e)
		}

		// Gone is gone: a second revocation is ErrKeyNotFound and changes nothing.
		if _, err := a.RevokeKey(ctx, bad, nil); !errors.Is(err, signer.ErrKeyNotFound) {
			t.Errorf("RevokeKey of a revoked key = %v, want ErrKeyNotFound", err)
		}
	})
}

// TestRevokeNextAndRetiredKeys: a next key (its private half is sealed in
// the same store, so it can be stolen too) is replaced by a fresh one and
// never signs; a retired key is dropped without its retention, and the
// tokens it signed stop verifying. Neither changes the active key.
func TestRevokeNextAndRetiredKeys(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, store storage.Store) {
		ctx := t.Context()
		clk := clocktest.New(t0)
		m := newManager(t, store, newKeyring(t, masterKey()), clk, signer.DefaultConfig())
		if err := m.Init(ctx); err != nil {
			t.Fatal(err)
		}
		old := m.ActiveKeyID()
		tok := mintWith(t, m, clk)
		if _, err := m.RotateNow(ctx, true); err != nil {
			t.Fatal(err)
		}
		active, next := m.ActiveKeyID(), keysByState(t, store)[storage.KeyNext][0].ID

		r, err := m.RevokeKey(ctx, next, nil)
		if err != nil || r.State != storage.KeyNext || r.Activated != "" || r.Next == "" || r.Next == next {
			t.Fatalf("RevokeKey(next) = %+v, %v; want it replaced by a new next key", r, err)
		}
		if got := keysByState(t, store)[storage.KeyNext]; len(got) != 1 || got[0].ID != r.Next {
			t.Errorf("next keys after revoking %s = %v, want only %s", next, got, r.Next)
		}
		if _, ok := m.PublicKey(next); ok || m.ActiveKeyID() != active {
			t.Errorf("after revoking the next key: still published %v, active %s (want %s)", ok, m.ActiveKeyID(), active)
		}

		v := &tokens.Verifier{Keys: m, Issuer: revokeIss, Now: clk.Now}
		if _, err := v.VerifyAccessToken(ctx, tok, "api"); err != nil {
			t.Fatalf("test setup: a token of the retired key: %v", err)
		}
		r, err = m.RevokeKey(ctx, old, nil)
		if err != nil || r.State != storage.KeyRetired || r.Activated != "" || r.Next != "" {
			t.Fatalf("RevokeKey(retired) = %+v, %v", r, err)
		}
		if _, err := v.VerifyAccessToken(ctx, tok, "api"); !errors.Is(err, tokens.ErrUnknownKey) {
			t.Errorf("a token of the revoked retired key = %v, want ErrUnknownKey", err)
		}
		if m.ActiveKeyID() != active || len(keysByState(t, store)[storage.KeyRetired]) != 0 {
			t.Errorf("revoking a retired key changed the active key or kept it: %v", keysByState(t, store))
		}
		if _, err := m.RevokeKey(ctx, "no-such-kid", nil); !errors.Is(err, signer.ErrKeyNotFound) {
			t.Errorf("RevokeKey(unknown) = %v, want ErrKeyNotFound", err)
		}
	})
}

// TestRevokeRefusedWithoutSuccessor: a manager that cannot make or open a
// successor (no master key, or the wrong one) refuses to revoke the key
// that signs, or the next key, and changes nothing: revoking it would
// leave nothing to sign with. A retired key needs no successor.
func TestRevokeRefusedWithoutSuccessor(t *testing.T) {
	t.Parallel()
	store := newSQLiteStore(t)
	ctx := t.Context()
	clk := clocktest.New(t0)
	good := newManager(t, store, newKeyring(t, masterKey()), clk, signer.DefaultConfig())
	if err := good.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := good.RotateNow(ctx, true); err != nil {
		t.Fatal(err)
	}
	before, _ := store.ListSigningKeys(ctx)
	set := keysByState(t, store)
	for _, kr := range []bool{false, true} {
		m, err := signer.New(store, nil, signer.DefaultConfig())
		if kr {
			m, err = signer.New(store, newKeyring(t, masterKey()), signer.DefaultConfig())
		}
		if err != nil {
			t.Fatal(err)
		}
		m.Now = clk.Now
		for _, kid := range []string{set[storage.KeyActive][0].ID, set[storage.KeyNext][0].ID} {
			if _, err := m.RevokeKey(ctx, kid, nil); !errors.Is(err, signer.ErrNoSuccessor) || !errors.Is(err, signer.ErrSealed) {
				t.Errorf("RevokeKey(%s) without a usable master key (keyring %v) = %v, want ErrNoSuccessor and ErrSealed", kid, kr, err)
			}
		}
	}
	if after, _ := store.ListSigningKeys(ctx); len(after) != len(before) {
		t.Fatalf("a refused revocation changed the set: %d keys, want %d", len(after), len(before))
	}
	m, _ := signer.New(store, nil, signer.DefaultConfig())
	if r, err := m.RevokeKey(ctx, set[storage.KeyRetired][0].ID, nil); err != nil || r.State != storage.KeyRetired {
		t.Errorf("RevokeKey(retired) with no master key = %+v, %v; want it dropped", r, err)
	}
}

// TestMultiRevokeKey: a Multi revokes a key of any algorithm through the
// Manager that owns it, and only that algorithm's keys change.
func TestMultiRevokeKey(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	store, _, _, m := newAuditedMulti(t, false)
	active := m.ActiveKeyIDs()
	r, err := m.RevokeKey(ctx, active[signer.RS256], nil)
	if err != nil || r.Algorithm != signer.RS256 || r.KeyID != active[signer.RS256] {
		t.Fatalf("Multi.RevokeKey(RS256 active) = %+v, %v", r, err)
	}
	after := m.ActiveKeyIDs()
	if after[signer.ES256] != active[signer.ES256] || after[signer.RS256] == active[signer.RS256] || after[signer.RS256] != r.Activated {
		t.Errorf("active keys after revoking RS256's = %v (was %v), want ES256 unchanged and RS256 %s", after, active, r.Activated)
	}
	if _, ok := m.PublicKey(active[signer.RS256]); ok {
		t.Error("Multi still publishes the revoked key")
	}
	// Every algorithm's Manager answers it unknown, the ES256 one (which
	// never held it) without taking it for a key it has not loaded yet.
	for try := range 2 {
		if _, ok, err := m.ResolveKey(ctx, active[signer.RS256]); ok || err != nil {
			t.Errorf("try %d: Multi.ResolveKey(revoked) = %v, %v; want unknown without error", try, ok, err)
		}
	}
	if jwks, _ := m.JWKS(); strings.Contains(string(jwks), active[signer.RS256]) {
		t.Error("Multi's JWKS still lists the revoked key")
	}
	for _, k := range keysByState(t, store)[storage.KeyRetired] {
		if k.ID == active[signer.RS256] {
			t.Error("the revoked key was retired, not removed")
		}
	}
	if _, err := m.RevokeKey(ctx, "no-such-kid", nil); !errors.Is(err, signer.ErrKeyNotFound) {
		t.Errorf("Multi.RevokeKey(unknown) = %v, want ErrKeyNotFound", err)
	}
}
