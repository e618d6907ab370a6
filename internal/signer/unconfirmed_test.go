package signer_test

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opensts/sts/internal/seal"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
	"github.com/opensts/sts/internal/ststest/clocktest"
	"github.com/opensts/sts/internal/tokens"
)

// cutKeyStore is a replica's store that it can stop reading (a partition
// between it and the database) while the other replicas still can.
type cutKeyStore struct {
	storage.Store
	cut atomic.Bool
}

var errCut = errors.New("connection refused")

// cutReplica is a replica reading cs, on clock now, with no Run loop: the
// test drives its checks.
func cutReplica(t *testing.T, cs *cutKeyStore, kr *seal.Keyring, now func() time.Time) *signer.Multi {
	t.Helper()
	b, err := signer.NewMulti(cs, kr, signer.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	b.SetLogger(slog.New(slog.DiscardHandler))
	b.SetClock(now)
	if err := b.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	return b
}

func (s *cutKeyStore) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	if s.cut.Load() {
		return nil, errCut
	}
	return s.Store.ListSigningKeys(ctx)
}

func (s *cutKeyStore) SigningKeySetVersion(ctx context.Context) (int64, error) {
	if s.cut.Load() {
		return 0, errCut
	}
	return s.Store.(storage.KeySetVersioner).SigningKeySetVersion(ctx)
}

// TestUnconfirmedKeySetFailsClosed is docs/security.md F-109: a replica
// that cannot read the stored key set kept its loaded keys for as long as
// it could not (F-66), signing with, and trusting, a key another replica
// revoked meanwhile. Once it has not confirmed its set (a load, or a
// key-set check that found the stored version unchanged) for
// signer.DefaultUnconfirmedBound, it signs nothing (ErrKeysUnavailable)
// and answers a token of any key "unavailable", never valid nor invalid;
// its JWKS still serves. A quiet check confirms the set as a load does,
// so a replica that reads storage never reaches the bound; once it reads
// again the revocation is seen.
func TestUnconfirmedKeySetFailsClosed(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s1, s2 := sharedStores(t, "sqlite")
	kr := newKeyring(t, masterKey())
	a := newReplica(t, s1, kr)
	cs := &cutKeyStore{Store: s2}
	clk := clocktest.New(time.Now())
	b := cutReplica(t, cs, kr, clk.Now)
	check := b.NewCheck()
	check(ctx)
	verifyB := &tokens.Verifier{Keys: b, Issuer: revokeIss, Now: clk.Now}
	bound := signer.DefaultUnconfirmedBound

	// Quiet checks confirm the set: B signs on past the bound.
	for range 3 {
		clk.Advance(bound - time.Second)
		check(ctx)
	}
	tok := mintWith(t, b, clk)
	bad := b.ActiveKeyID()
	if _, err := verifyB.VerifyAccessToken(ctx, tok, "api"); err != nil {
		t.Fatalf("B verifies its own token after quiet checks: %v", err)
	}

	// B is cut off; A revokes the key B signs with.
	cs.cut.Store(true)
	if _, err := a.RevokeKey(ctx, bad, nil); err != nil {
		t.Fatalf("RevokeKey(%s) on A: %v", bad, err)
	}
	check(ctx)
	clk.Advance(bound - time.Second)
	check(ctx)
	if _, err := b.Sign(ctx, "at+jwt", []byte(`{}`)); err != nil {
		t.Fatalf("B signs within the bound of its last confirmation: %v (one failed check costs nothing)", err)
	}

	clk.Advance(2 * time.Second)
	check(ctx)
	if tok, err := b.Sign(ctx, "at+jwt", []byte(`{}`)); !errors.Is(err, signer.ErrKeysUnavailable) {
		t.Errorf("B signs %v after its last confirmation, storage unreadable = %.20q, %v; want ErrKeysUnavailable", bound+time.Second, tok, err)
	}
	if _, ok := b.PublicKey(bad); ok {
		t.Errorf("B's PublicKey(%s) past the bound: found; want not trusted", bad)
	}
	if _, ok, err := b.ResolveKey(ctx, bad); ok || !errors.Is(err, signer.ErrKeysUnavailable) {
		t.Errorf("B's ResolveKey(%s) past the bound = %v, %v; want unavailable", bad, ok, err)
	}
	if _, err := verifyB.VerifyAccessToken(ctx, tok, "api"); sts.ErrorCode(err) != sts.Unavailable {
		t.Errorf("B verifies a token of %s past the bound: %v; want unavailable (neither valid nor invalid)", bad, err)
	}
	if _, err := b.JWKS(); err != nil {
		t.Errorf("B's JWKS past the bound: %v; it publishes and must keep serving", err)
	}

	// Storage again: the next check loads the set, the key is gone.
	cs.cut.Store(false)
	clk.Advance(signer.LookupInterval)
	check(ctx)
	if b.ActiveKeyID() == bad {
		t.Errorf("B still signs with %s once it reads storage again", bad)
	}
	if _, err := b.Sign(ctx, "at+jwt", []byte(`{}`)); err != nil {
		t.Errorf("B signs once it reads storage again: %v", err)
	}
	if _, err := verifyB.VerifyAccessToken(ctx, tok, "api"); sts.ErrorCode(err) == sts.Unavailable || err == nil {
		t.Errorf("B verifies the revoked key's token once it reads storage again: %v; want invalid", err)
	}
}

// TestUnconfirmedSignRereadsFirst is F-109's bound without a key-set
// check to confirm the set (a manager whose Run loop has not run, or whose
// checks a loaded machine delayed): past the bound, Sign re-reads the
// stored set once (single flight, at most once per LookupInterval) and
// signs when that read confirms it; only a read that fails makes it
// refuse. Before, a replica whose checks ran late refused to sign with a
// set storage would have confirmed at once (the full suite under load
// answered "cannot sign tokens now").
func TestUnconfirmedSignRereadsFirst(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, s2 := sharedStores(t, "sqlite")
	kr := newKeyring(t, masterKey())
	cs := &cutKeyStore{Store: s2}
	clk := clocktest.New(time.Now())
	b := cutReplica(t, cs, kr, clk.Now)
	bound := signer.DefaultUnconfirmedBound

	// No check ran; storage answers: Sign reads the set and signs.
	clk.Advance(bound + time.Second)
	if _, err := b.Sign(ctx, "at+jwt", []byte(`{}`)); err != nil {
		t.Fatalf("Sign past the bound with storage readable: %v; want a re-read, then a signature", err)
	}
	if _, err := b.SignFor(ctx, "at+jwt", func(string) ([]byte, error) { return []byte(`{}`), nil }); err != nil {
		t.Fatalf("SignFor right after the re-read: %v", err)
	}

	// Storage cut: past the bound again, the re-read fails and Sign refuses.
	cs.cut.Store(true)
	clk.Advance(bound + time.Second)
	if tok, err := b.Sign(ctx, "at+jwt", []byte(`{}`)); !errors.Is(err, signer.ErrKeysUnavailable) {
		t.Errorf("Sign past the bound, storage unreadable = %.20q, %v; want ErrKeysUnavailable", tok, err)
	}
	// Within LookupInterval of that failed read no new read starts.
	cs.cut.Store(false)
	if _, err := b.Sign(ctx, "at+jwt", []byte(`{}`)); !errors.Is(err, signer.ErrKeysUnavailable) {
		t.Errorf("Sign within %s of a failed re-read: %v; want ErrKeysUnavailable (reads spaced)", signer.LookupInterval, err)
	}
	clk.Advance(signer.LookupInterval)
	if _, err := b.Sign(ctx, "at+jwt", []byte(`{}`)); err != nil {
		t.Errorf("Sign once storage answers again, %s later: %v", signer.LookupInterval, err)
	}
}
