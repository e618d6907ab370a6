package sts

import (
	"errors"
	"fmt"
)

// Code classifies an [Error]. Edges (OAuth endpoints, Connect API, web page)
// each translate codes through one table of their own.
type Code string

// The codes every service method may return. Anything that is not an
// [*Error] counts as [Internal].
const (
	Invalid            Code = "invalid"
	Unauthenticated    Code = "unauthenticated"
	PermissionDenied   Code = "permission_denied"
	NotFound           Code = "not_found"
	AlreadyExists      Code = "already_exists"
	FailedPrecondition Code = "failed_precondition"
	Unavailable        Code = "unavailable"
	Internal           Code = "internal"
	// ResourceExhausted: a limit on the caller's requests is spent (a rate
	// limit); retrying later may succeed.
	ResourceExhausted Code = "resource_exhausted"
)

// Error is a domain error. Message is safe to show a caller; Err is the
// internal cause, which is logged and never sent.
type Error struct {
	Code    Code
	Message string
	Err     error
}

// Error implements the error interface. It includes the cause so logs show
// it; edges send only [ErrorMessage].
func (e *Error) Error() string {
	switch {
	case e.Err != nil && e.Message != "":
		return e.Message + ": " + e.Err.Error()
	case e.Err != nil:
		return e.Err.Error()
	default:
		return e.Message
	}
}

// Unwrap returns the internal cause so errors.Is and errors.As see it.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an [*Error] with code and a formatted, caller-safe message.
// Verbs are formatted with fmt.Sprintf; %w is not interpreted, so a cause
// never leaks into the message by accident: set Err for that.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an [*Error] with code and message whose cause is err.
func Wrap(code Code, err error, message string) *Error {
	return &Error{Code: code, Message: message, Err: err}
}

// ErrorCode returns the code of the first [*Error] in err's chain, or
// [Internal] for any other non-nil error, or "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok && e.Code != "" {
		return e.Code
	}
	return Internal
}

// ErrorMessage returns the caller-safe message of the first [*Error] in
// err's chain, or "internal error" for anything else (including an
// [Internal] error, whose message may describe internals), or "" for nil.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok && e.Code != Internal && e.Message != "" {
		return e.Message
	}
	return "internal error"
}
