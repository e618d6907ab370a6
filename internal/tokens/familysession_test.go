package tokens_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// failingSessions is a session store that cannot answer just now.
type failingSessions struct{}

func (failingSessions) GetWebSessionByLineage(context.Context, string, string) (storage.WebSession, error) {
	return storage.WebSession{}, errors.New("database busy")
}

// TestCheckFamilySession (docs/security.md A-99): a family bound to the
// browser session it was begun in passes only while that session is
// stored, of the family's person and before its end; CheckFamily (what
// refresh-token introspection runs) judges it too. A family bound to no
// session (offline_access, another grant, one stored before sessions were
// recorded) is never judged by one; storage that cannot say, or no store
// at all, is unavailable, never "alive".
func TestCheckFamilySession(t *testing.T) {
	ctx := t.Context()
	s, p := sourceStore(t, storage.PrincipalUser)
	cl := sourceClient(t, s, p.ID)
	if err := s.UpdateClient(ctx, cl.ID, func(old storage.Client) (storage.Client, error) {
		old.GrantTypes = []string{oauth2.GrantTypeAuthorizationCode, oauth2.GrantTypeRefreshToken}
		return old, nil
	}); err != nil {
		t.Fatal(err)
	}
	now := storage.Now(time.Now())
	// session stores a session of principal continuing lineage (its own
	// ID when ""), and returns its lineage.
	session := func(principal string, end time.Time, lineage string) string {
		t.Helper()
		w := storage.WebSession{ID: storage.NewID(), Digest: []byte(storage.NewID()), OrgID: "acme", PrincipalID: principal,
			Method: "link", CreatedAt: now.Add(-time.Hour), LastSeenAt: now.Add(-time.Hour), ExpiresAt: end, Lineage: lineage}
		if w.Lineage == "" {
			w.Lineage = w.ID
		}
		if err := s.CreateWebSession(ctx, w); err != nil {
			t.Fatal(err)
		}
		return w.Lineage
	}
	byLineage := func(lineage string) string {
		t.Helper()
		w, err := s.GetWebSessionByLineage(ctx, p.ID, lineage)
		if err != nil {
			t.Fatal(err)
		}
		return w.ID
	}
	other := storage.Principal{ID: storage.NewID(), OrgID: "acme", Kind: storage.PrincipalUser, Name: "bob", CreatedAt: t0}
	if err := s.CreatePrincipal(ctx, other); err != nil {
		t.Fatal(err)
	}
	live, expired, bobs, ended := session(p.ID, now.Add(time.Hour), ""), session(p.ID, now, ""), session(other.ID, now.Add(time.Hour), ""), session(p.ID, now.Add(time.Hour), "")
	if err := s.DeleteWebSession(ctx, byLineage(ended)); err != nil {
		t.Fatal(err)
	}
	// The same person signed in again: the first session ended, the one
	// replacing it continues its lineage. Bob signing in over a
	// session of p's begins his own lineage; one of p's that he would
	// carry on is not p's.
	replaced := session(p.ID, now.Add(time.Hour), "")
	first := byLineage(replaced)
	session(p.ID, now.Add(time.Hour), replaced)
	if err := s.DeleteWebSession(ctx, first); err != nil {
		t.Fatal(err)
	}
	takenOver := session(p.ID, now.Add(time.Hour), "")
	if err := s.DeleteWebSession(ctx, byLineage(takenOver)); err != nil {
		t.Fatal(err)
	}
	session(other.ID, now.Add(time.Hour), takenOver)
	family := func(sess string) *tokens.FamilyTemplate {
		return &tokens.FamilyTemplate{AccessClaims: tokens.AccessClaims{Subject: p.ID, OrgID: "acme", Principal: string(p.Kind),
			ClientID: cl.ID, Audience: tokens.Audience{testAud}}, Grant: oauth2.GrantTypeAuthorizationCode, SessionLineage: sess}
	}
	src := tokens.NewStoreSources(s, nil)
	src.TTL, src.Now = 0, func() time.Time { return now }
	for _, tc := range []struct {
		name, session string
		want          error // nil: alive
	}{
		{"bound to no session", "", nil},
		{"its session live", live, nil},
		{"its session replaced by the same person signing in again", replaced, nil},
		{"its session's lineage carried on by another person", takenOver, tokens.ErrSessionEnded},
		{"its session signed out", ended, tokens.ErrSessionEnded},
		{"its session at its absolute end", expired, tokens.ErrSessionEnded},
		{"another person's session", bobs, tokens.ErrSessionEnded},
		{"a session never stored", storage.NewID(), tokens.ErrSessionEnded},
	} {
		_, err := tokens.CheckFamilySession(ctx, s, family(tc.session), now, tokens.SessionBounds{})
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: CheckFamilySession = %v, want %v", tc.name, err, tc.want)
		}
		if tc.want != nil && tokens.Reason(err) != "session_not_active" {
			t.Errorf("%s: reason %q, want session_not_active", tc.name, tokens.Reason(err))
		}
		if err := src.CheckFamily(ctx, family(tc.session)); (err == nil) != (tc.want == nil) {
			t.Errorf("%s: CheckFamily = %v, want alive %v", tc.name, err, tc.want == nil)
		}
	}
	// The timeouts as configured now: the live session was
	// signed in to and last used an hour ago.
	for _, tc := range []struct {
		name  string
		b     tokens.SessionBounds
		alive bool
	}{
		{"within the idle and absolute timeouts", tokens.SessionBounds{Idle: 2 * time.Hour, Absolute: 24 * time.Hour}, true},
		{"idle for the idle timeout", tokens.SessionBounds{Idle: time.Hour, Absolute: 24 * time.Hour}, false},
		{"the absolute timeout lowered below its age", tokens.SessionBounds{Idle: 2 * time.Hour, Absolute: time.Hour}, false},
		// Its sign-in method as the pages judge it: the
		// session was signed in by "link".
		{"its sign-in method still accepted", tokens.SessionBounds{Idle: 2 * time.Hour, Absolute: 24 * time.Hour, Accepts: func(m string) bool { return m == "link" }}, true},
		{"its sign-in method no longer configured", tokens.SessionBounds{Idle: 2 * time.Hour, Absolute: 24 * time.Hour, Accepts: func(m string) bool { return m != "link" }}, false},
	} {
		w, err := tokens.CheckFamilySession(ctx, s, family(live), now, tc.b)
		if (err == nil) != tc.alive || (err != nil && !errors.Is(err, tokens.ErrSessionEnded)) {
			t.Errorf("%s: CheckFamilySession = %v, want alive %v", tc.name, err, tc.alive)
		}
		if w.Lineage != live {
			t.Errorf("%s: CheckFamilySession found session of lineage %q, want %q (the refresh ends or touches it)", tc.name, w.Lineage, live)
		}
		src.SessionBounds = tc.b
		if err := src.CheckFamily(ctx, family(live)); (err == nil) != tc.alive {
			t.Errorf("%s: CheckFamily = %v, want alive %v", tc.name, err, tc.alive)
		}
	}
	for name, r := range map[string]tokens.SessionReader{"storage down": failingSessions{}, "no store": nil} {
		// Storage that cannot say is unavailable, whatever the methods.
		refuseAll := tokens.SessionBounds{Accepts: func(string) bool { return false }}
		if _, err := tokens.CheckFamilySession(ctx, r, family(live), now, refuseAll); !errors.Is(err, tokens.ErrSourceUnavailable) {
			t.Errorf("%s: CheckFamilySession = %v, want unavailable", name, err)
		}
		if _, err := tokens.CheckFamilySession(ctx, r, family(""), now, tokens.SessionBounds{}); err != nil {
			t.Errorf("%s: a family bound to no session: %v, want no read", name, err)
		}
	}
}
