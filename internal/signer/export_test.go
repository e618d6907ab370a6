package signer

import "context"

// Poll is one poll of [Multi.Run] (tick), the loop serve runs.
func (m *Multi) Poll(ctx context.Context) { m.tick(ctx) }
