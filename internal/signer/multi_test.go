package signer_test

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/seal"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/clocktest"
	"github.com/opensts/sts/internal/tokens"
)

// TestMultiRotateEach: an on-demand rotation of a Multi rotates every
// algorithm (each reports its own), ListKeys shows both algorithms, and a
// key that signed before still verifies after (it is retired, published).
func TestMultiRotateEach(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	store := newSQLiteStore(t)
	clk := clocktest.New(t0)
	m, err := signer.NewMulti(store, newKeyring(t, masterKey()), signer.Config{Algorithm: signer.ES256}, signer.RS256)
	if err != nil {
		t.Fatal(err)
	}
	m.SetClock(clk.Now)
	m.SetLogger(slog.New(slog.DiscardHandler))
	if err := m.Init(ctx); err != nil {
		t.Fatal(err)
	}
	before := m.ActiveKeyIDs()
	if before[signer.ES256] == "" || before[signer.RS256] == "" || m.ActiveKeyID() != before[signer.ES256] {
		t.Fatalf("active keys = %v (primary %s), want one per algorithm", before, m.ActiveKeyID())
	}

	if _, err := m.RotateEach(ctx, false, nil); !errors.Is(err, signer.ErrNextNotReady) {
		t.Fatalf("RotateEach(no force) with brand-new next keys = %v, want ErrNextNotReady", err)
	}
	rs, err := m.RotateEach(ctx, true, nil)
	if err != nil || len(rs) != 2 {
		t.Fatalf("RotateEach(force) = %+v, %v; want two rotations", rs, err)
	}
	after := m.ActiveKeyIDs()
	for i, alg := range []string{signer.ES256, signer.RS256} {
		r := rs[i]
		if r.Algorithm != alg || !r.Rotated || r.Retired != before[alg] || r.Activated != after[alg] || after[alg] == before[alg] {
			t.Errorf("rotation %d = %+v; want %s rotated from %s to %s", i, r, alg, before[alg], after[alg])
		}
		if k, ok := m.PublicKey(before[alg]); !ok || k.Algorithm != alg {
			t.Errorf("retired %s key %s no longer published: %+v %v", alg, before[alg], k, ok)
		}
	}
	list, err := m.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	algs := map[string]int{}
	for _, k := range list {
		algs[k.Algorithm]++
	}
	if algs[signer.ES256] != 3 || algs[signer.RS256] != 3 {
		t.Errorf("Keys per algorithm = %v, want 3 (retired, active, next) each", algs)
	}
	ev := rs[1].AuditEvent("admin", "", true, clk.Now())
	if want := "alg=RS256"; !strings.Contains(ev.Detail, want) {
		t.Errorf("audit detail %q lacks %q", ev.Detail, want)
	}
}

// TestMultiPublicKeyAllocs: looking a kid up in a Multi (every verified
// token does) allocates nothing, as in a lone Manager.
func TestMultiPublicKeyAllocs(t *testing.T) {
	m, err := signer.NewMulti(newSQLiteStore(t), newKeyring(t, masterKey()), signer.Config{Algorithm: signer.ES256}, signer.RS256)
	if err != nil {
		t.Fatal(err)
	}
	m.SetLogger(slog.New(slog.DiscardHandler))
	if err := m.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	ids := m.ActiveKeyIDs()
	for _, kid := range []string{ids[signer.ES256], ids[signer.RS256]} {
		if n := testing.AllocsPerRun(100, func() {
			if _, ok := m.PublicKey(kid); !ok {
				t.Fatal("kid not found")
			}
		}); n != 0 {
			t.Errorf("PublicKey(%s) allocates %v times per call, want 0", kid, n)
		}
	}
}

// TestMultiRotateMaster: a master-key rotation re-wraps every algorithm's
// keys, and ResealKeys over the store (what `sts keys rotate-master` runs)
// covers them all too.
func TestMultiRotateMaster(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	store := newSQLiteStore(t)
	oldKey, newKey, newer := masterKey(), masterKey(), masterKey()
	m, err := signer.NewMulti(store, newKeyring(t, oldKey), signer.Config{Algorithm: signer.ES256}, signer.RS256)
	if err != nil {
		t.Fatal(err)
	}
	m.SetLogger(slog.New(slog.DiscardHandler))
	if err := m.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := m.RotateMaster(ctx, newKeyring(t, newKey, oldKey)); err != nil || n != 4 {
		t.Fatalf("RotateMaster = %d, %v; want 4 rows (active and next of each algorithm)", n, err)
	}
	if n, err := signer.ResealKeys(ctx, store, newKeyring(t, newer, newKey)); err != nil || n != 4 {
		t.Fatalf("ResealKeys = %d, %v; want 4 rows", n, err)
	}
	rows, err := store.ListSigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.MasterKeyID != seal.KeyID(newer) {
			t.Errorf("%s key %s still under %s", r.Algorithm, r.ID, r.MasterKeyID)
		}
	}
}

// TestMultiVerifiesEveryAlgorithm: a token verifier over a Multi (what
// introspection, bearer auth and re-exchange use in serve) accepts access
// tokens signed by any algorithm's key, before and after a forced
// rotation of every algorithm; Sign uses the primary algorithm.
func TestMultiVerifiesEveryAlgorithm(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clk := clocktest.New(time.Now().Truncate(time.Second))
	m, err := signer.NewMulti(newSQLiteStore(t), newKeyring(t, masterKey()), signer.Config{Algorithm: signer.ES256}, signer.RS256)
	if err != nil {
		t.Fatal(err)
	}
	m.SetClock(clk.Now)
	m.SetLogger(slog.New(slog.DiscardHandler))
	if err := m.Init(ctx); err != nil {
		t.Fatal(err)
	}
	const iss, aud = "https://sts.example.com", "https://api.example.com"
	ver := &tokens.Verifier{Keys: m, Issuer: iss, Now: clk.Now}
	mint := func(s signer.Signer) string {
		t.Helper()
		tok, _, err := (&tokens.Issuer{Signer: s, IssuerURL: iss, Now: clk.Now}).MintAccessToken(ctx, tokens.AccessClaims{
			Subject: "alice", Audience: tokens.Audience{aud}, Expiry: tokens.NewNumericDate(clk.Now().Add(10 * time.Minute))})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	rs, err := m.For(signer.RS256)
	if err != nil {
		t.Fatal(err)
	}
	es, rsTok := mint(m), mint(rs)
	if _, err := m.RotateEach(ctx, true, nil); err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"ES256 (primary)": es, "RS256": rsTok, "ES256 after rotation": mint(m), "RS256 after rotation": mint(rs)} {
		if _, err := ver.VerifyAccessToken(ctx, tok, aud); err != nil {
			t.Errorf("%s token: %v", name, err)
		}
	}
	if _, err := m.For(signer.EdDSA); !errors.Is(err, signer.ErrNoSigningKey) {
		t.Errorf("For(EdDSA) without an EdDSA key = %v, want ErrNoSigningKey", err)
	}
}

// TestMultiDroppedAlgorithm: when an algorithm stops being kept (RS256
// made keys.algorithm, so the ES256 keys are no longer anyone's; or
// keys.extra_algorithms emptied), the next start does not fail on two
// active keys: they stay published, so tokens they signed keep verifying,
// and nothing of theirs signs here. Another replica may still keep them
// (a rolling restart), so they are retired once overdue for rotation
// (keys.rotation_period plus keys.publish_ahead), by a poll
// (docs/security.md F-100).
func TestMultiDroppedAlgorithm(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		primary      string
		extra        []string
		dropped, now string
	}{
		{"RS256 becomes the primary", signer.RS256, nil, signer.ES256, signer.RS256},
		{"extra algorithms emptied", signer.ES256, nil, signer.RS256, signer.ES256},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			store, kr := newSQLiteStore(t), newKeyring(t, masterKey())
			before, err := signer.NewMulti(store, kr, signer.Config{Algorithm: signer.ES256}, signer.RS256)
			if err != nil {
				t.Fatal(err)
			}
			before.SetLogger(slog.New(slog.DiscardHandler))
			if err := before.Init(ctx); err != nil {
				t.Fatal(err)
			}
			old := before.ActiveKeyIDs()[tc.dropped]

			after, err := signer.NewMulti(store, kr, signer.Config{Algorithm: tc.primary}, tc.extra...)
			if err != nil {
				t.Fatal(err)
			}
			after.SetLogger(slog.New(slog.DiscardHandler))
			if err := after.Init(ctx); err != nil {
				t.Fatalf("Init after %s stopped being kept: %v", tc.dropped, err)
			}
			if ids := after.ActiveKeyIDs(); len(ids) != 1 || ids[tc.now] == "" {
				t.Errorf("active keys = %v, want only %s's", ids, tc.now)
			}
			if k, ok := after.PublicKey(old); !ok || k.Algorithm != tc.dropped {
				t.Errorf("the dropped %s key %s is no longer published", tc.dropped, old)
			}
			later := time.Now().Add(signer.DefaultConfig().RotationPeriod + signer.DefaultConfig().PublishAhead + time.Minute)
			after.SetClock(func() time.Time { return later })
			if err := after.Tick(ctx); err != nil {
				t.Errorf("Tick once the dropped keys are overdue: %v", err)
			}
			if k, ok := after.PublicKey(old); !ok || k.Algorithm != tc.dropped {
				t.Errorf("the retired %s key %s is no longer published", tc.dropped, old)
			}
			rows, err := store.ListSigningKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				if r.Algorithm == tc.dropped && (r.State != storage.KeyRetired || len(r.Sealed) != 0 || r.DeleteAfter.IsZero()) {
					t.Errorf("dropped %s key %s is %s (sealed %d bytes, delete after %v), want retired without its private half",
						tc.dropped, r.ID, r.State, len(r.Sealed), r.DeleteAfter)
				}
			}
			// Ticks (the rotation loop) change nothing more and keep serving.
			if err := after.Tick(ctx); err != nil {
				t.Errorf("Tick: %v", err)
			}
		})
	}
}
