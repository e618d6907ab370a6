package hosttoken_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/nacl/box"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/hosttoken"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/sts"
)

// runnerKeyPair registers a fresh X25519 key for runner (as admin) and
// returns the key pair.
func (w *world) runnerKeyPair(t *testing.T, runner hosttoken.Caller) (pub, priv *[32]byte) {
	t.Helper()
	pub, priv, err := box.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	admin := w.admin
	admin.OrgID = runner.OrgID
	if _, err := hosttoken.SetRunnerKey(t.Context(), w.store, &audit.Writer{Store: w.store}, admin, runner.PrincipalID, pub[:], time.Now()); err != nil {
		t.Fatalf("SetRunnerKey: %v", err)
	}
	return pub, priv
}

// TestRunnerValueSealed: the runner a token belongs to gets its values
// sealed to its registered key and opens them with its private key; the
// read is audited; nobody else gets anything.
func TestRunnerValueSealed(t *testing.T) {
	t.Parallel()
	for name, newStore := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, newStore(t))
			ctx := t.Context()
			tok := w.create(t, "gho_sealed_value", "ghr_sealed_refresh", "", time.Time{})
			in := hosttoken.ValueRequest{RunnerID: w.runner.PrincipalID, PrincipalID: w.user.PrincipalID, Host: "GitHub.com"}

			_, err := w.svc.RunnerValue(ctx, w.runner, in)
			wantCode(t, "RunnerValue without a key", err, sts.FailedPrecondition)
			if err == nil || !strings.Contains(err.Error(), "public key") {
				t.Errorf("no-key error does not say what is missing: %v", err)
			}

			pub, priv := w.runnerKeyPair(t, w.runner)
			v, err := w.svc.RunnerValue(ctx, w.runner, in)
			if err != nil {
				t.Fatalf("RunnerValue: %v", err)
			}
			if strings.Contains(string(v.Value), "gho_sealed_value") || strings.Contains(string(v.RefreshToken), "ghr_sealed_refresh") {
				t.Fatal("value delivered in clear")
			}
			plain, ok := box.OpenAnonymous(nil, v.Value, pub, priv)
			if !ok || string(plain) != "gho_sealed_value" {
				t.Errorf("open value = %q, %v", plain, ok)
			}
			plain, ok = box.OpenAnonymous(nil, v.RefreshToken, pub, priv)
			if !ok || string(plain) != "ghr_sealed_refresh" {
				t.Errorf("open refresh = %q, %v", plain, ok)
			}
			if v.TokenID != tok.ID || v.Source != storage.HostTokenSourceOAuth {
				t.Errorf("RunnerValue = %+v", v)
			}
			// Another key pair cannot open it.
			opub, opriv, _ := box.GenerateKey(rand.Reader)
			if _, ok := box.OpenAnonymous(nil, v.Value, opub, opriv); ok {
				t.Error("another key opened the box")
			}
			evs, err := w.store.ListAudit(ctx, storage.AuditFilter{OrgID: w.user.OrgID, Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			reads := 0
			for _, ev := range evs {
				if ev.Action == "host_token.read_value" && strings.HasPrefix(ev.Target, "host_token:"+tok.ID) && ev.Actor == "principal:"+w.runner.PrincipalID {
					reads++
				}
			}
			if reads != 1 {
				t.Errorf("audited reads = %d, want 1", reads)
			}

			// A second runner of the organization, with its own key.
			runner2 := principal(t, w.store, w.user.OrgID, storage.PrincipalRunner, false)
			w.runnerKeyPair(t, runner2)
			_, err = w.svc.RunnerValue(ctx, runner2, in)
			wantCode(t, "another runner naming the owner runner", err, sts.PermissionDenied)
			in2 := in
			in2.RunnerID = runner2.PrincipalID
			_, err = w.svc.RunnerValue(ctx, runner2, in2)
			wantCode(t, "another runner asking as itself", err, sts.NotFound)
			// A user (even the subject) and an admin are not runners.
			for _, c := range []hosttoken.Caller{w.user, w.admin} {
				c2 := in
				c2.RunnerID = c.PrincipalID
				_, err = w.svc.RunnerValue(ctx, c, in)
				wantCode(t, "non-runner", err, sts.PermissionDenied)
				_, err = w.svc.RunnerValue(ctx, c, c2)
				wantCode(t, "non-runner as itself", err, sts.PermissionDenied)
			}
			// A runner of another organization.
			alien := principal(t, w.store, w.evil.OrgID, storage.PrincipalRunner, false)
			w.runnerKeyPair(t, alien)
			_, err = w.svc.RunnerValue(ctx, alien, in)
			wantCode(t, "runner of another org naming the owner runner", err, sts.PermissionDenied)
			in3 := in
			in3.RunnerID = alien.PrincipalID
			_, err = w.svc.RunnerValue(ctx, alien, in3)
			wantCode(t, "runner of another org asking as itself", err, sts.NotFound)
			// Unknown host or principal.
			in4 := in
			in4.Host = "gitlab.com"
			_, err = w.svc.RunnerValue(ctx, w.runner, in4)
			wantCode(t, "other host", err, sts.NotFound)
		})
	}
}

// TestRunnerKeyRules: 32-byte usable keys only, admins of the runner's
// organization only, runners only; rotation replaces the key.
func TestRunnerKeyRules(t *testing.T) {
	t.Parallel()
	w := newWorld(t, backends(t)["sqlite"](t))
	ctx := t.Context()
	set := func(c hosttoken.Caller, runnerID string, pub []byte) error {
		_, err := hosttoken.SetRunnerKey(ctx, w.store, nil, c, runnerID, pub, time.Now())
		return err
	}
	good, _, _ := box.GenerateKey(rand.Reader)
	wantCode(t, "31 bytes", set(w.admin, w.runner.PrincipalID, good[:31]), sts.Invalid)
	wantCode(t, "33 bytes", set(w.admin, w.runner.PrincipalID, append(good[:], 0)), sts.Invalid)
	wantCode(t, "all zero (low order)", set(w.admin, w.runner.PrincipalID, make([]byte, 32)), sts.Invalid)
	wantCode(t, "not a runner", set(w.admin, w.user.PrincipalID, good[:]), sts.Invalid)
	wantCode(t, "the runner itself", set(w.runner, w.runner.PrincipalID, good[:]), sts.PermissionDenied)
	wantCode(t, "a user", set(w.user, w.runner.PrincipalID, good[:]), sts.PermissionDenied)
	wantCode(t, "admin of another org", set(w.evil, w.runner.PrincipalID, good[:]), sts.NotFound)
	_, err := w.store.GetRunnerKey(ctx, w.runner.PrincipalID)
	wantErrIs(t, "after refusals", err, storage.ErrNotFound)

	if err := set(w.admin, w.runner.PrincipalID, good[:]); err != nil {
		t.Fatal(err)
	}
	rotated, _, _ := box.GenerateKey(rand.Reader)
	if err := set(w.admin, w.runner.PrincipalID, rotated[:]); err != nil {
		t.Fatal(err)
	}
	k, err := hosttoken.GetRunnerKey(ctx, w.store, w.admin, w.runner.PrincipalID)
	if err != nil || string(k.PublicKey) != string(rotated[:]) {
		t.Errorf("GetRunnerKey after rotation = %x, %v", k.PublicKey, err)
	}
}

func wantErrIs(t *testing.T, what string, err, want error) {
	t.Helper()
	if err != want && (err == nil || !strings.Contains(err.Error(), want.Error())) {
		t.Errorf("%s: %v, want %v", what, err, want)
	}
}

// TestOwnerBoundCiphertext: the AAD binds the runner and the subject, so a
// row whose owner is changed in storage no longer opens (counted as
// corruption, nothing disclosed).
func TestOwnerBoundCiphertext(t *testing.T) {
	t.Parallel()
	w := newWorld(t, backends(t)["sqlite"](t))
	ctx := t.Context()
	tok := w.create(t, "gho_owner_bound", "", "", time.Time{})
	other := principal(t, w.store, w.user.OrgID, storage.PrincipalUser, false)
	err := w.store.UpdateHostToken(ctx, tok.ID, func(old storage.HostToken) (storage.HostToken, error) {
		old.SubjectID = other.PrincipalID
		return old, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	v, err := w.svc.Value(ctx, other, tok.ID)
	wantCode(t, "Value after the subject was changed in storage", err, sts.Internal)
	if v.Token != "" {
		t.Fatalf("disclosed %q", v.Token)
	}
	runner2 := principal(t, w.store, w.user.OrgID, storage.PrincipalRunner, false)
	tok2 := w.create(t, "gho_owner_bound2", "", "", time.Time{})
	err = w.store.UpdateHostToken(ctx, tok2.ID, func(old storage.HostToken) (storage.HostToken, error) {
		old.RunnerID = runner2.PrincipalID
		return old, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.svc.Value(ctx, w.user, tok2.ID)
	wantCode(t, "Value after the runner was changed in storage", err, sts.Internal)
	if w.svc.Corrupt() != 2 {
		t.Errorf("Corrupt() = %d, want 2", w.svc.Corrupt())
	}
}

// TestEarlierSealVersionsStillOpen: rows sealed before the owner was
// bound (seal version 1) or before the host, integration and source were
// (version 2) still open, and Reseal upgrades them to the current AAD,
// after which a changed host no longer opens (docs/security.md T-147).
func TestEarlierSealVersionsStillOpen(t *testing.T) {
	t.Parallel()
	w := newWorld(t, backends(t)["sqlite"](t))
	ctx := t.Context()
	env := w.svc.Envelope
	ids := map[int]string{}
	for _, version := range []int{1, 2} {
		tok := w.create(t, "placeholder", "", "", time.Time{})
		ids[version] = tok.ID
		err := w.store.UpdateHostToken(ctx, tok.ID, func(old storage.HostToken) (storage.HostToken, error) {
			old.SealVersion = version
			dk, wrapped, keyID, err := env.NewDataKey(hosttoken.AAD(old, "data_key"))
			if err != nil {
				return old, err
			}
			defer dk.Clear()
			ct, err := dk.Seal([]byte("gho_old_row"), hosttoken.AAD(old, "token"))
			if err != nil {
				return old, err
			}
			rt, err := dk.Seal([]byte("ghr_old_row"), hosttoken.AAD(old, "refresh_token"))
			old.SealedToken, old.SealedRefresh, old.SealedDataKey, old.MasterKeyID = ct, rt, wrapped, keyID
			return old, err
		})
		if err != nil {
			t.Fatal(err)
		}
		v, err := w.svc.Value(ctx, w.user, tok.ID)
		if err != nil || v.Token != "gho_old_row" || v.RefreshToken != "ghr_old_row" {
			t.Fatalf("Value(v%d row) = %+v, %v", version, v, err)
		}
	}
	n, err := hosttoken.Reseal(ctx, w.store, env)
	if err != nil || n != 2 {
		t.Fatalf("Reseal = %d, %v; want 2 rows upgraded", n, err)
	}
	for version, id := range ids {
		row, _ := w.store.GetHostToken(ctx, id)
		if row.SealVersion != hosttoken.SealCurrent {
			t.Errorf("v%d row: SealVersion after Reseal = %d, want %d", version, row.SealVersion, hosttoken.SealCurrent)
		}
		v, err := w.svc.Value(ctx, w.user, id)
		if err != nil || v.Token != "gho_old_row" || v.RefreshToken != "ghr_old_row" {
			t.Fatalf("Value(upgraded v%d row) = %+v, %v", version, v, err)
		}
	}
	if n, err := hosttoken.Reseal(ctx, w.store, env); err != nil || n != 0 {
		t.Errorf("second Reseal = %d, %v; want 0", n, err)
	}
	err = w.store.UpdateHostToken(ctx, ids[2], func(old storage.HostToken) (storage.HostToken, error) {
		old.Host = "evil.example"
		return old, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.svc.Value(ctx, w.user, ids[2])
	wantCode(t, "upgraded row whose host changed in storage", err, sts.Internal)
}

// TestUpdateMetadata: the token's runner records the SCM account; others
// cannot.
func TestUpdateMetadata(t *testing.T) {
	t.Parallel()
	w := newWorld(t, backends(t)["sqlite"](t))
	ctx := t.Context()
	tok := w.create(t, "gho_meta", "", "", time.Time{})
	ext := "octocat-1"
	got, err := w.svc.UpdateMetadata(ctx, w.runner, w.runner.PrincipalID, tok.ID, &ext)
	if err != nil || got.ExternalUserID != ext {
		t.Fatalf("UpdateMetadata = %+v, %v", got, err)
	}
	if g, _ := w.svc.Get(ctx, w.user, tok.ID); g.ExternalUserID != ext {
		t.Errorf("Get.ExternalUserID = %q", g.ExternalUserID)
	}
	bad := "a\x00b"
	_, err = w.svc.UpdateMetadata(ctx, w.runner, w.runner.PrincipalID, tok.ID, &bad)
	wantCode(t, "control character", err, sts.Invalid)
	_, err = w.svc.UpdateMetadata(ctx, w.user, w.runner.PrincipalID, tok.ID, &ext)
	wantCode(t, "the subject", err, sts.NotFound)
	_, err = w.svc.UpdateMetadata(ctx, w.evil, w.runner.PrincipalID, tok.ID, &ext)
	wantCode(t, "another org", err, sts.NotFound)
	runner2 := principal(t, w.store, w.user.OrgID, storage.PrincipalRunner, false)
	_, err = w.svc.UpdateMetadata(ctx, runner2, runner2.PrincipalID, tok.ID, &ext)
	wantCode(t, "another runner", err, sts.NotFound)
	if _, err := w.svc.UpdateMetadata(ctx, w.admin, w.runner.PrincipalID, tok.ID, nil); err != nil {
		t.Errorf("admin: %v", err)
	}
	if g, _ := w.svc.Get(ctx, w.user, tok.ID); g.ExternalUserID != ext {
		t.Errorf("unset externalUserId changed it: %q", g.ExternalUserID)
	}
}

// TestRowContextBoundCiphertext: the AAD binds the host, the integration
// and the source too (docs/security.md T-147). A row whose host is
// changed in storage (a tampered backup restored, a database write) would
// otherwise hand the runner a user's github.com token when it asks for
// the attacker's host, and the runner would send it there; a changed
// integration would send the refresh token to another token endpoint.
// Each such row fails to open, is counted as corruption and discloses
// nothing.
func TestRowContextBoundCiphertext(t *testing.T) {
	t.Parallel()
	w := newWorld(t, backends(t)["sqlite"](t))
	ctx := t.Context()
	pub, priv := w.runnerKeyPair(t, w.runner)
	other := storage.NewID()
	for _, tc := range []struct {
		name   string
		tamper func(*storage.HostToken)
		host   string
	}{
		{"host", func(r *storage.HostToken) { r.Host = "evil.example" }, "evil.example"},
		{"integration", func(r *storage.HostToken) { r.IntegrationID = other }, "github.com"},
		{"source", func(r *storage.HostToken) { r.Source = storage.HostTokenSourcePAT }, "github.com"},
	} {
		tok := w.create(t, "gho_context_bound_"+tc.name, "ghr_context_bound", "", time.Time{})
		err := w.store.UpdateHostToken(ctx, tok.ID, func(old storage.HostToken) (storage.HostToken, error) {
			tc.tamper(&old)
			return old, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		v, err := w.svc.RunnerValue(ctx, w.runner, hosttoken.ValueRequest{
			RunnerID: w.runner.PrincipalID, PrincipalID: w.user.PrincipalID, Host: tc.host})
		wantCode(t, tc.name+" changed in storage: RunnerValue", err, sts.Internal)
		if plain, ok := box.OpenAnonymous(nil, v.Value, pub, priv); ok {
			t.Errorf("%s changed in storage: delivered %q", tc.name, plain)
		}
		if err := w.store.DeleteHostToken(ctx, tok.ID); err != nil {
			t.Fatal(err)
		}
	}
	if w.svc.Corrupt() != 3 {
		t.Errorf("Corrupt() = %d, want 3", w.svc.Corrupt())
	}
}

// TestExpiredTokenNotDelivered: a token past its expiresAt that nothing
// will refresh is not delivered (docs/security.md T-148): the runner gets
// not_found at once, as after the garbage collection that removes such a
// row, instead of the value for as long as the row waits for it
// (gc.interval). A token a configured integration refreshes (OAuth, with a
// refresh token and an integration) is still delivered after its expiry,
// with its refresh token, as the garbage collection keeps it. The
// collection itself is the judge: delivered exactly when it keeps the row.
func TestExpiredTokenNotDelivered(t *testing.T) {
	t.Parallel()
	w := newWorld(t, backends(t)["sqlite"](t))
	ctx := t.Context()
	w.runnerKeyPair(t, w.runner)
	t0 := w.clock.Now()
	integration := storage.NewID()
	cases := []struct {
		name, host     string
		source         storage.HostTokenSource
		refresh, integ string
		expires        time.Time
		delivered      bool
	}{
		{"expired PAT", "pat.example", storage.HostTokenSourcePAT, "", "", t0.Add(time.Hour), false},
		{"expired OAuth without integration", "oauth.example", storage.HostTokenSourceOAuth, "ghr_x", "", t0.Add(time.Hour), false},
		{"expired OAuth without refresh token", "norefresh.example", storage.HostTokenSourceOAuth, "", integration, t0.Add(time.Hour), false},
		{"expired, refreshable", "refreshable.example", storage.HostTokenSourceOAuth, "ghr_y", integration, t0.Add(time.Hour), true},
		{"live", "live.example", storage.HostTokenSourcePAT, "", "", t0.Add(3 * time.Hour), true},
		{"no expiry", "forever.example", storage.HostTokenSourcePAT, "", "", time.Time{}, true},
	}
	ids := map[string]string{}
	for _, tc := range cases {
		tok, err := w.svc.Create(ctx, w.user, hosttoken.CreateInput{RunnerID: w.runner.PrincipalID, UserID: w.user.PrincipalID,
			Host: tc.host, Token: "value_" + tc.host, RefreshToken: tc.refresh, Source: tc.source, ExpiresAt: tc.expires,
			IntegrationID: tc.integ})
		if err != nil {
			t.Fatalf("%s: Create: %v", tc.name, err)
		}
		ids[tc.name] = tok.ID
	}
	w.clock.Advance(2 * time.Hour)
	for _, tc := range cases {
		v, err := w.svc.RunnerValue(ctx, w.runner, hosttoken.ValueRequest{RunnerID: w.runner.PrincipalID,
			PrincipalID: w.user.PrincipalID, Host: tc.host})
		if tc.delivered {
			if err != nil || v.TokenID != ids[tc.name] {
				t.Errorf("%s: RunnerValue = %q, %v; want the token", tc.name, v.TokenID, err)
			}
			continue
		}
		wantCode(t, tc.name+": RunnerValue", err, sts.NotFound)
		if len(v.Value) != 0 {
			t.Errorf("%s: a value was delivered", tc.name)
		}
	}
	if _, err := w.store.GarbageCollect(ctx, w.clock.Now()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		_, err := w.store.GetHostToken(ctx, ids[tc.name])
		if kept := err == nil; kept != tc.delivered {
			t.Errorf("%s: kept by the garbage collection = %v, delivered = %v; want the same", tc.name, kept, tc.delivered)
		}
	}
}

// TestRunnerCannotExtendUserTokenExpiry (docs/security.md T-176): the
// runner may not give a user's token a later expiry, the user's own
// choice of how long sts may hand it out: not to revive a token past its
// expiresAt (delivered again, kept by the garbage collection), nor to
// lengthen a live one. It may still shorten it; the user and an admin may
// extend it; the runner may extend the expiry of its own token.
func TestRunnerCannotExtendUserTokenExpiry(t *testing.T) {
	t.Parallel()
	for name, newStore := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, newStore(t))
			ctx := t.Context()
			w.runnerKeyPair(t, w.runner)
			t0 := w.clock.Now()
			tok, err := w.svc.Create(ctx, w.user, hosttoken.CreateInput{RunnerID: w.runner.PrincipalID, UserID: w.user.PrincipalID,
				Host: "github.com", Token: "ghp_until_the_hour", Source: storage.HostTokenSourcePAT, ExpiresAt: t0.Add(time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			in := hosttoken.ValueRequest{RunnerID: w.runner.PrincipalID, PrincipalID: w.user.PrincipalID, Host: "github.com"}
			far := t0.Add(24 * 365 * time.Hour)
			_, err = w.svc.Update(ctx, w.runner, tok.ID, hosttoken.UpdateInput{ExpiresAt: &far})
			wantCode(t, "runner lengthens a live user token", err, sts.PermissionDenied)
			_, err = w.svc.Update(ctx, w.runner, tok.ID, hosttoken.UpdateInput{ExpiresAt: &time.Time{}})
			wantCode(t, "runner makes a user token never expire", err, sts.PermissionDenied)

			w.clock.Advance(2 * time.Hour)
			_, err = w.svc.Update(ctx, w.runner, tok.ID, hosttoken.UpdateInput{ExpiresAt: &far})
			wantCode(t, "runner revives an expired user token", err, sts.PermissionDenied)
			_, err = w.svc.RunnerValue(ctx, w.runner, in)
			wantCode(t, "RunnerValue after the refused revival", err, sts.NotFound)
			if got, _ := w.svc.Get(ctx, w.user, tok.ID); !got.ExpiresAt.Equal(storage.Now(t0.Add(time.Hour))) {
				t.Errorf("expiresAt = %v, want the user's %v", got.ExpiresAt, t0.Add(time.Hour))
			}

			sooner := t0.Add(30 * time.Minute)
			if _, err := w.svc.Update(ctx, w.runner, tok.ID, hosttoken.UpdateInput{ExpiresAt: &sooner}); err != nil {
				t.Errorf("runner shortens a user token: %v", err)
			}
			for _, c := range []hosttoken.Caller{w.user, w.admin} {
				later := w.clock.Now().Add(time.Hour)
				if _, err := w.svc.Update(ctx, c, tok.ID, hosttoken.UpdateInput{ExpiresAt: &later}); err != nil {
					t.Errorf("%s extends the user token: %v", c.Kind, err)
				}
			}
			if v, err := w.svc.RunnerValue(ctx, w.runner, in); err != nil || v.TokenID != tok.ID {
				t.Errorf("RunnerValue after the user's extension = %q, %v", v.TokenID, err)
			}

			own, err := w.svc.Create(ctx, w.runner, hosttoken.CreateInput{RunnerID: w.runner.PrincipalID,
				Subject: hosttoken.Subject{ID: w.runner.PrincipalID}, Host: "github.com", Token: "ghs_runner_own",
				Source: storage.HostTokenSourcePAT, ExpiresAt: w.clock.Now().Add(time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.svc.Update(ctx, w.runner, own.ID, hosttoken.UpdateInput{ExpiresAt: &far}); err != nil {
				t.Errorf("runner extends its own token: %v", err)
			}
		})
	}
}

// rotatingStore runs rotate once, right after the first GetRunnerKey has
// read the key: a rotation that commits while a delivery is under way.
type rotatingStore struct {
	*sqlstore.Store
	rotate func()
}

func (s *rotatingStore) GetRunnerKey(ctx context.Context, id string) (storage.RunnerKey, error) {
	k, err := s.Store.GetRunnerKey(ctx, id)
	if f := s.rotate; f != nil {
		s.rotate = nil
		f()
	}
	return k, err
}

// TestRotationDuringDeliveryNotSealedToReplacedKey (docs/security.md
// T-177): a key rotation (sts runner set-key, say after the runner's
// private key leaked) that commits while a delivery is under way, after
// the delivery read the key, is not undone by it: nothing is sealed to the
// replaced key once the rotation has committed; the runner asks again and
// gets the value sealed to the new key.
func TestRotationDuringDeliveryNotSealedToReplacedKey(t *testing.T) {
	t.Parallel()
	for name, newStore := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, newStore(t))
			ctx := t.Context()
			oldPub, oldPriv := w.runnerKeyPair(t, w.runner)
			w.create(t, "gho_rotated_under_way", "", "", time.Time{})
			var newPub, newPriv *[32]byte
			rs := &rotatingStore{Store: w.store}
			rs.rotate = func() { newPub, newPriv = w.runnerKeyPair(t, w.runner) }
			w.svc.Store = rs
			in := hosttoken.ValueRequest{RunnerID: w.runner.PrincipalID, PrincipalID: w.user.PrincipalID, Host: "github.com"}

			v, err := w.svc.RunnerValue(ctx, w.runner, in)
			if newPub == nil {
				t.Fatal("the rotation did not run")
			}
			if _, ok := box.OpenAnonymous(nil, v.Value, oldPub, oldPriv); ok {
				t.Fatalf("the value was sealed to the key replaced during the delivery (fingerprint %s)", v.KeyFingerprint)
			}
			wantCode(t, "RunnerValue across a rotation", err, sts.Unavailable)
			v, err = w.svc.RunnerValue(ctx, w.runner, in)
			if err != nil {
				t.Fatalf("RunnerValue after the rotation: %v", err)
			}
			if plain, ok := box.OpenAnonymous(nil, v.Value, newPub, newPriv); !ok || string(plain) != "gho_rotated_under_way" ||
				v.KeyFingerprint != hosttoken.Fingerprint(newPub[:]) {
				t.Errorf("after the rotation: open with the new key = %q, %v; fingerprint %s", plain, ok, v.KeyFingerprint)
			}
		})
	}
}

// listingStore runs after once, right after the first ListHostTokens:
// a change that commits once a delivery has read the token's row.
type listingStore struct {
	*sqlstore.Store
	after func()
}

func (s *listingStore) ListHostTokens(ctx context.Context, f storage.HostTokenFilter) ([]storage.HostToken, error) {
	rows, err := s.Store.ListHostTokens(ctx, f)
	if fn := s.after; fn != nil {
		s.after = nil
		fn()
	}
	return rows, err
}

// TestChangeDuringDeliveryIsHonoured (docs/security.md A-91): what
// commits while a delivery is under way, after it read the token's row,
// is not undone by it: a subject disabled (a suspension, the first step
// of deleting it) gets nothing delivered; a value replaced (its owner
// rotated a leaked token) is not delivered in its old form, and asked
// again the new one is.
func TestChangeDuringDeliveryIsHonoured(t *testing.T) {
	t.Parallel()
	for name, newStore := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, newStore(t))
			ctx := t.Context()
			pub, priv := w.runnerKeyPair(t, w.runner)
			tok := w.create(t, "gho_old_value", "", "", time.Time{})
			ls := &listingStore{Store: w.store}
			w.svc.Store = ls
			in := hosttoken.ValueRequest{RunnerID: w.runner.PrincipalID, PrincipalID: w.user.PrincipalID, Host: "github.com"}
			opened := func(v hosttoken.SealedValue) string {
				plain, _ := box.OpenAnonymous(nil, v.Value, pub, priv)
				return string(plain)
			}

			ls.after = func() {
				if _, err := w.svc.Update(ctx, w.user, tok.ID, hosttoken.UpdateInput{Token: ptr("gho_new_value")}); err != nil {
					t.Errorf("Update: %v", err)
				}
			}
			v, err := w.svc.RunnerValue(ctx, w.runner, in)
			if got := opened(v); got == "gho_old_value" {
				t.Fatal("the value replaced during the delivery was delivered")
			}
			wantCode(t, "RunnerValue across a value update", err, sts.Unavailable)
			if v, err := w.svc.RunnerValue(ctx, w.runner, in); err != nil || opened(v) != "gho_new_value" {
				t.Errorf("RunnerValue asked again = %q, %v; want the new value", opened(v), err)
			}

			ls.after = func() {
				if err := w.store.UpdatePrincipal(ctx, w.user.PrincipalID, func(p storage.Principal) (storage.Principal, error) {
					p.Disabled = true
					return p, nil
				}); err != nil {
					t.Errorf("disable: %v", err)
				}
			}
			v, err = w.svc.RunnerValue(ctx, w.runner, in)
			if len(v.Value) != 0 {
				t.Fatalf("a value (%q) was delivered for a subject disabled during the delivery", opened(v))
			}
			wantCode(t, "RunnerValue across the subject's suspension", err, sts.NotFound)
		})
	}
}

// rotatingAuditor runs during once, while the read's event is being
// appended, after it is stored: a change that commits in the window
// T-177 and A-91 name, the append waiting on a busy database.
type rotatingAuditor struct {
	hosttoken.Auditor
	during func()
}

func (a *rotatingAuditor) Append(ctx context.Context, ev storage.AuditEvent) error {
	err := a.Auditor.Append(ctx, ev)
	if f := a.during; f != nil && ev.Action == "host_token.read_value" {
		a.during = nil
		f()
	}
	return err
}

// TestChangeDuringAuditAppendIsHonoured (docs/security.md T-177, A-91):
// the key and the row are read again after the read's event is stored,
// not merely after the first reads: a rotation or a new value that
// commits while the append is under way is honoured too.
func TestChangeDuringAuditAppendIsHonoured(t *testing.T) {
	t.Parallel()
	for name, newStore := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, newStore(t))
			ctx := t.Context()
			oldPub, oldPriv := w.runnerKeyPair(t, w.runner)
			tok := w.create(t, "gho_during_append", "", "", time.Time{})
			ra := &rotatingAuditor{Auditor: &audit.Writer{Store: w.store}}
			w.svc.Audit = ra
			in := hosttoken.ValueRequest{RunnerID: w.runner.PrincipalID, PrincipalID: w.user.PrincipalID, Host: "github.com"}

			ra.during = func() { w.runnerKeyPair(t, w.runner) }
			v, err := w.svc.RunnerValue(ctx, w.runner, in)
			if _, ok := box.OpenAnonymous(nil, v.Value, oldPub, oldPriv); ok {
				t.Errorf("sealed to the key rotated during the audit append")
			}
			wantCode(t, "RunnerValue across a rotation during the append", err, sts.Unavailable)

			ra.during = func() {
				if _, err := w.svc.Update(ctx, w.user, tok.ID, hosttoken.UpdateInput{Token: ptr("gho_new")}); err != nil {
					t.Errorf("Update: %v", err)
				}
			}
			v, err = w.svc.RunnerValue(ctx, w.runner, in)
			if len(v.Value) != 0 {
				t.Errorf("the value replaced during the audit append was delivered")
			}
			wantCode(t, "RunnerValue across a new value during the append", err, sts.Unavailable)
		})
	}
}

// TestEndedDuringDeliveryNotDelivered (docs/security.md A-91, T-148): a
// token its owner ends (expiresAt set to the past) while a delivery is
// under way, after it read the row, is not delivered; one whose expiry
// or SCM account changed meanwhile is delivered as it is now, not as it
// was read.
func TestEndedDuringDeliveryNotDelivered(t *testing.T) {
	t.Parallel()
	for name, newStore := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, newStore(t))
			ctx := t.Context()
			w.runnerKeyPair(t, w.runner)
			tok, err := w.svc.Create(ctx, w.user, hosttoken.CreateInput{RunnerID: w.runner.PrincipalID, UserID: w.user.PrincipalID,
				Host: "github.com", Token: "ghp_ended", Source: storage.HostTokenSourcePAT, ExpiresAt: w.clock.Now().Add(time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			ls := &listingStore{Store: w.store}
			w.svc.Store = ls
			in := hosttoken.ValueRequest{RunnerID: w.runner.PrincipalID, PrincipalID: w.user.PrincipalID, Host: "github.com"}

			sooner := storage.Now(w.clock.Now().Add(10 * time.Minute))
			ls.after = func() {
				if _, err := w.svc.Update(ctx, w.user, tok.ID, hosttoken.UpdateInput{ExpiresAt: &sooner}); err != nil {
					t.Errorf("Update: %v", err)
				}
				if _, err := w.svc.UpdateMetadata(ctx, w.runner, w.runner.PrincipalID, tok.ID, ptr("octocat")); err != nil {
					t.Errorf("UpdateMetadata: %v", err)
				}
			}
			v, err := w.svc.RunnerValue(ctx, w.runner, in)
			if err != nil || !v.ExpiresAt.Equal(sooner) || v.ExternalUserID != "octocat" {
				t.Errorf("RunnerValue across a shortened expiry = expiresAt %v, externalUserId %q, %v; want %v, \"octocat\"",
					v.ExpiresAt, v.ExternalUserID, err, sooner)
			}

			ls.after = func() {
				past := w.clock.Now().Add(-time.Minute)
				if _, err := w.svc.Update(ctx, w.user, tok.ID, hosttoken.UpdateInput{ExpiresAt: &past}); err != nil {
					t.Errorf("Update: %v", err)
				}
			}
			v, err = w.svc.RunnerValue(ctx, w.runner, in)
			if len(v.Value) != 0 {
				t.Errorf("a token its owner ended during the delivery was delivered (expiresAt %v)", v.ExpiresAt)
			}
			wantCode(t, "RunnerValue across the owner ending the token", err, sts.NotFound)
		})
	}
}

// TestGoneBehindReplacementAskAgain (docs/security.md A-91): an owner
// rotating by storing a new token and deleting (or ending) the old one
// while a delivery that chose the old row is under way gets that
// delivery answered unavailable, not not_found (which a runner takes
// as final): the subject has a live token, which the runner asking
// again is given. Without one, the answer stays not_found.
func TestGoneBehindReplacementAskAgain(t *testing.T) {
	t.Parallel()
	for name, newStore := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, newStore(t))
			ctx := t.Context()
			pub, priv := w.runnerKeyPair(t, w.runner)
			in := hosttoken.ValueRequest{RunnerID: w.runner.PrincipalID, PrincipalID: w.user.PrincipalID, Host: "github.com"}
			for i, tc := range []struct {
				name    string
				replace bool
				end     func(id string) error
				want    sts.Code
			}{
				{"deleted behind a replacement", true, func(id string) error { return w.svc.Delete(ctx, w.user, id) }, sts.Unavailable},
				{"ended behind a replacement", true, func(id string) error {
					past := w.clock.Now().Add(-time.Minute)
					_, err := w.svc.Update(ctx, w.user, id, hosttoken.UpdateInput{ExpiresAt: &past})
					return err
				}, sts.Unavailable},
				{"deleted, nothing else", false, func(id string) error { return w.svc.Delete(ctx, w.user, id) }, sts.NotFound},
			} {
				old := w.create(t, "gho_old", "", "", w.clock.Now().Add(time.Hour))
				replacement := fmt.Sprintf("gho_replacement_%d", i)
				ls := &listingStore{Store: w.store}
				w.svc.Store = ls
				var replacementID string
				ls.after = func() {
					if tc.replace {
						replacementID = w.create(t, replacement, "", "", w.clock.Now().Add(time.Minute)).ID
					}
					if err := tc.end(old.ID); err != nil {
						t.Errorf("%s: %v", tc.name, err)
					}
				}
				v, err := w.svc.RunnerValue(ctx, w.runner, in)
				if len(v.Value) != 0 {
					t.Errorf("%s: the old row was delivered", tc.name)
				}
				wantCode(t, tc.name+": RunnerValue", err, tc.want)
				if !tc.replace {
					continue
				}
				v, err = w.svc.RunnerValue(ctx, w.runner, in)
				if plain, _ := box.OpenAnonymous(nil, v.Value, pub, priv); err != nil || string(plain) != replacement {
					t.Errorf("%s: asked again = %q, %v; want the replacement", tc.name, plain, err)
				}
				if err := w.svc.Delete(ctx, w.user, replacementID); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestRunnerSuspendedDuringDeliveryGetsNothing (docs/security.md A-91): a
// runner an administrator disables (believing it compromised) while a
// delivery to it is under way, after the delivery read the token's row,
// is sealed nothing.
func TestRunnerSuspendedDuringDeliveryGetsNothing(t *testing.T) {
	t.Parallel()
	for name, newStore := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, newStore(t))
			ctx := t.Context()
			w.runnerKeyPair(t, w.runner)
			w.create(t, "gho_to_suspended_runner", "", "", time.Time{})
			ls := &listingStore{Store: w.store}
			w.svc.Store = ls
			ls.after = func() {
				if err := w.store.UpdatePrincipal(ctx, w.runner.PrincipalID, func(p storage.Principal) (storage.Principal, error) {
					p.Disabled = true
					return p, nil
				}); err != nil {
					t.Errorf("disable: %v", err)
				}
			}
			in := hosttoken.ValueRequest{RunnerID: w.runner.PrincipalID, PrincipalID: w.user.PrincipalID, Host: "github.com"}
			v, err := w.svc.RunnerValue(ctx, w.runner, in)
			if len(v.Value) != 0 {
				t.Errorf("a value was sealed to a runner disabled during the delivery")
			}
			wantCode(t, "RunnerValue across the runner's suspension", err, sts.PermissionDenied)
		})
	}
}

// TestWithheldDeliveryAudited (docs/security.md T-177, A-91): a delivery
// refused by the re-reads after its read was put on record (outcome
// success, appended before anything could be disclosed) is followed by
// an event saying nothing was sealed, and why: the trail an
// administrator reads after rotating a leaked key does not end with a
// read sealed to it.
func TestWithheldDeliveryAudited(t *testing.T) {
	t.Parallel()
	for name, newStore := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, newStore(t))
			ctx := t.Context()
			oldPub, _ := w.runnerKeyPair(t, w.runner)
			tok := w.create(t, "gho_audited", "", "", time.Time{})
			rs := &rotatingStore{Store: w.store}
			rs.rotate = func() { w.runnerKeyPair(t, w.runner) }
			w.svc.Store = rs
			in := hosttoken.ValueRequest{RunnerID: w.runner.PrincipalID, PrincipalID: w.user.PrincipalID, Host: "github.com"}
			_, err := w.svc.RunnerValue(ctx, w.runner, in)
			wantCode(t, "RunnerValue across a rotation", err, sts.Unavailable)
			evs, err := w.store.ListAudit(ctx, storage.AuditFilter{OrgID: w.user.OrgID, Action: "host_token.read_value"})
			if err != nil {
				t.Fatal(err)
			}
			target := "host_token:" + tok.ID + " key:" + hosttoken.Fingerprint(oldPub[:])
			outcomes := map[string]int{}
			for _, ev := range evs {
				if ev.Target != target {
					continue
				}
				outcomes[ev.Outcome]++
				if ev.Outcome == "failure" && (!strings.Contains(ev.Detail, "withheld") || !strings.Contains(ev.Detail, "public key")) {
					t.Errorf("the withheld event's detail %q does not say it was withheld and why", ev.Detail)
				}
			}
			if outcomes["success"] != 1 || outcomes["failure"] != 1 {
				t.Errorf("events on %s by outcome = %v; want the read (success) and its withholding (failure)", target, outcomes)
			}
		})
	}
}
