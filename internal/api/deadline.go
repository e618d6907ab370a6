package api

import (
	"context"
	"errors"
	"math"
	"mime"
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
// stops waiting (docs/security.md T-121). Both headers are read exactly
// as connect reads them (connectHandler.SetTimeout, grpcParseTimeout:
// strconv.ParseInt, so a sign and zero padding are accepted, T-129); a
// malformed value is left to connect, which refuses it.
func callerDeadline(r *http.Request, now time.Time) (time.Time, bool) {
	if grpcContentType(r.Header.Get("Content-Type")) {
		return grpcTimeout(r.Header.Get("Grpc-Timeout"), now)
	}
	v := r.Header.Get("Connect-Timeout-Ms")
	if v == "" || len(v) > 10 {
		return time.Time{}, false
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms < 0 {
		return time.Time{}, false
	}
	// At most 10 characters: below 10^10 ms, which a time.Duration holds.
	return now.Add(time.Duration(ms) * time.Millisecond), true
}

// grpcContentType reports whether connect serves a call of this content
// type as gRPC or gRPC-Web: connect lowercases the media type before it
// chooses (canonicalizeContentType), so "Application/grpc" is gRPC too.
func grpcContentType(ct string) bool {
	if strings.HasPrefix(ct, "application/grpc") {
		return true
	}
	if !strings.ContainsAny(ct, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") {
		return false
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && strings.HasPrefix(mt, "application/grpc")
}

// grpcTimeout parses grpc-timeout as connect does: an integer of at most
// 8 digits' value (gRPC over HTTP/2, "Timeout") and a unit. A value too
// large for a time.Duration is no deadline, as connect reads it.
func grpcTimeout(v string, now time.Time) (time.Time, bool) {
	if v == "" {
		return time.Time{}, false
	}
	units := map[byte]time.Duration{'H': time.Hour, 'M': time.Minute, 'S': time.Second,
		'm': time.Millisecond, 'u': time.Microsecond, 'n': time.Nanosecond}
	unit, ok := units[v[len(v)-1]]
	if !ok {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(v[:len(v)-1], 10, 64)
	if err != nil || n < 0 || n > 99999999 {
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
