package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/opensts/sts/internal/audit"
	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
	"github.com/opensts/sts/internal/hosttoken"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/seal"
	"github.com/opensts/sts/internal/storage"
)

// hostEnv adds the vault, a runner and a principal of another organization
// to env.
func hostEnv(t *testing.T) (e *env, runnerID, runnerPAT, evilPAT string) {
	t.Helper()
	key := make([]byte, seal.KeySize)
	rand.Read(key)
	kr, err := seal.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	e = newEnv(t, func(h *Handler) {
		h.SetHostTokens(&hosttoken.Service{Store: h.Store.(storage.Store), Envelope: &seal.Envelope{Keyring: kr}})
	})
	e.h.hostTokens.Load().Audit = &audit.Writer{Store: e.store}
	ctx := context.Background()
	runner, err := CreatePrincipal(ctx, e.store, testCaller, e.org.ID, storage.PrincipalRunner, "runner-1", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	evilOrg, _ := CreateOrganization(ctx, e.store, testCaller, "evil", "free", time.Now())
	evil, _ := CreatePrincipal(ctx, e.store, testCaller, evilOrg.ID, storage.PrincipalUser, "mallory", "", time.Now())
	return e, runner.ID, e.mintPAT(runner.ID, pat.ScopeFull), e.mintPAT(evil.ID, pat.ScopeFull, pat.ScopeAdmin)
}

// TestRunnerConfigurationService runs the gitpod.v1.RunnerConfigurationService lifecycle with generated
// clients over Connect, Connect JSON under /api, gRPC and gRPC-Web.
func TestRunnerConfigurationService(t *testing.T) {
	t.Parallel()
	e, runnerID, runnerPAT, evilPAT := hostEnv(t)
	for name, opts := range map[string][]connect.ClientOption{
		"connect": nil, "connect-json-api": {connect.WithProtoJSON()}, "grpc": {connect.WithGRPC()}, "grpc-web": {connect.WithGRPCWeb()},
	} {
		t.Run(name, func(t *testing.T) {
			base := e.srv.URL
			if name == "connect-json-api" {
				base += "/api"
			}
			c := gitpodv1connect.NewRunnerConfigurationServiceClient(e.srv.Client(), base, opts...)
			exp := time.Now().Add(8 * time.Hour).UTC().Truncate(time.Second)
			res, err := c.CreateHostAuthenticationToken(as(e.secret), &gitpodv1.CreateHostAuthenticationTokenRequest{
				RunnerId: runnerID, UserId: e.user.ID, Host: "github.com", Token: "gho_xxxxxxxxxxxx",
				Source:    gitpodv1.HostAuthenticationTokenSource_HOST_AUTHENTICATION_TOKEN_SOURCE_OAUTH,
				ExpiresAt: timestamppb.New(exp), RefreshToken: "ghr_xxxxxxxxxxxx", Scopes: []string{"repo"},
			})
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			tok := res.GetToken()
			if tok.GetSubject().GetId() != e.user.ID || tok.GetSubject().GetPrincipal() != gitpodv1.Principal_PRINCIPAL_USER ||
				tok.GetUserId() != e.user.ID || !tok.GetExpiresAt().AsTime().Equal(exp) || tok.GetRunnerId() != runnerID {
				t.Errorf("Create = %v", tok)
			}
			if _, err := c.GetHostAuthenticationToken(as(runnerPAT), &gitpodv1.GetHostAuthenticationTokenRequest{Id: tok.GetId()}); err != nil {
				t.Fatalf("Get as runner: %v", err)
			}
			_, err = c.GetHostAuthenticationToken(as(evilPAT), &gitpodv1.GetHostAuthenticationTokenRequest{Id: tok.GetId()})
			wantCode(t, "Get from another org", err, connect.CodeNotFound)
			list, err := c.ListHostAuthenticationTokens(as(e.secret), &gitpodv1.ListHostAuthenticationTokensRequest{
				Filter: &gitpodv1.ListHostAuthenticationTokensRequest_Filter{RunnerId: &runnerID}})
			if err != nil || len(list.GetTokens()) == 0 {
				t.Errorf("List as subject = %v, %v", list, err)
			}
			newTok := "gho_yyyy"
			if _, err := c.UpdateHostAuthenticationToken(as(e.secret), &gitpodv1.UpdateHostAuthenticationTokenRequest{Id: tok.GetId(), Token: &newTok}); err != nil {
				t.Fatalf("Update: %v", err)
			}
			_, err = c.CreateHostAuthenticationToken(as(e.secret), &gitpodv1.CreateHostAuthenticationTokenRequest{
				RunnerId: runnerID, UserId: e.user.ID, Host: "github.com", Token: "x", Scopes: make([]string, 101)})
			wantCode(t, "Create with 101 scopes", err, connect.CodeInvalidArgument)
			if name != "connect-json-api" { // a JSON client cannot even encode it
				_, err = c.CreateHostAuthenticationToken(as(e.secret), &gitpodv1.CreateHostAuthenticationTokenRequest{
					RunnerId: runnerID, UserId: e.user.ID, Host: "github.com", Token: "x",
					ExpiresAt: &timestamppb.Timestamp{Seconds: 1, Nanos: 1e9}})
				wantCode(t, "Create with bad nanos", err, connect.CodeInvalidArgument)
			}
			if _, err := c.DeleteHostAuthenticationToken(as(e.admin), &gitpodv1.DeleteHostAuthenticationTokenRequest{Id: tok.GetId()}); err != nil {
				t.Fatalf("Delete as admin: %v", err)
			}
		})
	}
}

// TestRunnerConfigurationCurl speaks plain JSON the way the Gitpod API's curl
// example does, including the Timestamp JSON rules of gitpod.v1.RunnerConfigurationService.
func TestRunnerConfigurationCurl(t *testing.T) {
	t.Parallel()
	e, runnerID, _, _ := hostEnv(t)
	post := func(method, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest("POST", e.srv.URL+"/api/gitpod.v1.RunnerConfigurationService/"+method, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+e.secret)
		res, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		var m map[string]any
		json.Unmarshal(b, &m)
		return res.StatusCode, m
	}
	body := func(exp string) string {
		return `{"runnerId":"` + runnerID + `","userId":"` + e.user.ID + `","host":"github.com","token":"gho_xxxxxxxxxxxx",` +
			`"source":"HOST_AUTHENTICATION_TOKEN_SOURCE_OAUTH","expiresAt":"` + exp + `","refreshToken":"ghr_xxxxxxxxxxxx"}`
	}
	for _, tc := range []struct{ exp, want string }{
		{"2030-12-31T23:59:59Z", "2030-12-31T23:59:59Z"},
		{"2030-12-31T23:59:59+02:00", "2030-12-31T21:59:59Z"},
		{"2030-12-31T23:59:59.123456789Z", "2030-12-31T23:59:59.123456Z"}, // stored to the microsecond
	} {
		code, m := post("CreateHostAuthenticationToken", body(tc.exp))
		tok, _ := m["token"].(map[string]any)
		if code != 200 || tok["expiresAt"] != tc.want {
			t.Errorf("Create(expiresAt %s) = %d %v, want expiresAt %s", tc.exp, code, m, tc.want)
		}
		if bytes.Contains([]byte(strings.ToLower(strings.Join(keys(tok), ","))), []byte("refresh_token")) || tok["token"] != nil {
			t.Errorf("read model holds a secret: %v", tok)
		}
	}
	for _, bad := range []string{"2030-12-31 23:59:59Z", "2030-12-31T23:59:59", "2030-12-31T23:59:59.1234567891Z", "10000-01-01T00:00:00Z"} {
		code, m := post("CreateHostAuthenticationToken", body(bad))
		if code != 400 || m["code"] != "invalid_argument" || !strings.Contains(m["message"].(string), "expiresAt") {
			t.Errorf("Create(expiresAt %q) = %d %v, want invalid_argument naming expiresAt", bad, code, m)
		}
	}
	code, m := post("CreateHostAuthenticationToken", `{"runnerId":"not-a-uuid","host":"github.com","token":"x"}`)
	if code != 400 || !strings.Contains(m["message"].(string), "runnerId") {
		t.Errorf("Create(bad runnerId) = %d %v", code, m)
	}
	code, m = post("CreateHostAuthenticationToken", `{"runnerId":"`+runnerID+`","host":"github.com","token":""}`)
	if code != 400 || !strings.Contains(m["message"].(string), "token") {
		t.Errorf("Create(empty token) = %d %v", code, m)
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
