package api

import (
	"context"
	"errors"
	"fmt"
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
	d, ok, _ := callerTimeout(r, grpcContentType(r.Header.Get("Content-Type")))
	if !ok {
		return time.Time{}, false
	}
	return now.Add(d), true
}

// callerTimeout reads the call's timeout header as connect reads it, the
// one parser of both callerDeadline and headerRefusal: d and ok for a
// timeout; connect's own refusal of a malformed one as err, in connect's
// words; neither for no header, or for a grpc-timeout above 2562047H,
// more than a time.Duration holds, which connect (like grpc-go) serves
// without a deadline.
func callerTimeout(r *http.Request, grpc bool) (time.Duration, bool, error) {
	if grpc {
		return grpcTimeout(r.Header.Get("Grpc-Timeout"))
	}
	v := r.Header.Get("Connect-Timeout-Ms")
	if v == "" {
		return 0, false, nil
	}
	if len(v) > 10 {
		return 0, false, fmt.Errorf("parse timeout: %q has >10 digits", v)
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("parse timeout: %w", err)
	}
	if ms < 0 {
		return 0, false, fmt.Errorf("parse timeout: %q is negative", v)
	}
	// At most 10 characters: below 10^10 ms, which a time.Duration holds.
	return time.Duration(ms) * time.Millisecond, true, nil
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

// grpcTimeout parses grpc-timeout as connect does (grpcParseTimeout):
// a unit, then an integer of at most 8 digits' value (gRPC over HTTP/2,
// "Timeout"), each refused in connect's words. A value too large for a
// time.Duration is no deadline and no error, as connect reads it.
func grpcTimeout(v string) (time.Duration, bool, error) {
	if v == "" {
		return 0, false, nil
	}
	units := map[byte]time.Duration{'H': time.Hour, 'M': time.Minute, 'S': time.Second,
		'm': time.Millisecond, 'u': time.Microsecond, 'n': time.Nanosecond}
	unit, ok := units[v[len(v)-1]]
	if !ok {
		return 0, false, fmt.Errorf("protocol error: timeout has invalid unit %q", v[len(v)-1])
	}
	n, err := strconv.ParseInt(v[:len(v)-1], 10, 64)
	if err != nil || n < 0 {
		return 0, false, fmt.Errorf("protocol error: invalid timeout %q", v)
	}
	if n > 99999999 {
		return 0, false, fmt.Errorf("protocol error: timeout %q is too long", v)
	}
	if n > math.MaxInt64/int64(unit) {
		// More than a time.Duration holds (above 2562047H): the product
		// would wrap negative, a deadline already past. connect, like
		// grpc-go, serves such a call with no deadline; so does this.
		return 0, false, nil
	}
	return time.Duration(n) * unit, true, nil
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
