package sts

import (
	"context"
	"errors"
)

// CallerGone reports whether err is the caller going away: err comes of a
// cancel and ctx, the request's own context, is canceled. Nobody reads the
// answer, and it is neither an outage to log nor a refusal to count. Both
// sides are needed: a fault that happens as the caller leaves (storage
// down, a policy refusal) is still that fault (docs/security.md F-105,
// F-107, F-110).
func CallerGone(ctx context.Context, err error) bool {
	return errors.Is(err, context.Canceled) && errors.Is(ctx.Err(), context.Canceled)
}
