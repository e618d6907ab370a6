package audit_test

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/opensts/sts/internal/audit"
)

// TestUserAgentSanitized: docs/security.md D-14. A User-Agent cannot put
// control characters or invalid UTF-8 into the audit trail and is
// truncated on a rune boundary.
func TestUserAgentSanitized(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"curl/8.5.0", "curl/8.5.0"},
		{"evil\nFAKE EVENT\r\x1b[31m", "evil?FAKE EVENT??[31m"},
		{"bad \xff utf8", "bad ? utf8"},
		{"", ""},
	} {
		if got := audit.UserAgent(tc.in); got != tc.want {
			t.Errorf("UserAgent(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	long := audit.UserAgent(strings.Repeat("é", 500))
	if len(long) > audit.MaxUserAgent || !utf8.ValidString(long) || len(long) < audit.MaxUserAgent-1 {
		t.Errorf("long User-Agent kept %d bytes (valid %v), want at most %d on a rune boundary", len(long), utf8.ValidString(long), audit.MaxUserAgent)
	}
	ev := audit.Caller{Actor: "cli", ClientIP: "192.0.2.1", UserAgent: "a\tb"}.Event(time.Now(), "o", "x.create", "x:1", "success", "")
	if ev.ClientIP != "192.0.2.1" || ev.UserAgent != "a?b" {
		t.Errorf("Event client = %q %q, want the caller's address and a sanitized agent", ev.ClientIP, ev.UserAgent)
	}
}

// TestUserAgentCleanIsKept: a User-Agent of printable ASCII within
// MaxUserAgent, what every real client sends, comes back as it is without
// a copy (one allocation per audited request before); anything else still
// goes through the sanitizer.
func TestUserAgentCleanIsKept(t *testing.T) {
	for _, ua := range []string{"wrk", "Go-http-client/1.1", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)",
		strings.Repeat("a", audit.MaxUserAgent), " ~!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}"} {
		if got := audit.UserAgent(ua); got != ua {
			t.Errorf("UserAgent(%q) = %q, want it unchanged", ua, got)
		}
		if n := testing.AllocsPerRun(100, func() { _ = audit.UserAgent(ua) }); n != 0 {
			t.Errorf("UserAgent(%q): %v allocations, want 0", ua, n)
		}
	}
	for ua, want := range map[string]string{
		strings.Repeat("a", audit.MaxUserAgent+1): strings.Repeat("a", audit.MaxUserAgent),
		"a\x7fb": "a?b", "a\tb": "a?b", "é": "é",
	} {
		if got := audit.UserAgent(ua); got != want {
			t.Errorf("UserAgent(%q) = %q, want %q", ua, got, want)
		}
	}
}
