package api

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
)

// patWithID mints a PAT for owner and returns its ID and secret.
func (e *env) patWithID(owner string, life time.Duration, scopes ...string) (string, string) {
	e.t.Helper()
	p, s, err := e.pats.Create(context.Background(), testCaller, pat.CreateInput{
		OwnerID: owner, Scopes: scopes, ExpiresAt: time.Now().Add(life),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return p.ID, s
}

// TestPATActNeedsEveryScope: a credential may regenerate, update or
// delete one of its owner's PATs only if it holds every scope of that
// PAT; a tokens:write or full-access PAT cannot take over the same user's
// sts:admin PAT (regenerate would hand it the new secret).
func TestPATActNeedsEveryScope(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.clients(e.srv.URL)
	adminID, _ := e.patWithID(e.user.ID, 30*24*time.Hour, pat.ScopeFull, pat.ScopeAdmin)
	for name, scopes := range map[string][]string{
		"tokens:write": {pat.ScopeTokensWrite},
		"full":         {pat.ScopeFull},
	} {
		t.Run(name, func(t *testing.T) {
			_, sec := e.patWithID(e.user.ID, 30*24*time.Hour, scopes...)
			ctx := as(sec)
			_, err := c.user.RegeneratePersonalAccessToken(ctx, &gitpodv1.RegeneratePersonalAccessTokenRequest{
				PersonalAccessTokenId: adminID, ValidFor: durationpb.New(7 * 24 * time.Hour)})
			wantCode(t, "regenerate", err, connect.CodePermissionDenied)
			desc := "mine now"
			_, err = c.user.UpdatePersonalAccessToken(ctx, &gitpodv1.UpdatePersonalAccessTokenRequest{
				PersonalAccessTokenId: adminID, Description: &desc})
			wantCode(t, "update", err, connect.CodePermissionDenied)
			_, err = c.user.DeletePersonalAccessToken(ctx, &gitpodv1.DeletePersonalAccessTokenRequest{PersonalAccessTokenId: adminID})
			wantCode(t, "delete", err, connect.CodePermissionDenied)
		})
	}
	// The admin PAT itself, and a PAT with the same scopes, still may.
	_, sec := e.patWithID(e.user.ID, 30*24*time.Hour, pat.ScopeFull, pat.ScopeAdmin)
	if _, err := c.user.RegeneratePersonalAccessToken(as(sec), &gitpodv1.RegeneratePersonalAccessTokenRequest{
		PersonalAccessTokenId: adminID, ValidFor: durationpb.New(7 * 24 * time.Hour)}); err != nil {
		t.Errorf("regenerate by an equal credential: %v", err)
	}
	if _, err := c.user.DeletePersonalAccessToken(as(sec), &gitpodv1.DeletePersonalAccessTokenRequest{PersonalAccessTokenId: adminID}); err != nil {
		t.Errorf("delete by an equal credential: %v", err)
	}
	if _, err := e.store.GetPAT(context.Background(), adminID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("admin PAT after delete: %v, want not found", err)
	}
}

// TestPATCreateBoundByCredential: an access token (here from
// ExchangeToken, lifetime 15 minutes) cannot create or regenerate a PAT,
// and a PAT cannot create one that outlives itself, unless the caller is
// an administrator.
func TestPATCreateBoundByCredential(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.clients(e.srv.URL)
	_, exSecret, err := e.pats.CreateExchangeToken(context.Background(), testCaller, e.user.ID, 0, pat.ExchangeSource{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.identity.ExchangeToken(context.Background(), &gitpodv1.ExchangeTokenRequest{ExchangeToken: exSecret})
	if err != nil {
		t.Fatal(err)
	}
	access := res.GetAccessToken()
	_, err = c.user.CreatePersonalAccessToken(as(access), &gitpodv1.CreatePersonalAccessTokenRequest{
		Scopes: []string{pat.ScopeFull}, ValidFor: durationpb.New(366 * 24 * time.Hour)})
	wantCode(t, "create from an access token", err, connect.CodePermissionDenied)
	otherID, _ := e.patWithID(e.user.ID, 30*24*time.Hour, pat.ScopeIdentityRead)
	_, err = c.user.RegeneratePersonalAccessToken(as(access), &gitpodv1.RegeneratePersonalAccessTokenRequest{
		PersonalAccessTokenId: otherID, ValidFor: durationpb.New(366 * 24 * time.Hour)})
	wantCode(t, "regenerate from an access token", err, connect.CodePermissionDenied)
	// Reading stays allowed.
	if _, err := c.user.ListPersonalAccessTokens(as(access), &gitpodv1.ListPersonalAccessTokensRequest{}); err != nil {
		t.Errorf("list from an access token: %v", err)
	}

	// A PAT valid 10 days may create one valid up to 10 days, not 30.
	_, short := e.patWithID(e.user.ID, 10*24*time.Hour, pat.ScopeFull)
	_, err = c.user.CreatePersonalAccessToken(as(short), &gitpodv1.CreatePersonalAccessTokenRequest{
		Scopes: []string{pat.ScopeIdentityRead}, ValidFor: durationpb.New(30 * 24 * time.Hour)})
	wantCode(t, "create outliving the parent PAT", err, connect.CodePermissionDenied)
	if _, err := c.user.CreatePersonalAccessToken(as(short), &gitpodv1.CreatePersonalAccessTokenRequest{
		Scopes: []string{pat.ScopeIdentityRead}, ValidFor: durationpb.New(5 * 24 * time.Hour)}); err != nil {
		t.Errorf("create within the parent's lifetime: %v", err)
	}
	// A PAT may renew itself (regenerate rotates its own secret).
	shortID, short2 := e.patWithID(e.user.ID, 10*24*time.Hour, pat.ScopeFull)
	if _, err := c.user.RegeneratePersonalAccessToken(as(short2), &gitpodv1.RegeneratePersonalAccessTokenRequest{
		PersonalAccessTokenId: shortID, ValidFor: durationpb.New(60 * 24 * time.Hour)}); err != nil {
		t.Errorf("self-regenerate: %v", err)
	}
	// An administrator decides lifetimes.
	if _, err := c.user.CreatePersonalAccessToken(as(e.admin), &gitpodv1.CreatePersonalAccessTokenRequest{
		Scopes: []string{pat.ScopeIdentityRead}, ValidFor: durationpb.New(300 * 24 * time.Hour)}); err != nil {
		t.Errorf("admin create: %v", err)
	}
}

// TestPATWideningIsMinting (docs/security.md A-39): giving a PAT a scope
// it did not hold follows the rule of minting one (mayMintPAT). Otherwise
// a 15-minute access token with tokens:write turns the owner's year-long
// read-only PAT into a full-access one, which then mints PATs, and a PAT
// widens one that outlives it. Narrowing a PAT and changing its
// description stay open to any credential with tokens:write.
func TestPATWideningIsMinting(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.clients(e.srv.URL)
	ctx := t.Context()
	_, exSecret, err := e.pats.CreateExchangeToken(ctx, testCaller, e.user.ID, 0, pat.ExchangeSource{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.identity.ExchangeToken(ctx, &gitpodv1.ExchangeTokenRequest{ExchangeToken: exSecret})
	if err != nil {
		t.Fatal(err)
	}
	access := res.GetAccessToken()
	_, short := e.patWithID(e.user.ID, 10*24*time.Hour, pat.ScopeFull)
	_, long := e.patWithID(e.user.ID, 60*24*time.Hour, pat.ScopeFull)
	full := &gitpodv1.ScopeList{Scopes: []string{pat.ScopeFull}}
	update := func(cred, id string, scopes *gitpodv1.ScopeList) error {
		desc := "changed"
		_, err := c.user.UpdatePersonalAccessToken(as(cred), &gitpodv1.UpdatePersonalAccessTokenRequest{
			PersonalAccessTokenId: id, Description: &desc, Scopes: scopes})
		return err
	}
	scopesOf := func(id string) []string {
		t.Helper()
		p, err := e.store.GetPAT(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return p.Scopes
	}

	for _, tc := range []struct {
		name string
		cred string
		life time.Duration // of the PAT widened
		want connect.Code  // 0: allowed
	}{
		{"access token widens", access, 30 * 24 * time.Hour, connect.CodePermissionDenied},
		{"PAT widens one that outlives it", short, 30 * 24 * time.Hour, connect.CodePermissionDenied},
		{"PAT widens one within its lifetime", short, 5 * 24 * time.Hour, 0},
		{"longer-lived PAT widens", long, 30 * 24 * time.Hour, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ro, _ := e.patWithID(e.user.ID, tc.life, pat.ScopeIdentityRead)
			err := update(tc.cred, ro, full)
			want := []string{pat.ScopeIdentityRead}
			switch {
			case tc.want != 0:
				wantCode(t, "UpdatePersonalAccessToken(identity:read → *)", err, tc.want)
			case err != nil:
				t.Errorf("UpdatePersonalAccessToken(identity:read → *) = %v, want success", err)
			default:
				want = full.Scopes
			}
			if got := scopesOf(ro); !slices.Equal(got, want) {
				t.Errorf("scopes after the update = %v, want %v", got, want)
			}
		})
	}

	// Narrowing, keeping the scopes and changing the description are not
	// minting: an access token may.
	wide, _ := e.patWithID(e.user.ID, 300*24*time.Hour, pat.ScopeFull)
	if err := update(access, wide, full); err != nil {
		t.Errorf("access token keeps a PAT's scopes: %v", err)
	}
	if err := update(access, wide, &gitpodv1.ScopeList{Scopes: []string{pat.ScopeTokensRead, pat.ScopeIdentityRead}}); err != nil {
		t.Errorf("access token narrows a PAT: %v", err)
	}
	if err := update(access, wide, nil); err != nil {
		t.Errorf("access token changes a PAT's description: %v", err)
	}
	// Regaining a scope the PAT lost is widening again.
	wantCode(t, "access token widens a narrowed PAT back", update(access, wide, full), connect.CodePermissionDenied)

	// An administrator decides lifetimes: it widens its own long-lived PAT.
	adm := e.principalNamed(t, "admin")
	admRO, _ := e.patWithID(adm.ID, 300*24*time.Hour, pat.ScopeIdentityRead)
	if err := update(e.admin, admRO, full); err != nil {
		t.Errorf("administrator widens its PAT: %v", err)
	}
}
