package web_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/ststest/pgtest"
)

// TestOIDCSubjectWithNULRefused (docs/security.md T-252): an upstream
// provider's ID token whose sub holds a NUL character ("\u0000" in its
// JSON) is refused at the callback on both backends, before any write:
// SQLite signed the person in as a new user named with the NUL, while
// PostgreSQL refused the upstream identity's row (SQLSTATE 22021) and the
// storage failure became the refusal, its SQL error as the logged reason.
// The provider's other subjects sign in as before.
func TestOIDCSubjectWithNULRefused(t *testing.T) {
	t.Parallel()
	corp := newIDP(t)
	for name, s := range map[string]*server{
		"SQLite":     startServer(t, subProvidersYAML([]string{"corp"}, corp)),
		"PostgreSQL": startServerPGIn(t, pgtest.DSN(t), t.TempDir(), "", subProvidersYAML([]string{"corp"}, corp)),
	} {
		b, r := signInThrough(t, s, corp, "corp", "10\x0001")
		if r.status != http.StatusUnauthorized || hasSession(s, b) {
			t.Errorf("%s: sub with a NUL = %d (session %t), want 401 and no session", name, r.status, hasSession(s, b))
		}
		if name == "SQLite" { // the harness opens the SQLite file only
			// A user's name has each control character as U+FFFD
			// (displayName), so the user it made was named so.
			if got := principalsNamed(t, s, "10\uFFFD01"); len(got) != 0 {
				t.Errorf("%s: users made for a sub with a NUL: %v", name, got)
			}
		}
		if logs := s.logs.String(); strings.Contains(logs, "SQLSTATE") || !strings.Contains(logs, "NUL") {
			t.Errorf("%s: the refusal's log line does not say it is the NUL (or names a storage failure)", name)
		}
		if _, r := signInThrough(t, s, corp, "corp", "1001"); r.status != http.StatusOK {
			t.Errorf("%s: then sub 1001 = %d, want signed in", name, r.status)
		}
	}
}
