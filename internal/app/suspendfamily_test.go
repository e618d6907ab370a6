package app_test

import (
	"strings"
	"testing"
	"time"

	xoauth2 "golang.org/x/oauth2"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
)

// TestSuspendEndsRefreshFamilies (docs/security.md A-81): suspending a
// user (gitpod.v1 UserService/SetSuspended) is a subject revocation, so
// it ends the refresh families of the user's applications, as `sts revoke
// subject` does, and reactivating the user brings none back; another
// user's family is untouched. golang.org/x/oauth2 is the judge of the
// refresh.
func TestSuspendEndsRefreshFamilies(t *testing.T) {
	t.Parallel()
	e := newCodeEnv(t)
	ctx := t.Context()
	now := storage.Now(time.Now())
	admin := storage.Principal{ID: storage.NewID(), OrgID: e.org, Kind: storage.PrincipalUser, Name: "admin", CreatedAt: now, UpdatedAt: now}
	if err := e.store.CreatePrincipal(ctx, admin); err != nil {
		t.Fatal(err)
	}
	pats, err := pat.NewService(e.store, e.pepper)
	if err != nil {
		t.Fatal(err)
	}
	_, adminPAT, err := pats.Create(ctx, gitpodCaller, pat.CreateInput{OwnerID: admin.ID, Scopes: []string{pat.ScopeFull, pat.ScopeAdmin},
		ExpiresAt: time.Now().Add(48 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	conf := e.oauthConfig(e.conf, e.secret, e.callback.URL+"/cb")
	refreshes := func(tok *xoauth2.Token) error {
		t.Helper()
		_, err := conf.TokenSource(ctx, &xoauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		return err
	}
	suspended, bystander := e.tokenFor(t, e.user, "notes.read"), e.tokenFor(t, e.other, "notes.read")
	for _, tok := range []*xoauth2.Token{suspended, bystander} {
		if tok.RefreshToken == "" {
			t.Fatal("no refresh token from a recent sign-in")
		}
	}
	users := gitpodv1connect.NewUserServiceClient(bearer(adminPAT), e.base+"/api")
	for _, s := range []bool{true, false} {
		if _, err := users.SetSuspended(ctx, &gitpodv1.SetSuspendedRequest{UserId: e.user.ID, Suspended: s}); err != nil {
			t.Fatalf("SetSuspended(%v): %v", s, err)
		}
	}
	if err := refreshes(suspended); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("refresh of a family begun before the user was suspended, after reactivation: %v, want invalid_grant", err)
	}
	if err := refreshes(bystander); err != nil {
		t.Errorf("refresh of another user's family: %v", err)
	}
	// The reactivated user signs in again and gets a family that works.
	if err := refreshes(e.tokenFor(t, e.user, "notes.read")); err != nil {
		t.Errorf("refresh of a family begun after reactivation: %v", err)
	}
}
