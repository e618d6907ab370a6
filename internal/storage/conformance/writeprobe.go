package conformance

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opensts/sts/internal/storage"
)

// testWriteProbe checks ProbeWrite commits (a second probe of the same
// process updates its row, not a second one) and that GarbageCollect
// removes only the probes of processes silent for WriteProbeRetention.
func testWriteProbe(t *testing.T, s storage.Store) {
	ctx := t.Context()
	t0 := now()
	old := t0.Add(-storage.WriteProbeRetention - time.Minute)
	live, gone, moved := storage.NewID(), storage.NewID(), storage.NewID()
	mustNil(t, "ProbeWrite live", s.ProbeWrite(ctx, storage.WriteProbe{ID: live, At: t0}))
	mustNil(t, "ProbeWrite gone", s.ProbeWrite(ctx, storage.WriteProbe{ID: gone, At: old}))
	// The same process probing again updates its row: the old time no
	// longer counts.
	mustNil(t, "ProbeWrite moved (old)", s.ProbeWrite(ctx, storage.WriteProbe{ID: moved, At: old}))
	mustNil(t, "ProbeWrite moved (again)", s.ProbeWrite(ctx, storage.WriteProbe{ID: moved, At: t0}))

	res, err := s.GarbageCollect(ctx, t0)
	mustNil(t, "GarbageCollect", err)
	if want := (storage.GCResult{WriteProbes: 1}); !cmp.Equal(res, want) {
		t.Errorf("GarbageCollect = %+v, want %+v (only the silent process's probe)", res, want)
	}
	res, err = s.GarbageCollect(ctx, t0.Add(storage.WriteProbeRetention+time.Minute))
	mustNil(t, "GarbageCollect a day later", err)
	if want := (storage.GCResult{WriteProbes: 2}); !cmp.Equal(res, want) {
		t.Errorf("GarbageCollect a day later = %+v, want %+v", res, want)
	}
	if err := s.ProbeWrite(ctx, storage.WriteProbe{ID: "", At: t0}); err == nil {
		t.Error("ProbeWrite with an empty ID = nil, want an error")
	}
}
