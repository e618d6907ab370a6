package sqlstore_test

import (
	"errors"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
)

// TestSQLiteRestoreEndsOneTimeUse and TestPostgresRestoreEndsOneTimeUse
// run restoreEndsOneTimeUse on each backend.
func TestSQLiteRestoreEndsOneTimeUse(t *testing.T) {
	t.Parallel()
	restoreEndsOneTimeUse(t, newSQLite(t).(*sqlstore.Store))
}

func TestPostgresRestoreEndsOneTimeUse(t *testing.T) {
	t.Parallel()
	s := newPostgres(t).(*sqlstore.Store)
	t.Cleanup(func() { s.Close() })
	restoreEndsOneTimeUse(t, s)
}

// restoreEndsOneTimeUse (docs/security.md F-62): after RestoreReset no
// exchange token, authorization code, sign-in link or web session of the
// restored database can be redeemed, and MarkUsed refuses, as a replay,
// every identifier that may have been presented before the restore (its
// earliest moment before it), while one presented only after it is
// recorded once, as before. The counts reach the audit event.
func restoreEndsOneTimeUse(t *testing.T, s *sqlstore.Store) {
	ctx := t.Context()
	now := storage.Now(time.Now())
	exp := now.Add(time.Hour)
	mustNil := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	mustNil("CreateExchangeToken", s.CreateExchangeToken(ctx, storage.ExchangeToken{ID: "x1", Digest: []byte("x1"), CreatedAt: now, ExpiresAt: exp}))
	mustNil("CreateAuthCode", s.CreateAuthCode(ctx, storage.AuthCode{ID: "c1", Digest: []byte("c1"), CreatedAt: now, ExpiresAt: exp}))
	// A sign-in link and a session are stored only for an enabled user.
	mustNil("CreateOrganization", s.CreateOrganization(ctx, storage.Organization{ID: "o1", Name: "o1", CreatedAt: now, UpdatedAt: now}))
	mustNil("CreatePrincipal", s.CreatePrincipal(ctx, storage.Principal{ID: "p1", OrgID: "o1", Kind: storage.PrincipalUser, Name: "p1",
		CreatedAt: now, UpdatedAt: now}))
	mustNil("CreateLoginLink", s.CreateLoginLink(ctx, storage.LoginLink{ID: "l1", OrgID: "o1", PrincipalID: "p1", Digest: []byte("l1"),
		CreatedAt: now, ExpiresAt: exp}))
	mustNil("CreateWebSession", s.CreateWebSession(ctx, storage.WebSession{ID: "w1", OrgID: "o1", PrincipalID: "p1", Digest: []byte("w1"),
		CreatedAt: now, LastSeenAt: now, ExpiresAt: exp}))
	mustNil("MarkUsed before the restore", s.MarkUsed(ctx, "spent", now.Add(-time.Minute), exp))

	restored := now.Add(time.Second)
	var got storage.RestoreCounts
	mustNil("RestoreReset", s.RestoreReset(ctx, nil, restored, func([]storage.SigningKey) error { return nil },
		func(_ []storage.SigningKey, n storage.RestoreCounts) storage.AuditEvent {
			got = n
			return storage.AuditEvent{ID: storage.NewID(), Time: restored, Actor: "test", Action: "instance.restore", Outcome: "success"}
		}))
	if want := (storage.RestoreCounts{ExchangeTokens: 1, AuthCodes: 1, LoginLinks: 1, WebSessions: 1}); got != want {
		t.Errorf("RestoreReset counts = %+v, want %+v", got, want)
	}

	if _, err := s.ConsumeExchangeToken(ctx, []byte("x1"), now); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("exchange token after the restore: %v, want ErrNotFound", err)
	}
	if _, err := s.ConsumeAuthCode(ctx, []byte("c1"), now, "j", ""); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("authorization code after the restore: %v, want ErrNotFound", err)
	}
	if _, err := s.ConsumeLoginLink(ctx, []byte("l1"), now); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("sign-in link after the restore: %v, want ErrNotFound", err)
	}
	if _, err := s.GetWebSessionByDigest(ctx, []byte("w1")); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("web session after the restore: %v, want ErrNotFound", err)
	}

	// Used answers what MarkUsed would: a token presented before the
	// restore counts as used (T-134's read before the mint, F-62).
	for _, tc := range []struct {
		earliest time.Time
		want     bool
	}{
		{now, true},
		{time.Time{}, true},
		{restored, false},
		{restored.Add(time.Microsecond), false},
	} {
		if got, err := s.Used(ctx, "never marked", tc.earliest); err != nil || got != tc.want {
			t.Errorf("Used(never marked, earliest %v) = %v, %v, want %v", tc.earliest, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		id       string
		earliest time.Time
		want     error
	}{
		{"unknown to the backup", now, storage.ErrAlreadyExists}, // presented before the restore, maybe spent since
		{"zero earliest", time.Time{}, storage.ErrAlreadyExists},
		{"after", restored.Add(time.Microsecond), nil},
		{"at", restored, nil},
		{"after", restored.Add(time.Second), storage.ErrAlreadyExists}, // a replay, as ever
	} {
		if err := s.MarkUsed(ctx, tc.id, tc.earliest, exp); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("MarkUsed(%s, earliest %v) = %v, want %v", tc.id, tc.earliest, err, tc.want)
		}
	}
}
