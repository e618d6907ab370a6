package audit

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/opensts/sts/internal/storage"
)

// Caller is who makes a change, as the audit trail names it. The PAT,
// client and pool services and the admin API all record their changes
// with it.
type Caller struct {
	// Actor names the caller: "principal:<id>", "cli", "bootstrap" or
	// "config".
	Actor string
	// RequestID is the HTTP request ID, if any.
	RequestID string
	// ClientIP is the request's client address as the server resolved it
	// (http.trusted_proxies); empty without a request.
	ClientIP string
	// UserAgent is the request's User-Agent; pass it through [UserAgent].
	UserAgent string
}

// Event is the audit event of one change c made at now.
func (c Caller) Event(now time.Time, orgID, action, target, outcome, detail string) storage.AuditEvent {
	return storage.AuditEvent{
		ID: storage.NewID(), Time: storage.Now(now), OrgID: orgID, Actor: c.Actor, Action: action,
		Target: target, RequestID: c.RequestID, Outcome: outcome, Detail: detail,
		ClientIP: c.ClientIP, UserAgent: UserAgent(c.UserAgent),
	}
}

// MaxUserAgent is the most bytes of a User-Agent an event keeps.
const MaxUserAgent = 256

// UserAgent returns a User-Agent header fit for the audit trail
// (docs/security.md D-14): control characters and invalid UTF-8 become
// '?' so a header cannot forge lines in `sts audit list` or a
// SIEM, and it is cut to MaxUserAgent bytes on a rune boundary.
func UserAgent(s string) string {
	if printableASCII(s) && len(s) <= MaxUserAgent {
		return s // nothing to replace or cut: no copy
	}
	var b strings.Builder
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || (!unicode.IsPrint(r) && r != ' ') {
			r = '?'
		}
		if b.Len()+utf8.RuneLen(r) > MaxUserAgent {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

// printableASCII reports whether every byte of s is printable ASCII
// (space to '~'), which UserAgent keeps as it is.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
