package tokens_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest/pgtest"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
	"github.com/opensts/sts/internal/tokens"
)

// refreshReads counts the refresh-token rows read by ID.
type refreshReads struct {
	*sqlstore.Store
	n atomic.Int64
}

func (s *refreshReads) GetRefreshToken(ctx context.Context, id string) (storage.RefreshToken, error) {
	s.n.Add(1)
	return s.Store.GetRefreshToken(ctx, id)
}

// TestFamilyCheckReadsNoRefreshToken: the check every refresh and every
// refresh-token introspection runs reads the revocation rows and nothing
// else, however old a timed row is: a family begun through a pool after
// the pool was deleted and created again, rotated or never rotated (the
// Google dialect), survives without a read of its first token
// (docs/security.md A-66).
func TestFamilyCheckReadsNoRefreshToken(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			var base *sqlstore.Store
			if backend == "sqlite" {
				base = sqlitetest.NewStore(t)
			} else {
				base = sqlitetest.Open(t, sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: pgtest.DSN(t)})
			}
			s := &refreshReads{Store: base}
			ctx := t.Context()
			rowAt := storage.Now(time.Now().Add(-time.Hour))
			if err := s.PutRevocation(ctx, storage.PoolRevocation("ci", "pool deleted", rowAt, 48*time.Hour)); err != nil {
				t.Fatal(err)
			}
			begun, now := rowAt.Add(time.Minute), storage.Now(time.Now())
			for _, id := range []string{"fam-rotated", "fam-rotated-2", "fam-google"} {
				fam, created := id, begun
				if id == "fam-rotated-2" {
					fam, created = "fam-rotated", now
				}
				if err := s.CreateRefreshToken(ctx, storage.RefreshToken{ID: id, FamilyID: fam, Digest: []byte(id + "-digest-0123456789abcdef0123"),
					ClientID: "c", Subject: "u", Claims: []byte(`{}`), CreatedAt: created, ExpiresAt: now.Add(time.Hour)}); err != nil {
					t.Fatal(err)
				}
			}
			c := tokens.AccessClaims{Pool: "ci", Provider: "gitlab"}
			stored := tokens.NewFamilyTemplate(c, begun)
			for _, tc := range []struct {
				name    string
				t       *tokens.FamilyTemplate
				family  string
				created time.Time
			}{
				{"rotated", &stored, "fam-rotated", now},
				{"rotated, again", &stored, "fam-rotated", now},
				{"never rotated", &stored, "fam-google", begun},
				{"rotated, stored without the times", &tokens.FamilyTemplate{AccessClaims: c}, "fam-rotated", now},
				{"never rotated, stored without the times", &tokens.FamilyTemplate{AccessClaims: c}, "fam-google", begun},
			} {
				if revoked, err := tokens.FamilySourceRevoked(ctx, s, tc.t, tc.family, tc.created); err != nil || revoked {
					t.Errorf("%s, begun after the pool was created again: revoked = %v, %v; want false", tc.name, revoked, err)
				}
			}
			if n := s.n.Load(); n != 0 {
				t.Errorf("the checks of surviving families read %d refresh tokens, want 0", n)
			}
		})
	}
}

// TestFamilyCheckJudgesSourcesByTheirIssue: a family begun after a timed
// row but from a token issued before it (begun while this process had not
// seen the row) ends with the rows of what that token derives from: a
// consent withdrawn from its client, every token of its actor revoked, its
// actor's pool deleted. A row of the family's own pool is judged against
// the family's beginning, so a pool deleted and created again does not end
// what was begun through it since. A family stored without the times
// keeps the older rule, its current refresh token's creation
// (docs/security.md A-66).
func TestFamilyCheckJudgesSourcesByTheirIssue(t *testing.T) {
	s := sqlitetest.NewStore(t)
	ctx := t.Context()
	row := storage.Now(t0)
	for _, r := range []storage.Revocation{
		tokens.ClientSubjectRevocation("client-a", "person", "consent withdrawn", row, time.Hour),
		{ID: tokens.RevocationIDSubject("actor"), IssuedBefore: row, Reason: "test", CreatedAt: row, ExpiresAt: row.Add(time.Hour)},
		storage.PoolRevocation("ci", "pool deleted", row, time.Hour),
	} {
		if err := s.PutRevocation(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	person := tokens.AccessClaims{Subject: "person", Principal: string(storage.PrincipalUser), SourceClientIDs: []string{"client-a"}}
	delegated := tokens.AccessClaims{Subject: "sa", Principal: string(storage.PrincipalServiceAccount), SourceSubjects: []string{"actor"}}
	actorPool := tokens.AccessClaims{Subject: "sa", SourcePools: []string{tokens.SourcePool("ci", "gitlab")}}
	ownPool := tokens.AccessClaims{Subject: "sa", Pool: "ci", Provider: "gitlab"}
	before, after, later := t0.Add(-time.Minute), t0.Add(100*time.Millisecond), t0.Add(time.Minute)
	for _, tc := range []struct {
		name string
		t    tokens.FamilyTemplate
		want bool
	}{
		{"consent withdrawn from the source token's client", tokens.NewFamilyTemplate(person, after, before), true},
		{"source token issued after the consent was withdrawn", tokens.NewFamilyTemplate(person, later, after), false},
		{"actor's tokens revoked, family begun before the row was seen", tokens.NewFamilyTemplate(delegated, after, before, before), true},
		// Judged by the later source (the subject token, issued after the
		// row): the row may be about either token, so it ends nothing
		// (TestFamilyCheckDelegationJudgedByTheLaterSource). The exchange
		// itself refuses the actor's token once the row is seen.
		{"actor's tokens revoked, a fresh subject token", tokens.NewFamilyTemplate(delegated, after, later, before), false},
		{"actor's pool deleted", tokens.NewFamilyTemplate(actorPool, after, before), true},
		{"own pool deleted before the family was begun", tokens.NewFamilyTemplate(ownPool, after, before), false},
		{"own pool deleted after the family was begun", tokens.NewFamilyTemplate(ownPool, before, before), true},
		{"stored without the times: judged by the current token", tokens.FamilyTemplate{AccessClaims: person}, false},
	} {
		if revoked, err := tokens.FamilySourceRevoked(ctx, s, &tc.t, "fam", later); err != nil || revoked != tc.want {
			t.Errorf("%s: revoked = %v, %v; want %v", tc.name, revoked, err, tc.want)
		}
	}
}

// TestFamilyCheckDelegationJudgedByTheLaterSource: a delegation family's
// template holds one source time for two tokens, and a row cannot say
// which of them it is about; judged against the older one, a row about
// the other, fresh, token ended a family it had nothing to do with: a
// fresh actor token (issued after `sts revoke subject <actor>`) delegating
// for a person's older token, or a person's token issued after a renewed
// consent beside an older, unrelated actor token. The later source's iat
// is the time a row must postdate (docs/security.md A-66).
func TestFamilyCheckDelegationJudgedByTheLaterSource(t *testing.T) {
	s := sqlitetest.NewStore(t)
	ctx := t.Context()
	row := storage.Now(t0)
	for _, r := range []storage.Revocation{
		{ID: tokens.RevocationIDSubject("actor"), IssuedBefore: row, Reason: "test", CreatedAt: row, ExpiresAt: row.Add(time.Hour)},
		tokens.ClientSubjectRevocation("client-a", "person", "consent withdrawn", row, time.Hour),
	} {
		if err := s.PutRevocation(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	old, fresh, begun := t0.Add(-5*time.Minute), t0.Add(time.Minute), t0.Add(2*time.Minute)
	for name, tc := range map[string]struct {
		claims         tokens.AccessClaims
		subject, actor time.Time
	}{
		"actor revoked, fresh actor token, older subject token": {
			tokens.AccessClaims{Subject: "person", Principal: string(storage.PrincipalUser), SourceSubjects: []string{"actor"}}, old, fresh},
		"consent withdrawn and given again, fresh subject token, older actor token": {
			tokens.AccessClaims{Subject: "person", Principal: string(storage.PrincipalUser), SourceClientIDs: []string{"client-a"}}, fresh, old},
	} {
		tm := tokens.NewFamilyTemplate(tc.claims, begun, tc.subject, tc.actor)
		if revoked, err := tokens.FamilySourceRevoked(ctx, s, &tm, "fam", begun); err != nil || revoked {
			t.Errorf("%s: revoked = %v, %v; want a live family", name, revoked, err)
		}
	}
}
