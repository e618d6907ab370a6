package api

import (
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/crypto/nacl/box"
	"google.golang.org/protobuf/types/known/timestamppb"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
	"github.com/opensts/sts/internal/hosttoken"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
)

// TestHostTokenNoPlaintextRead: a PAT with tokens:read (or full access)
// must not read a host token's plaintext through
// RunnerConfigurationService; values leave only sealed to the runner.
func TestHostTokenNoPlaintextRead(t *testing.T) {
	t.Parallel()
	e, runnerID, _, _ := hostEnv(t)
	c := gitpodv1connect.NewRunnerConfigurationServiceClient(e.srv.Client(), e.srv.URL)
	res, err := c.CreateHostAuthenticationToken(as(e.secret), &gitpodv1.CreateHostAuthenticationTokenRequest{
		RunnerId: runnerID, UserId: e.user.ID, Host: "github.com", Token: "gho_plaintext_secret"})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	id := res.GetToken().GetId()
	for name, tok := range map[string]string{
		"tokens:read": e.mintPAT(e.user.ID, pat.ScopeTokensRead),
		"full":        e.secret,
		"admin":       e.admin,
	} {
		for _, base := range []string{"", "/api"} {
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+base+"/gitpod.v1.RunnerConfigurationService/GetHostAuthenticationTokenValue",
				strings.NewReader(`{"id":"`+id+`"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+tok)
			res, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
			res.Body.Close()
			if res.StatusCode == 200 || strings.Contains(string(b), "gho_plaintext_secret") {
				t.Errorf("%s %s: GetHostAuthenticationTokenValue = %d %s, want no plaintext", name, base, res.StatusCode, b)
			}
		}
		g, err := c.GetHostAuthenticationToken(as(tok), &gitpodv1.GetHostAuthenticationTokenRequest{Id: id})
		if err == nil && strings.Contains(g.String(), "gho_plaintext_secret") {
			t.Errorf("%s: GetHostAuthenticationToken discloses the value: %v", name, g)
		}
	}
}

// TestRunnerCannotPlantUserToken: only the user, or an administrator of
// the organization, may store a host token whose subject is that user.
func TestRunnerCannotPlantUserToken(t *testing.T) {
	t.Parallel()
	e, runnerID, runnerPAT, _ := hostEnv(t)
	c := gitpodv1connect.NewRunnerConfigurationServiceClient(e.srv.Client(), e.srv.URL)
	mk := func(tok string, sub *gitpodv1.Subject) error {
		_, err := c.CreateHostAuthenticationToken(as(tok), &gitpodv1.CreateHostAuthenticationTokenRequest{
			RunnerId: runnerID, Subject: sub, Host: "github.com", Token: "gho_planted"})
		return err
	}
	user := &gitpodv1.Subject{Id: e.user.ID, Principal: gitpodv1.Principal_PRINCIPAL_USER}
	wantCode(t, "runner plants a user's token", mk(runnerPAT, user), connect.CodePermissionDenied)
	_, err := c.CreateHostAuthenticationToken(as(runnerPAT), &gitpodv1.CreateHostAuthenticationTokenRequest{
		RunnerId: runnerID, UserId: e.user.ID, Host: "github.com", Token: "gho_planted"})
	wantCode(t, "runner plants a user's token via userId", err, connect.CodePermissionDenied)
	other := e.mintPAT(mustPrincipal(t, e, "bob").ID, pat.ScopeFull)
	wantCode(t, "another user plants a user's token", mk(other, user), connect.CodePermissionDenied)
	if err := mk(e.secret, user); err != nil {
		t.Errorf("the user itself: %v", err)
	}
	if err := mk(e.admin, user); err != nil {
		t.Errorf("an organization admin: %v", err)
	}
	runnerSub := &gitpodv1.Subject{Id: runnerID, Principal: gitpodv1.Principal_PRINCIPAL_RUNNER}
	if err := mk(runnerPAT, runnerSub); err != nil {
		t.Errorf("runner stores its own token: %v", err)
	}

	// Replacing the value of the user's token is storing one: the runner
	// may not, the user and an admin may; its metadata stays the runner's
	// to change (UpdateHostAuthenticationTokenMetadata).
	res, err := c.CreateHostAuthenticationToken(as(e.secret), &gitpodv1.CreateHostAuthenticationTokenRequest{
		RunnerId: runnerID, Subject: user, Host: "gitlab.com", Token: "glpat_users_own"})
	if err != nil {
		t.Fatal(err)
	}
	id := res.GetToken().GetId()
	replace := func(tok string, value, refresh *string) error {
		_, err := c.UpdateHostAuthenticationToken(as(tok), &gitpodv1.UpdateHostAuthenticationTokenRequest{Id: id, Token: value, RefreshToken: refresh})
		return err
	}
	pub, priv, _ := box.GenerateKey(rand.Reader)
	if _, err := stsv1connect.NewRunnerKeyServiceClient(e.srv.Client(), e.srv.URL).SetRunnerPublicKey(as(e.admin),
		&stsv1.SetRunnerPublicKeyRequest{RunnerId: runnerID, PublicKey: pub[:]}); err != nil {
		t.Fatal(err)
	}
	stored := func() string {
		t.Helper()
		r, err := gitpodv1connect.NewRunnerInteractionServiceClient(e.srv.Client(), e.srv.URL).GetHostAuthenticationTokenValue(as(runnerPAT),
			&gitpodv1.GetHostAuthenticationTokenValueRequest{RunnerId: runnerID, PrincipalId: e.user.ID, Host: "gitlab.com"})
		if err != nil {
			t.Fatal(err)
		}
		v, _ := box.OpenAnonymous(nil, r.GetValue(), pub, priv)
		return string(v)
	}
	planted := "glpat_planted"
	wantCode(t, "runner replaces a user's token value", replace(runnerPAT, &planted, nil), connect.CodePermissionDenied)
	wantCode(t, "runner replaces a user's refresh token", replace(runnerPAT, nil, &planted), connect.CodePermissionDenied)
	if v := stored(); v != "glpat_users_own" {
		t.Errorf("after the refused updates the user's token holds %q", v)
	}
	// A later expiry hands the user's value out for longer than the user
	// chose: the runner may not set one, only an earlier one
	// (docs/security.md T-176).
	expire := func(tok string, at time.Time) error {
		_, err := c.UpdateHostAuthenticationToken(as(tok), &gitpodv1.UpdateHostAuthenticationTokenRequest{Id: id, ExpiresAt: timestamppb.New(at)})
		return err
	}
	if err := expire(e.secret, time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("the user sets an expiry: %v", err)
	}
	wantCode(t, "runner extends a user's token", expire(runnerPAT, time.Now().Add(365*24*time.Hour)), connect.CodePermissionDenied)
	if err := expire(runnerPAT, time.Now().Add(time.Minute)); err != nil {
		t.Errorf("runner shortens a user's token: %v", err)
	}
	if err := expire(e.admin, time.Now().Add(2*time.Hour)); err != nil {
		t.Errorf("an organization admin extends it: %v", err)
	}
	mine, admins := "glpat_rotated", "glpat_by_admin"
	if err := replace(e.secret, &mine, nil); err != nil {
		t.Errorf("the user replaces its value: %v", err)
	}
	if err := replace(e.admin, &admins, nil); err != nil {
		t.Errorf("an organization admin replaces it: %v", err)
	}
}

func mustPrincipal(t *testing.T, e *env, name string) storage.Principal {
	t.Helper()
	p, err := CreatePrincipal(t.Context(), e.store, testCaller, e.org.ID, storage.PrincipalUser, name, "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestHostTokensGoWithTheirPrincipal: deleting a principal deletes the
// host tokens it is the subject or the runner of (docs/security.md A-31:
// nothing is orphaned), so a deleted user's SCM secret is neither kept,
// refreshed nor delivered; and while a user is disabled its tokens are
// not delivered.
func TestHostTokensGoWithTheirPrincipal(t *testing.T) {
	t.Parallel()
	e, runnerID, runnerPAT, _ := hostEnv(t)
	c := gitpodv1connect.NewRunnerConfigurationServiceClient(e.srv.Client(), e.srv.URL)
	ri := gitpodv1connect.NewRunnerInteractionServiceClient(e.srv.Client(), e.srv.URL)
	pub, _, _ := box.GenerateKey(rand.Reader)
	if _, err := stsv1connect.NewRunnerKeyServiceClient(e.srv.Client(), e.srv.URL).SetRunnerPublicKey(as(e.admin),
		&stsv1.SetRunnerPublicKeyRequest{RunnerId: runnerID, PublicKey: pub[:]}); err != nil {
		t.Fatal(err)
	}
	bob := mustPrincipal(t, e, "bob")
	bobPAT := e.mintPAT(bob.ID, pat.ScopeFull)
	if _, err := c.CreateHostAuthenticationToken(as(bobPAT), &gitpodv1.CreateHostAuthenticationTokenRequest{
		RunnerId: runnerID, UserId: bob.ID, Host: "github.com", Token: "gho_bobs_secret", RefreshToken: "ghr_bobs_refresh"}); err != nil {
		t.Fatal(err)
	}
	value := func() error {
		_, err := ri.GetHostAuthenticationTokenValue(as(runnerPAT),
			&gitpodv1.GetHostAuthenticationTokenValueRequest{RunnerId: runnerID, PrincipalId: bob.ID, Host: "github.com"})
		return err
	}
	if err := value(); err != nil {
		t.Fatalf("bob's token for the runner: %v", err)
	}
	ps := stsv1connect.NewPrincipalServiceClient(e.srv.Client(), e.srv.URL)
	if _, err := ps.SetPrincipalDisabled(as(e.admin), &stsv1.SetPrincipalDisabledRequest{PrincipalId: bob.ID, Disabled: true}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "the token of a disabled user", value(), connect.CodeNotFound)
	if _, err := ps.DeletePrincipal(as(e.admin), &stsv1.DeletePrincipalRequest{PrincipalId: bob.ID}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "the token of a deleted user", value(), connect.CodeNotFound)
	left, err := e.store.ListHostTokens(t.Context(), storage.HostTokenFilter{OrgID: e.org.ID, SubjectID: bob.ID, Limit: 10})
	if err != nil || len(left) != 0 {
		t.Errorf("host tokens of the deleted user left in the vault: %d, %v", len(left), err)
	}
}

// TestDeleteUserDeletesHostTokens (docs/security.md A-64): gitpod.v1
// DeleteUser deletes the host tokens the user is the subject of, each
// audited, as PrincipalService/DeletePrincipal does; it left them
// in the vault, the SCM secret of a user who no longer exists kept with
// no one to delete it through the API. Another user's token stays.
func TestDeleteUserDeletesHostTokens(t *testing.T) {
	t.Parallel()
	e, runnerID, _, _ := hostEnv(t)
	c := gitpodv1connect.NewRunnerConfigurationServiceClient(e.srv.Client(), e.srv.URL)
	bob := mustPrincipal(t, e, "bob")
	for _, u := range []struct{ id, pat string }{{bob.ID, e.mintPAT(bob.ID, pat.ScopeFull)}, {e.user.ID, e.secret}} {
		if _, err := c.CreateHostAuthenticationToken(as(u.pat), &gitpodv1.CreateHostAuthenticationTokenRequest{
			RunnerId: runnerID, UserId: u.id, Host: "github.com", Token: "gho_secret_of_" + u.id, RefreshToken: "ghr_refresh"}); err != nil {
			t.Fatal(err)
		}
	}
	us := gitpodv1connect.NewUserServiceClient(e.srv.Client(), e.srv.URL)
	if _, err := us.DeleteUser(as(e.admin), &gitpodv1.DeleteUserRequest{UserId: bob.ID}); err != nil {
		t.Fatal(err)
	}
	left := func(subject string) int {
		rows, err := e.store.ListHostTokens(t.Context(), storage.HostTokenFilter{OrgID: e.org.ID, SubjectID: subject, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		return len(rows)
	}
	if n := left(bob.ID); n != 0 {
		t.Errorf("host tokens of the deleted user left in the vault: %d", n)
	}
	if n := left(e.user.ID); n != 1 {
		t.Errorf("another user's host tokens: %d, want 1", n)
	}
	evs, err := e.store.ListAudit(t.Context(), storage.AuditFilter{OrgID: e.org.ID, Action: hosttoken.ActionDelete, Limit: 10})
	if err != nil || len(evs) != 1 {
		t.Errorf("host_token.delete events = %d, %v; want 1", len(evs), err)
	}
}

// TestRunnerKeyGoesWithItsRunner (docs/security.md A-48): deleting a
// runner principal deletes its registered public key with it, in the
// principal's unit of work and audited (runner_key.delete, the key's
// fingerprint); another runner's key stays.
func TestRunnerKeyGoesWithItsRunner(t *testing.T) {
	t.Parallel()
	e, runnerID, _, _ := hostEnv(t)
	ctx := t.Context()
	other, err := CreatePrincipal(ctx, e.store, testCaller, e.org.ID, storage.PrincipalRunner, "runner-2", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	kc := stsv1connect.NewRunnerKeyServiceClient(e.srv.Client(), e.srv.URL)
	pub, _, _ := box.GenerateKey(rand.Reader)
	otherPub, _, _ := box.GenerateKey(rand.Reader)
	for id, key := range map[string]*[32]byte{runnerID: pub, other.ID: otherPub} {
		if _, err := kc.SetRunnerPublicKey(as(e.admin), &stsv1.SetRunnerPublicKeyRequest{RunnerId: id, PublicKey: key[:]}); err != nil {
			t.Fatal(err)
		}
	}
	ps := stsv1connect.NewPrincipalServiceClient(e.srv.Client(), e.srv.URL)
	if _, err := ps.DeletePrincipal(as(e.admin), &stsv1.DeletePrincipalRequest{PrincipalId: runnerID}); err != nil {
		t.Fatal(err)
	}
	if k, err := e.store.GetRunnerKey(ctx, runnerID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the deleted runner's key is left behind: %+v, %v", k, err)
	}
	if _, err := e.store.GetRunnerKey(ctx, other.ID); err != nil {
		t.Errorf("another runner's key: %v", err)
	}
	evs, err := e.store.ListAudit(ctx, storage.AuditFilter{OrgID: e.org.ID, Action: hosttoken.ActionRunnerKeyDelete, Limit: 10})
	want := "principal:" + runnerID + " key:" + hosttoken.Fingerprint(pub[:])
	if err != nil || len(evs) != 1 || evs[0].Target != want || evs[0].Outcome != "success" {
		t.Errorf("runner_key.delete events = %+v, %v; want one for %s", evs, err, want)
	}
}
