package signer_test

import (
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/clocktest"
)

// TestRotationCommitsWithItsEvent: a rotation and its signing_key.rotate
// event are one transaction (docs/design.md#audit), on demand and
// scheduled alike. An event that cannot be stored (its ID is taken)
// leaves the key set exactly as it was, and the error says so; with a
// storable event the rotation and one event per algorithm commit.
func TestRotationCommitsWithItsEvent(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	store, clk, cfg, m := newAuditedMulti(t, false)
	taken := storage.AuditEvent{ID: storage.NewID(), Time: storage.Now(clk.Now()), Action: "test.taken"}
	if err := store.AppendAudit(ctx, taken); err != nil {
		t.Fatal(err)
	}
	keySet := func() []string {
		t.Helper()
		ks, err := store.ListSigningKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, k := range ks {
			out = append(out, k.ID+":"+string(k.State))
		}
		return out
	}
	events := func() int {
		t.Helper()
		ev, err := store.ListAudit(ctx, storage.AuditFilter{Action: signer.ActionRotate})
		if err != nil {
			t.Fatal(err)
		}
		return len(ev)
	}
	failing := func(r signer.Rotation) storage.AuditEvent {
		ev := r.AuditEvent("principal:test", "", true, clk.Now())
		ev.ID = taken.ID
		return ev
	}

	before, active := keySet(), m.ActiveKeyIDs()
	rs, err := m.RotateEach(ctx, true, failing)
	var notStored storage.EventNotStored
	if !errors.As(err, &notStored) || len(rs) != 0 {
		t.Fatalf("forced rotation whose event fails = %+v, %v; want no rotation and EventNotStored", rs, err)
	}
	if got := keySet(); !slices.Equal(got, before) || events() != 0 {
		t.Fatalf("key set after a failed event %v, want %v unchanged (and no event)", got, before)
	}
	if got := m.ActiveKeyIDs(); got[signer.ES256] != active[signer.ES256] || got[signer.RS256] != active[signer.RS256] {
		t.Fatalf("active keys %v after a failed event, want %v", got, active)
	}

	// Scheduled: the period passes, the event fails, nothing changes.
	m.SetScheduledEvent(failing)
	clk.Advance(cfg.RotationPeriod + 2*time.Hour)
	if err := m.Tick(ctx); !errors.As(err, &notStored) {
		t.Fatalf("Tick whose event fails = %v, want EventNotStored", err)
	}
	if got := keySet(); !slices.Equal(got, before) || events() != 0 {
		t.Fatalf("key set after a scheduled rotation's failed event %v, want %v", got, before)
	}
	m.SetScheduledEvent(signer.ScheduledEvents(clk.Now))
	if err := m.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if got := m.ActiveKeyIDs(); got[signer.ES256] == active[signer.ES256] || events() != 2 {
		t.Fatalf("scheduled rotation: active %v (was %v), %d events; want rotated with one event per algorithm", got, active, events())
	}

	// On demand, with a storable event: rotated, one more event each.
	rs, err = m.RotateEach(ctx, true, func(r signer.Rotation) storage.AuditEvent {
		return r.AuditEvent("principal:test", "req-1", true, clk.Now())
	})
	if err != nil || len(rs) != 2 || events() != 4 {
		t.Fatalf("forced rotation = %+v, %v with %d events; want two rotations and 4 events", rs, err, events())
	}
}

// newAuditedMulti is an ES256 + RS256 Multi on SQLite with a clock the
// test moves, initialised; with scheduled, its scheduled changes (the
// first keys included) are audited by ScheduledEvents.
func newAuditedMulti(t *testing.T, scheduled bool) (storage.Store, *clocktest.Clock, signer.Config, *signer.Multi) {
	t.Helper()
	store := newSQLiteStore(t)
	clk := clocktest.New(t0)
	cfg := signer.Config{Algorithm: signer.ES256, RotationPeriod: 24 * time.Hour, PublishAhead: time.Hour}
	m, err := signer.NewMulti(store, newKeyring(t, masterKey()), cfg, signer.RS256)
	if err != nil {
		t.Fatal(err)
	}
	m.SetClock(clk.Now)
	m.SetLogger(slog.New(slog.DiscardHandler))
	if scheduled {
		m.SetScheduledEvent(signer.ScheduledEvents(clk.Now))
	}
	if err := m.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	return store, clk, cfg, m
}
