package signer

import "context"

// Poll is one poll of [Multi.Run] (tick), the loop serve runs.
func (m *Multi) Poll(ctx context.Context) { m.tick(ctx) }

// NewCheck returns the key-set check of [Multi.Run], with its state kept
// between calls as Run's loop keeps it.
func (m *Multi) NewCheck() func(context.Context) {
	kc := m.newKeysetCheck()
	return func(ctx context.Context) { kc.run(ctx, m.reloadSnapshots) }
}
