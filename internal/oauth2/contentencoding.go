package oauth2

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
)

// ReasonContentEncoding: the request body came in a content coding sts
// does not decode (docs/security.md T-211).
const ReasonContentEncoding = "content_encoding_unsupported"

// CheckContentEncoding refuses a request body in a content coding (RFC 9110
// §8.4) with 415 and [ReasonContentEncoding]. sts decodes none, and read as
// it came, compressed bytes were taken for the form or JSON itself: a
// parser's complaint about them the answer, or, for a plain body labelled
// gzip, a token introspected or revoked on a request whose bytes the header
// says are something else (docs/security.md T-211). identity, which is no
// coding, is read. Every endpoint that reads an OAuth body calls it before
// reading; [WriteError] (or [SetAcceptEncoding] for a dialect's own writer)
// adds Accept-Encoding: identity to the answer.
func CheckContentEncoding(r *http.Request) error {
	for _, h := range r.Header.Values("Content-Encoding") {
		for c := range strings.SplitSeq(h, ",") {
			if c = strings.TrimSpace(c); c != "" && !strings.EqualFold(c, "identity") {
				if len(c) > 64 {
					c = c[:64] + "…"
				}
				msg := "content encoding " + strconv.Quote(c) + " is not supported: send the body uncompressed"
				return &Error{Code: ErrorInvalidRequest, Description: msg, Reason: ReasonContentEncoding,
					Status: http.StatusUnsupportedMediaType, Err: errors.New(msg)}
			}
		}
	}
	return nil
}

// SetAcceptEncoding adds Accept-Encoding: identity to the answer to a body
// refused for its content coding: a 415 for that cause ought to name the
// codings accepted (RFC 9110 §15.5.16), so a client that compresses learns
// to stop.
func SetAcceptEncoding(h http.Header, e *Error) {
	if e != nil && e.Reason == ReasonContentEncoding {
		h.Set("Accept-Encoding", "identity")
	}
}

// RefuseFormCoding is [CheckContentEncoding] for a page's form: a request
// that may carry a body (not GET or HEAD) in a content coding is answered
// with Accept-Encoding: identity set on w, and its description returned
// for the page the caller renders with 415 (docs/security.md T-216).
func RefuseFormCoding(w http.ResponseWriter, r *http.Request) (description string, refused bool) {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return "", false
	}
	var e *Error
	if !errors.As(CheckContentEncoding(r), &e) {
		return "", false
	}
	SetAcceptEncoding(w.Header(), e)
	return e.Description, true
}
