package api

import (
	"context"
	"errors"
	"log/slog"

	"connectrpc.com/connect"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/sts"
)

// codes is the one translation from domain codes to Connect codes.
var connectCodes = map[sts.Code]connect.Code{
	sts.Invalid:            connect.CodeInvalidArgument,
	sts.Unauthenticated:    connect.CodeUnauthenticated,
	sts.PermissionDenied:   connect.CodePermissionDenied,
	sts.NotFound:           connect.CodeNotFound,
	sts.AlreadyExists:      connect.CodeAlreadyExists,
	sts.FailedPrecondition: connect.CodeFailedPrecondition,
	sts.Unavailable:        connect.CodeUnavailable,
	sts.Internal:           connect.CodeInternal,
	sts.ResourceExhausted:  connect.CodeResourceExhausted,
}

// connectError turns any error into a *connect.Error whose message is safe
// to send (sts.ErrorMessage). Internal and unavailable causes are logged
// here, once; they never reach the caller.
func connectError(ctx context.Context, logger *slog.Logger, err error) *connect.Error {
	if ce, ok := errors.AsType[*connect.Error](err); ok {
		retryAfter(ce)
		return ce
	}
	code := sts.ErrorCode(err)
	if (code == sts.Unavailable || errors.Is(err, context.DeadlineExceeded)) && pastCallerDeadline(ctx) {
		// The caller's own deadline ended the wait: no fault of ours, and
		// nothing to retry at once. A deadline already past when storage
		// is called comes back as the context's bare error, not as
		// unavailable.
		return connect.NewError(connect.CodeDeadlineExceeded, errors.New("the call's deadline passed"))
	}
	if (code == sts.Unavailable || code == sts.Internal) && sts.CallerGone(ctx, err) {
		// The caller went away (it cancelled, or reset the stream as its
		// own deadline passed) while the call waited: no fault of ours or
		// of storage, and no one to answer. canceled, as connect answers
		// a context canceled, and not logged as an error
		// (docs/security.md F-105).
		return connect.NewError(connect.CodeCanceled, errors.New("the caller cancelled the call"))
	}
	if code == sts.Internal || code == sts.Unavailable {
		logger.ErrorContext(ctx, "api: request failed", "code", string(code), "error", err)
	}
	c, ok := connectCodes[code]
	if !ok {
		c = connect.CodeInternal // defense in depth: a code missing from the table
	}
	ce := connect.NewError(c, errors.New(sts.ErrorMessage(err)))
	retryAfter(ce)
	return ce
}

// retryAfter gives an unavailable error the Retry-After of every 503
// (oauth2.RetryAfter). connect-go sends error metadata as HTTP headers
// (Connect protocol, where unavailable is 503) or trailers (gRPC).
func retryAfter(ce *connect.Error) {
	if ce.Code() == connect.CodeUnavailable && ce.Meta().Get("Retry-After") == "" {
		oauth2.SetRetryAfter(ce.Meta(), 0)
	}
}

// errorInterceptor applies connectError to every handler's error.
func errorInterceptor(logger *slog.Logger) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			res, err := next(ctx, req)
			if err != nil {
				return nil, connectError(ctx, logger, err)
			}
			return res, nil
		}
	}
}
