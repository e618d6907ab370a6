package signer_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/opensts/sts/internal/seal"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
)

// TestRollingDropRetiresAbandonedKeys (docs/security.md F-100): the
// operator drops RS256 from keys.extra_algorithms and restarts ALL
// replicas in a rolling update with surge (a new replica starts while the
// old one still serves). The old one's last poll may still make a new
// active and next RS256 key and sign with it. Every replica publishes
// every live key, so that token verifies (go-oidc) against the new
// replicas' JWKS; and once the RS256 active key is overdue for rotation
// (keys.rotation_period plus keys.publish_ahead: a replica keeping RS256
// would have rotated it), a poll retires the RS256 keys for good. Before,
// the new replicas published none of them and nothing ever retired them.
func TestRollingDropRetiresAbandonedKeys(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			s1, s2 := sharedStores(t, kind)
			kr := newKeyring(t, masterKey())
			oldA := polledReplica(t, s1, kr, signer.RS256)
			_ = polledReplica(t, s2, kr, signer.RS256) // old B, replaced below
			newB := polledReplica(t, s2, kr)           // RS256 dropped: retired at start
			newA := polledReplica(t, s1, kr)           // surge: new A starts while old A serves
			// Old A's last poll before it stops.
			if err := oldA.Tick(ctx); err != nil {
				t.Fatalf("oldA.Tick: %v", err)
			}
			rs, err := oldA.For(signer.RS256)
			if err != nil {
				t.Fatal(err)
			}
			tok := signForRP(t, rs)
			// Old A is gone. The new replicas publish its keys.
			verifyAgainst := func(when string) {
				t.Helper()
				for name, m := range map[string]*signer.Multi{"newA": newA, "newB": newB} {
					if err := verifyAgainstJWKS(t, m, tok); err != nil {
						t.Errorf("%s: go-oidc against %s's JWKS: the RS256 token old A signed (unexpired) = %v, want verified", when, name, err)
					}
				}
			}
			for _, m := range []*signer.Multi{newA, newB} {
				if err := m.Tick(ctx); err != nil {
					t.Fatal(err)
				}
			}
			verifyAgainst("before the RS256 key is overdue")
			// Until then no replica can tell RS256 is dropped everywhere:
			// the keys stay live (published, not signing here).
			rows, err := s1.ListSigningKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			live := 0
			for _, k := range rows {
				if k.Algorithm == signer.RS256 && k.State != storage.KeyRetired {
					live++
				}
			}
			if live != 2 {
				t.Errorf("live RS256 keys before they are overdue = %d, want 2 (old A's active and next)", live)
			}
			// Past keys.rotation_period plus keys.publish_ahead: overdue.
			later := time.Now().Add(signer.DefaultConfig().RotationPeriod + signer.DefaultConfig().PublishAhead + time.Minute)
			for _, m := range []*signer.Multi{newA, newB} {
				m.SetClock(func() time.Time { return later })
			}
			for range 5 {
				for _, m := range []*signer.Multi{newA, newB} {
					if err := m.Tick(ctx); err != nil {
						t.Fatal(err)
					}
				}
			}
			rows, err = s1.ListSigningKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range rows {
				if k.Algorithm == signer.RS256 && k.State != storage.KeyRetired {
					t.Errorf("RS256 key %s still %s once overdue after every replica dropped RS256 and polled 5 times: never retired", k.ID, k.State)
				}
			}
			// Retired, they stay published until their tokens expire.
			verifyAgainst("once retired")
		})
	}
}

// TestDisagreeingReplicasVerifyEachOthersTokens (docs/security.md F-100):
// replica B (no RS256) publishes and resolves the live RS256 keys replica
// A (RS256 kept) signs with, also after a forced rotation through A: an
// RS256 token A signs verifies with go-oidc against B's JWKS and B's
// ResolveKey (introspection, userinfo) finds its kid. Before, B published
// and resolved none of them for as long as the disagreement lasted.
func TestDisagreeingReplicasVerifyEachOthersTokens(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			_, _, a, b := disagreeingReplicas(t, kind)
			for step, do := range []func() error{
				func() error { return nil },
				func() error { _, err := a.RotateEach(ctx, true, nil); return err },
			} {
				if err := do(); err != nil {
					t.Fatal(err)
				}
				if err := b.Tick(ctx); err != nil {
					t.Fatal(err)
				}
				rs, err := a.For(signer.RS256)
				if err != nil {
					t.Fatal(err)
				}
				tok := signForRP(t, rs)
				kid := a.ActiveKeyIDs()[signer.RS256]
				if err := verifyAgainstJWKS(t, b, tok); err != nil {
					t.Errorf("step %d: go-oidc against B's JWKS, A's RS256 token (kid %s) = %v, want verified", step, kid, err)
				}
				if _, ok, _ := b.ResolveKey(ctx, kid); !ok {
					t.Errorf("step %d: B.ResolveKey(%s) (A's active RS256 key) = unknown, want found", step, kid)
				}
			}
		})
	}
}

// TestRevokeThroughDisagreeingReplicaKeepsOthersKeys (docs/security.md
// F-100): a revocation follows the poll's rule, so revoking B's own ES256
// next key through B (no RS256) leaves A's active RS256 key, which is not
// overdue, active. Before, it retired it, and A's next poll made a new
// RS256 key active at once, never published ahead.
func TestRevokeThroughDisagreeingReplicaKeepsOthersKeys(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			s1, s2, a, b := disagreeingReplicas(t, kind)
			rs := a.ActiveKeyIDs()[signer.RS256]
			rows, err := s2.ListSigningKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var next string
			for _, k := range rows {
				if k.Algorithm == signer.ES256 && k.State == storage.KeyNext {
					next = k.ID
				}
			}
			if _, err := b.RevokeKey(ctx, next, nil); err != nil {
				t.Fatal(err)
			}
			rows, err = s1.ListSigningKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(rows, func(k storage.SigningKey) bool { return k.ID == rs })
			if rs == "" || i < 0 {
				t.Fatalf("A's active RS256 key %q is not in the stored set after revoking B's ES256 next key %s through B", rs, next)
			}
			if k := rows[i]; k.State != storage.KeyActive {
				t.Errorf("A's active RS256 key %s is %s after revoking B's ES256 next key %s through B, want still active (no retirement but at start)", rs, k.State, next)
			}
		})
	}
}

// polledReplica is a replica on store that keeps the extra algorithms,
// started (Init) but not polling: the test polls it with Tick.
func polledReplica(t *testing.T, store storage.KeyStore, kr *seal.Keyring, extra ...string) *signer.Multi {
	t.Helper()
	m, err := signer.NewMulti(store, kr, signer.DefaultConfig(), extra...)
	if err != nil {
		t.Fatal(err)
	}
	m.SetLogger(slog.New(slog.DiscardHandler))
	if err := m.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	return m
}

// signForRP is a JWT s signs for audience "rp" of https://sts.example,
// valid for ten minutes.
func signForRP(t *testing.T, s signer.Signer) string {
	t.Helper()
	now := time.Now()
	payload, _ := json.Marshal(map[string]any{"iss": "https://sts.example", "aud": "rp", "sub": "u", "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()})
	tok, err := s.Sign(t.Context(), "JWT", payload)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// verifyAgainstJWKS is go-oidc's verdict on tok (audience "rp") against
// m's JWKS document, served over loopback.
func verifyAgainstJWKS(t *testing.T, m *signer.Multi, tok string) error {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		doc, _ := m.JWKS()
		w.Header().Set("Content-Type", "application/json")
		w.Write(doc)
	}))
	defer srv.Close()
	v := oidc.NewVerifier("https://sts.example", oidc.NewRemoteKeySet(t.Context(), srv.URL), &oidc.Config{ClientID: "rp", SupportedSigningAlgs: []string{"RS256", "ES256"}})
	_, err := v.Verify(t.Context(), tok)
	return err
}

// disagreeingReplicas is two replicas on one database of kind (stores s1
// and s2): a keeping RS256 beside ES256, b not, b started after a and a
// polled once since.
func disagreeingReplicas(t *testing.T, kind string) (s1, s2 storage.Store, a, b *signer.Multi) {
	t.Helper()
	s1, s2 = sharedStores(t, kind)
	kr := newKeyring(t, masterKey())
	a = polledReplica(t, s1, kr, signer.RS256)
	b = polledReplica(t, s2, kr)
	// b's start leaves a's RS256 keys alone: they are not overdue.
	if err := a.Tick(t.Context()); err != nil {
		t.Fatalf("a.Tick after b's start: %v", err)
	}
	return s1, s2, a, b
}
