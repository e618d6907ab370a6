package sqlstore_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
)

// TestPostgresRevokeDuringRotation: a refresh family revoked while one of
// its tokens is being rotated ends the successor too (docs/security.md
// T-158). On PostgreSQL (READ COMMITTED) an UPDATE finds only the rows
// committed when it began: the revocation waited for the rotation's row
// lock on the parent, then marked the parent, but the successor the
// rotation inserted meanwhile stayed live. It refreshed again once the
// grant: row had expired (/oauth2/revoke, a reuse), and at once after a
// withdrawn consent or a subject revocation and reactivation, which no
// row of the family's own covers. The rotation is held inside its
// transaction until the revocation is seen waiting for its lock.
func TestPostgresRevokeDuringRotation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		revoke func(ctx context.Context, s *sqlstore.Store, rt storage.RefreshToken) (int64, error)
	}{
		{"Family", func(ctx context.Context, s *sqlstore.Store, rt storage.RefreshToken) (int64, error) {
			return s.RevokeRefreshFamily(ctx, rt.FamilyID)
		}},
		{"Subject", func(ctx context.Context, s *sqlstore.Store, rt storage.RefreshToken) (int64, error) {
			return s.RevokeRefreshSubject(ctx, rt.Subject, time.Now())
		}},
		{"ClientSubject", func(ctx context.Context, s *sqlstore.Store, rt storage.RefreshToken) (int64, error) {
			return s.RevokeRefreshClientSubject(ctx, rt.ClientID, rt.Subject)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Its own application_name, so that the wait below is this
			// test's revocation, not another package's sharing the database.
			app := "sts-revoke-" + storage.NewID()
			dsn := newPostgresSchema(t)
			sep := "?"
			if strings.Contains(dsn, "?") {
				sep = "&"
			}
			s := openMigrated(t, sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: dsn + sep + "application_name=" + app})
			defer s.Close()
			ctx := t.Context()
			now := storage.Now(time.Now())
			parent := storage.RefreshToken{ID: storage.NewID(), Digest: []byte(rand.Text()), ClientID: storage.NewID(),
				OrgID: storage.NewID(), Subject: storage.NewID(), Scopes: []string{"openid"}, Audiences: []string{"https://api.example"},
				Claims: []byte(`{}`), CreatedAt: now.Add(-time.Minute), ExpiresAt: now.Add(time.Hour)}
			parent.FamilyID = parent.ID
			if err := s.CreateRefreshToken(ctx, parent); err != nil {
				t.Fatal(err)
			}
			succ := parent
			succ.ID, succ.Digest, succ.CreatedAt = storage.NewID(), []byte(rand.Text()), now

			locked, release, rotated := make(chan struct{}), make(chan struct{}), make(chan error, 1)
			go func() {
				rotated <- s.RotateRefreshToken(ctx, parent.ID, succ, func(storage.RefreshToken) error {
					close(locked)
					<-release
					return nil
				})
			}()
			<-locked
			type result struct {
				n   int64
				err error
			}
			revoked := make(chan result, 1)
			go func() {
				n, err := tc.revoke(ctx, s, parent)
				revoked <- result{n, err}
			}()
			waitForRevokeBlocked(t, s.DB(), app)
			close(release)
			if err := <-rotated; err != nil {
				t.Fatalf("rotate: %v", err)
			}
			res := <-revoked
			if res.err != nil {
				t.Fatalf("revoke: %v", res.err)
			}
			for what, id := range map[string]string{"parent": parent.ID, "successor": succ.ID} {
				got, err := s.GetRefreshToken(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if !got.Revoked {
					t.Errorf("the %s is not revoked after a revocation that waited for the rotation", what)
				}
			}
			if res.n != 2 {
				t.Errorf("revoked %d rows, want 2 (the parent and its successor)", res.n)
			}
		})
	}
}

// waitForRevokeBlocked waits until a refresh-token revocation of the
// connections named app is waiting for a row lock.
func waitForRevokeBlocked(t *testing.T, db *sql.DB, app string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var n int
		err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = $1 AND wait_event_type = 'Lock'
			AND query LIKE 'UPDATE refresh_tokens SET revoked%'`, app).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the revocation never waited for the rotation's lock")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
