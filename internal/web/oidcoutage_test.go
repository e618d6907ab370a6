package web_test

import (
	"database/sql"
	"net/http"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/ststest/pgtest"
)

// TestOIDCSignInStorageFailureIsNotARefusal (docs/security.md F-118): an
// upstream sign-in that storage fails to look up or record is a 503 "try
// again" with the failure logged as an error, not the 401 "Sign-in
// failed" of a refused identity logged at INFO as a refusal, which told
// the person their account was refused and hid the outage from operators.
// The same sign-in works once storage does.
func TestOIDCSignInStorageFailureIsNotARefusal(t *testing.T) {
	t.Parallel()
	corp := newIDP(t)
	dsn := pgtest.DSN(t)
	s := startServerPGIn(t, dsn, t.TempDir(), "", subProvidersYAML([]string{"corp"}, corp))
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// The upstream identities' table gone for a moment: every lookup of
	// one fails as a real outage does, at the database.
	if _, err := db.ExecContext(t.Context(), "ALTER TABLE upstream_identities RENAME TO upstream_identities_away"); err != nil {
		t.Fatal(err)
	}
	b, r := signInThrough(t, s, corp, "corp", "1001")
	if r.status != http.StatusServiceUnavailable || hasSession(s, b) {
		t.Errorf("sign-in while storage fails = %d (session %t), want 503 and no session", r.status, hasSession(s, b))
	}
	logs := s.logs.String()
	if strings.Contains(logs, "upstream sign-in refused") || !strings.Contains(logs, `"level":"ERROR","msg":"web: upstream sign-in failed"`) {
		t.Errorf("storage failure at sign-in logged as a refusal, or not as an error:\n%s", logs)
	}
	if _, err := db.ExecContext(t.Context(), "ALTER TABLE upstream_identities_away RENAME TO upstream_identities"); err != nil {
		t.Fatal(err)
	}
	if b, r := signInThrough(t, s, corp, "corp", "1001"); r.status != http.StatusOK || !hasSession(s, b) {
		t.Errorf("then, storage back = %d, want signed in", r.status)
	}
}
