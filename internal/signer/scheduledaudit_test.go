package signer_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
)

// TestScheduledRotationAudited: a rotation made by the schedule (Tick
// once keys.rotation_period has passed), and the first keys Init makes,
// are audited like `sts keys rotate`:
// one signing_key.rotate event per rotated algorithm, by the scheduler
// actor, built by the same Rotation.AuditEvent; a quiet tick records
// nothing.
func TestScheduledRotationAudited(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	store, clk, cfg, m := newAuditedMulti(t, true)
	events := func() []storage.AuditEvent {
		t.Helper()
		ev, err := store.ListAudit(ctx, storage.AuditFilter{Action: signer.ActionRotate})
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}

	// The first keys, made by Init, are recorded too: one per algorithm.
	first := events()
	if len(first) != 2 {
		t.Fatalf("Init recorded %d events, want one per algorithm: %+v", len(first), first)
	}
	clk.Advance(2 * time.Hour) // past publish-ahead, before the period
	if err := m.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if ev := events(); len(ev) != 2 {
		t.Fatalf("quiet tick recorded %d more rotation events: %+v", len(ev)-2, ev)
	}

	before := m.ActiveKeyIDs()
	clk.Advance(cfg.RotationPeriod)
	if err := m.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	after := m.ActiveKeyIDs()
	ev := slices.DeleteFunc(events(), func(e storage.AuditEvent) bool {
		return slices.ContainsFunc(first, func(f storage.AuditEvent) bool { return f.ID == e.ID })
	})
	if len(ev) != 2 {
		t.Fatalf("scheduled rotation recorded %d %s events, want one per algorithm: %+v", len(ev), signer.ActionRotate, ev)
	}
	seen := map[string]bool{}
	for _, e := range ev {
		if e.Actor != signer.ActorScheduler || e.Outcome != "success" || !strings.Contains(e.Detail, "force=false") {
			t.Errorf("event %+v: want actor %s, success, force=false", e, signer.ActorScheduler)
		}
		for _, alg := range []string{signer.ES256, signer.RS256} {
			if strings.Contains(e.Detail, "alg="+alg) {
				seen[alg] = true
				if e.Target != "signing_key:"+after[alg] || !strings.Contains(e.Detail, "retired="+before[alg]) {
					t.Errorf("%s event %+v: want target signing_key:%s, retired=%s", alg, e, after[alg], before[alg])
				}
			}
		}
	}
	if !seen[signer.ES256] || !seen[signer.RS256] {
		t.Errorf("events name algorithms %v, want ES256 and RS256", seen)
	}

	if err := m.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(events()); n != 4 {
		t.Errorf("a tick after the rotation left %d events, want still 4", n)
	}
}
