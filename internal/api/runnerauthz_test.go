package api

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
)

// TestHostTokenNoPlaintextRead: a PAT with tokens:read (or full access)
// must not read a host token's plaintext through
// RunnerConfigurationService; values leave only sealed to the runner.
func TestHostTokenNoPlaintextRead(t *testing.T) {
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
}

func mustPrincipal(t *testing.T, e *env, name string) storage.Principal {
	t.Helper()
	p, err := CreatePrincipal(t.Context(), e.store, testCaller, e.org.ID, storage.PrincipalUser, name, "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return p
}
