package api

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// callerDeadline is the deadline the caller sent, if any: Connect's
// Connect-Timeout-Ms, or grpc-timeout for gRPC and gRPC-Web. connect
// applies it to the procedure only, after the middleware has
// authenticated the call; the middleware applies it to authentication
// too, so a credential lookup waiting on storage ends when the caller
// stops waiting (docs/security.md T-121). A malformed value is left to
// connect, which refuses it.
func callerDeadline(r *http.Request, now time.Time) (time.Time, bool) {
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
		return grpcTimeout(r.Header.Get("Grpc-Timeout"), now)
	}
	v := r.Header.Get("Connect-Timeout-Ms")
	if v == "" || len(v) > 10 || strings.Trim(v, "0123456789") != "" {
		return time.Time{}, false
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return now.Add(time.Duration(ms) * time.Millisecond), true
}

// grpcTimeout parses grpc-timeout: at most 8 digits and a unit
// (gRPC over HTTP/2, "Timeout"). A value too large for a time.Duration
// is no deadline, as connect reads it.
func grpcTimeout(v string, now time.Time) (time.Time, bool) {
	if len(v) < 2 || len(v) > 9 {
		return time.Time{}, false
	}
	digits := v[:len(v)-1]
	if strings.Trim(digits, "0123456789") != "" {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	units := map[byte]time.Duration{'H': time.Hour, 'M': time.Minute, 'S': time.Second,
		'm': time.Millisecond, 'u': time.Microsecond, 'n': time.Nanosecond}
	unit, ok := units[v[len(v)-1]]
	if !ok {
		return time.Time{}, false
	}
	if n > math.MaxInt64/int64(unit) {
		// More than a time.Duration holds (above 2562047H): the product
		// would wrap negative, a deadline already past. connect, like
		// grpc-go, serves such a call with no deadline; so does this.
		return time.Time{}, false
	}
	return now.Add(time.Duration(n) * unit), true
}

type callerDeadlineKey struct{}

// withCallerDeadline bounds ctx by the caller's deadline d and notes it,
// so an error the deadline caused is told from the server's own.
func withCallerDeadline(ctx context.Context, d time.Time) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithDeadline(ctx, d)
	return context.WithValue(ctx, callerDeadlineKey{}, d), cancel
}

// pastCallerDeadline reports whether ctx ended at the caller's own
// deadline (not at the server's storage.call_timeout, which is
// unavailable, docs/security.md F-40).
func pastCallerDeadline(ctx context.Context) bool {
	d, ok := ctx.Value(callerDeadlineKey{}).(time.Time)
	return ok && errors.Is(ctx.Err(), context.DeadlineExceeded) && !time.Now().Before(d)
}
