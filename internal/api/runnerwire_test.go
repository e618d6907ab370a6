package api

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/crypto/nacl/box"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
)

// h2cClient serves the env's handler again over plain-text HTTP/2 (h2c,
// what gRPC clients speak without TLS) and returns its base URL and a
// client that only speaks h2c.
func h2cClient(t *testing.T, e *env) (string, *http.Client) {
	t.Helper()
	srv := httptest.NewUnstartedServer(e.srv.Config.Handler)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	return srv.URL, &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

type runnerClients struct {
	cfg gitpodv1connect.RunnerConfigurationServiceClient
	ri  gitpodv1connect.RunnerInteractionServiceClient
	key stsv1connect.RunnerKeyServiceClient
}

// TestRunnerServicesWire calls every RunnerConfigurationService,
// RunnerInteractionService and RunnerKeyService RPC with the generated
// clients over Connect+proto, Connect+JSON (under /api), Connect GET for
// the read-only RPCs, gRPC over TLS and gRPC over h2c; lists over two
// pages; and opens the sealed value with the runner's private key.
func TestRunnerServicesWire(t *testing.T) {
	t.Parallel()
	e, runnerID, runnerPAT, evilPAT := hostEnv(t)
	pub, priv, err := box.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h2cURL, h2c := h2cClient(t, e)
	mk := func(hc *http.Client, base string, opts ...connect.ClientOption) runnerClients {
		return runnerClients{gitpodv1connect.NewRunnerConfigurationServiceClient(hc, base, opts...),
			gitpodv1connect.NewRunnerInteractionServiceClient(hc, base, opts...),
			stsv1connect.NewRunnerKeyServiceClient(hc, base, opts...)}
	}
	tls := e.srv.Client()
	protocols := map[string]runnerClients{
		"connect-proto":    mk(tls, e.srv.URL),
		"connect-json-api": mk(tls, e.srv.URL+"/api", connect.WithProtoJSON()),
		"connect-get":      mk(tls, e.srv.URL, connect.WithHTTPGet(), connect.WithProtoJSON()),
		"grpc":             mk(tls, e.srv.URL, connect.WithGRPC()),
		"grpc-h2c":         mk(h2c, h2cURL, connect.WithGRPC()),
	}
	userPAT := e.mintPAT(e.user.ID, pat.ScopeTokensRead, pat.ScopeTokensWrite)
	for name, c := range protocols {
		t.Run(name, func(t *testing.T) {
			// An admin registers (and rotates) the runner's key.
			old, _, _ := box.GenerateKey(rand.Reader)
			if _, err := c.key.SetRunnerPublicKey(as(e.admin), &stsv1.SetRunnerPublicKeyRequest{RunnerId: runnerID, PublicKey: old[:]}); err != nil {
				t.Fatalf("SetRunnerPublicKey: %v", err)
			}
			k, err := c.key.SetRunnerPublicKey(as(e.admin), &stsv1.SetRunnerPublicKeyRequest{RunnerId: runnerID, PublicKey: pub[:]})
			if err != nil || string(k.GetKey().GetPublicKey()) != string(pub[:]) || k.GetKey().GetFingerprint() == "" {
				t.Fatalf("SetRunnerPublicKey (rotate) = %v, %v", k, err)
			}
			g, err := c.key.GetRunnerPublicKey(as(e.admin), &stsv1.GetRunnerPublicKeyRequest{RunnerId: runnerID})
			if err != nil || string(g.GetKey().GetPublicKey()) != string(pub[:]) {
				t.Errorf("GetRunnerPublicKey = %v, %v", g, err)
			}
			_, err = c.key.SetRunnerPublicKey(as(e.admin), &stsv1.SetRunnerPublicKeyRequest{RunnerId: runnerID, PublicKey: pub[:31]})
			wantCode(t, "SetRunnerPublicKey(31 bytes)", err, connect.CodeInvalidArgument)
			_, err = c.key.SetRunnerPublicKey(as(runnerPAT), &stsv1.SetRunnerPublicKeyRequest{RunnerId: runnerID, PublicKey: old[:]})
			wantCode(t, "SetRunnerPublicKey as the runner", err, connect.CodePermissionDenied)
			_, err = c.key.SetRunnerPublicKey(as(evilPAT), &stsv1.SetRunnerPublicKeyRequest{RunnerId: runnerID, PublicKey: old[:]})
			wantCode(t, "SetRunnerPublicKey by another org's admin", err, connect.CodeNotFound)

			host := name + ".example.com"
			exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
			var ids []string
			for i, v := range []string{"gho_first_" + name, "gho_second_" + name} {
				res, err := c.cfg.CreateHostAuthenticationToken(as(userPAT), &gitpodv1.CreateHostAuthenticationTokenRequest{
					RunnerId: runnerID, Subject: &gitpodv1.Subject{Id: e.user.ID, Principal: gitpodv1.Principal_PRINCIPAL_USER},
					Host: host, Token: v, RefreshToken: "ghr_" + name, ExpiresAt: timestamppb.New(exp.Add(time.Duration(i) * time.Minute)),
					Source: gitpodv1.HostAuthenticationTokenSource_HOST_AUTHENTICATION_TOKEN_SOURCE_OAUTH, Scopes: []string{"repo"},
				})
				if err != nil {
					t.Fatalf("Create: %v", err)
				}
				ids = append(ids, res.GetToken().GetId())
			}
			got, err := c.cfg.GetHostAuthenticationToken(as(runnerPAT), &gitpodv1.GetHostAuthenticationTokenRequest{Id: ids[0]})
			if err != nil || got.GetToken().GetHost() != host || got.GetToken().GetSubject().GetId() != e.user.ID {
				t.Fatalf("Get = %v, %v", got, err)
			}
			_, err = c.cfg.GetHostAuthenticationToken(as(evilPAT), &gitpodv1.GetHostAuthenticationTokenRequest{Id: ids[0]})
			wantCode(t, "Get from another org", err, connect.CodeNotFound)

			// List one per page until done: at least two pages.
			var seen []string
			pages := 0
			for tok := ""; pages < 50; {
				l, err := c.cfg.ListHostAuthenticationTokens(as(runnerPAT), &gitpodv1.ListHostAuthenticationTokensRequest{
					Pagination: &gitpodv1.PaginationRequest{PageSize: 1, Token: tok},
					Filter:     &gitpodv1.ListHostAuthenticationTokensRequest_Filter{RunnerId: &runnerID, SubjectId: &e.user.ID}})
				if err != nil {
					t.Fatalf("List page %d: %v", pages, err)
				}
				pages++
				for _, x := range l.GetTokens() {
					seen = append(seen, x.GetId())
				}
				if tok = l.GetPagination().GetNextToken(); tok == "" {
					break
				}
			}
			if pages < 2 || !containsAll(seen, ids) {
				t.Errorf("List: %d pages, ids %v; want >= 2 pages holding %v", pages, seen, ids)
			}

			newExp := timestamppb.New(exp.Add(2 * time.Hour))
			if _, err := c.cfg.UpdateHostAuthenticationToken(as(userPAT), &gitpodv1.UpdateHostAuthenticationTokenRequest{
				Id: ids[0], ExpiresAt: newExp, Scopes: []string{"repo", "gist"}}); err != nil {
				t.Fatalf("Update: %v", err)
			}
			ext := "octocat-" + name
			if _, err := c.cfg.UpdateHostAuthenticationTokenMetadata(as(runnerPAT), &gitpodv1.UpdateHostAuthenticationTokenMetadataRequest{
				RunnerId: runnerID, Id: ids[0], ExternalUserId: &ext}); err != nil {
				t.Fatalf("UpdateMetadata: %v", err)
			}
			_, err = c.cfg.UpdateHostAuthenticationTokenMetadata(as(e.secret), &gitpodv1.UpdateHostAuthenticationTokenMetadataRequest{
				RunnerId: runnerID, Id: ids[0], ExternalUserId: &ext})
			wantCode(t, "UpdateMetadata as the subject", err, connect.CodeNotFound)

			// The runner reads the value: ids[0] now expires last.
			req := &gitpodv1.GetHostAuthenticationTokenValueRequest{RunnerId: runnerID, PrincipalId: e.user.ID, Host: host,
				TargetUrl: new("https://" + host + "/org/repo")}
			v, err := c.ri.GetHostAuthenticationTokenValue(as(runnerPAT), req)
			if err != nil {
				t.Fatalf("GetHostAuthenticationTokenValue: %v", err)
			}
			plain, ok := box.OpenAnonymous(nil, v.GetValue(), pub, priv)
			refresh, rok := box.OpenAnonymous(nil, v.GetRefreshToken(), pub, priv)
			if !ok || string(plain) != "gho_first_"+name || !rok || string(refresh) != "ghr_"+name {
				t.Errorf("opened %q/%v, refresh %q/%v", plain, ok, refresh, rok)
			}
			if v.GetTokenId() != ids[0] || v.GetExternalUserId() != ext || !v.GetExpiresAt().AsTime().Equal(newExp.AsTime()) ||
				v.GetSource() != gitpodv1.HostAuthenticationTokenSource_HOST_AUTHENTICATION_TOKEN_SOURCE_OAUTH {
				t.Errorf("GetHostAuthenticationTokenValue = %v", v)
			}
			if _, ok := box.OpenAnonymous(nil, v.GetValue(), old, priv); ok {
				t.Error("opened with the wrong key pair")
			}
			for who, tok := range map[string]string{"the subject user": e.secret, "an admin": e.admin, "another org": evilPAT} {
				_, err := c.ri.GetHostAuthenticationTokenValue(as(tok), req)
				wantCode(t, "GetHostAuthenticationTokenValue as "+who, err, connect.CodePermissionDenied)
			}

			for _, id := range ids {
				if _, err := c.cfg.DeleteHostAuthenticationToken(as(userPAT), &gitpodv1.DeleteHostAuthenticationTokenRequest{Id: id}); err != nil {
					t.Fatalf("Delete: %v", err)
				}
			}
			_, err = c.ri.GetHostAuthenticationTokenValue(as(runnerPAT), req)
			wantCode(t, "GetHostAuthenticationTokenValue after delete", err, connect.CodeNotFound)
		})
	}
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || h == w
		}
		if !found {
			return false
		}
	}
	return true
}

// TestRunnerValueAsOtherRunner: another runner of the organization (with
// its own key) gets nothing for a token that is not its own, and a runner
// without a key gets failed_precondition saying so.
func TestRunnerValueAsOtherRunner(t *testing.T) {
	t.Parallel()
	e, runnerID, runnerPAT, _ := hostEnv(t)
	cfg := gitpodv1connect.NewRunnerConfigurationServiceClient(e.srv.Client(), e.srv.URL)
	ri := gitpodv1connect.NewRunnerInteractionServiceClient(e.srv.Client(), e.srv.URL, connect.WithGRPC())
	if _, err := cfg.CreateHostAuthenticationToken(as(e.secret), &gitpodv1.CreateHostAuthenticationTokenRequest{
		RunnerId: runnerID, UserId: e.user.ID, Host: "github.com", Token: "gho_mine"}); err != nil {
		t.Fatal(err)
	}
	req := &gitpodv1.GetHostAuthenticationTokenValueRequest{RunnerId: runnerID, PrincipalId: e.user.ID, Host: "github.com"}
	_, err := ri.GetHostAuthenticationTokenValue(as(runnerPAT), req)
	wantCode(t, "no key registered", err, connect.CodeFailedPrecondition)
	if err == nil || !strings.Contains(err.Error(), "public key") {
		t.Errorf("error does not name the missing key: %v", err)
	}
	other, err := CreatePrincipal(t.Context(), e.store, testCaller, e.org.ID, storage.PrincipalRunner, "runner-2", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	otherPAT := e.mintPAT(other.ID, pat.ScopeFull)
	keys := stsv1connect.NewRunnerKeyServiceClient(e.srv.Client(), e.srv.URL)
	for _, r := range []string{runnerID, other.ID} {
		pub, _, _ := box.GenerateKey(rand.Reader)
		if _, err := keys.SetRunnerPublicKey(as(e.admin), &stsv1.SetRunnerPublicKeyRequest{RunnerId: r, PublicKey: pub[:]}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = ri.GetHostAuthenticationTokenValue(as(otherPAT), req)
	wantCode(t, "another runner naming the owner", err, connect.CodePermissionDenied)
	req.RunnerId = other.ID
	_, err = ri.GetHostAuthenticationTokenValue(as(otherPAT), req)
	wantCode(t, "another runner as itself", err, connect.CodeNotFound)
	// An access token of the runner (ExchangeToken) works like its PAT.
	pub, priv, _ := box.GenerateKey(rand.Reader)
	if _, err := keys.SetRunnerPublicKey(as(e.admin), &stsv1.SetRunnerPublicKeyRequest{RunnerId: runnerID, PublicKey: pub[:]}); err != nil {
		t.Fatal(err)
	}
	_, xsecret, err := e.pats.CreateExchangeToken(t.Context(), pat.Caller{Actor: "test"}, runnerID, 0, pat.ExchangeSource{})
	if err != nil {
		t.Fatal(err)
	}
	xr, err := gitpodv1connect.NewIdentityServiceClient(e.srv.Client(), e.srv.URL).ExchangeToken(t.Context(),
		&gitpodv1.ExchangeTokenRequest{ExchangeToken: xsecret})
	if err != nil {
		t.Fatal(err)
	}
	req.RunnerId = runnerID
	v, err := ri.GetHostAuthenticationTokenValue(as(xr.GetAccessToken()), req)
	if err != nil {
		t.Fatalf("as the runner's access token: %v", err)
	}
	if plain, ok := box.OpenAnonymous(nil, v.GetValue(), pub, priv); !ok || string(plain) != "gho_mine" {
		t.Errorf("opened %q, %v", plain, ok)
	}
	// A PAT without tokens:read cannot read even sealed values.
	_, err = ri.GetHostAuthenticationTokenValue(as(e.mintPAT(runnerID, pat.ScopeIdentityRead)), &gitpodv1.GetHostAuthenticationTokenValueRequest{
		RunnerId: runnerID, PrincipalId: e.user.ID, Host: "github.com"})
	wantCode(t, "without tokens:read", err, connect.CodePermissionDenied)
}

// TestConnectGETHostToken: the read-only RPCs answer a Connect GET
// (idempotency NO_SIDE_EFFECTS), the others do not.
func TestConnectGETHostToken(t *testing.T) {
	t.Parallel()
	e, runnerID, _, _ := hostEnv(t)
	cfg := gitpodv1connect.NewRunnerConfigurationServiceClient(e.srv.Client(), e.srv.URL)
	res, err := cfg.CreateHostAuthenticationToken(as(e.secret), &gitpodv1.CreateHostAuthenticationTokenRequest{
		RunnerId: runnerID, UserId: e.user.ID, Host: "github.com", Token: "gho_get"})
	if err != nil {
		t.Fatal(err)
	}
	get := func(method, msg string) int {
		q := url.Values{"connect": {"v1"}, "encoding": {"json"}, "message": {msg}}
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/api/gitpod.v1.RunnerConfigurationService/"+method+"?"+q.Encode(), nil)
		req.Header.Set("Authorization", "Bearer "+e.secret)
		r, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r.StatusCode
	}
	if code := get("GetHostAuthenticationToken", `{"id":"`+res.GetToken().GetId()+`"}`); code != 200 {
		t.Errorf("GET GetHostAuthenticationToken = %d", code)
	}
	if code := get("ListHostAuthenticationTokens", `{}`); code != 200 {
		t.Errorf("GET ListHostAuthenticationTokens = %d", code)
	}
	if code := get("DeleteHostAuthenticationToken", `{"id":"`+res.GetToken().GetId()+`"}`); code == 200 {
		t.Errorf("GET DeleteHostAuthenticationToken = %d, want refused", code)
	}
}

// TestRunnerInteractionGRPCGoH2C: grpc-go itself, over plain-text HTTP/2,
// reads a sealed value as the runner and is refused as the user.
func TestRunnerInteractionGRPCGoH2C(t *testing.T) {
	t.Parallel()
	e, runnerID, runnerPAT, _ := hostEnv(t)
	pub, priv, _ := box.GenerateKey(rand.Reader)
	if _, err := stsv1connect.NewRunnerKeyServiceClient(e.srv.Client(), e.srv.URL).SetRunnerPublicKey(as(e.admin),
		&stsv1.SetRunnerPublicKeyRequest{RunnerId: runnerID, PublicKey: pub[:]}); err != nil {
		t.Fatal(err)
	}
	base, _ := h2cClient(t, e)
	conn, err := grpc.NewClient(strings.TrimPrefix(base, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	auth := func(tok string) context.Context {
		return metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+tok)
	}
	cr := &gitpodv1.CreateHostAuthenticationTokenResponse{}
	err = conn.Invoke(auth(e.secret), "/gitpod.v1.RunnerConfigurationService/CreateHostAuthenticationToken",
		&gitpodv1.CreateHostAuthenticationTokenRequest{RunnerId: runnerID, UserId: e.user.ID, Host: "github.com", Token: "gho_grpc_go"}, cr)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	req := &gitpodv1.GetHostAuthenticationTokenValueRequest{RunnerId: runnerID, PrincipalId: e.user.ID, Host: "github.com"}
	res := &gitpodv1.GetHostAuthenticationTokenValueResponse{}
	if err := conn.Invoke(auth(runnerPAT), "/gitpod.v1.RunnerInteractionService/GetHostAuthenticationTokenValue", req, res); err != nil {
		t.Fatalf("GetHostAuthenticationTokenValue: %v", err)
	}
	if plain, ok := box.OpenAnonymous(nil, res.GetValue(), pub, priv); !ok || string(plain) != "gho_grpc_go" || res.GetTokenId() != cr.GetToken().GetId() {
		t.Errorf("opened %q, %v; response %v", plain, ok, res)
	}
	err = conn.Invoke(auth(e.secret), "/gitpod.v1.RunnerInteractionService/GetHostAuthenticationTokenValue", req, res)
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("as the user: %v, want PermissionDenied", err)
	}
}

// TestCreateRunnerWithKey: PrincipalService.CreatePrincipal registers a
// runner's public key with the runner; a bad key or a key for another
// kind is invalid_argument and creates nothing.
func TestCreateRunnerWithKey(t *testing.T) {
	t.Parallel()
	e, _, _, _ := hostEnv(t)
	pc := stsv1connect.NewPrincipalServiceClient(e.srv.Client(), e.srv.URL, connect.WithGRPC())
	keys := stsv1connect.NewRunnerKeyServiceClient(e.srv.Client(), e.srv.URL)
	pub, _, _ := box.GenerateKey(rand.Reader)
	before, _ := e.store.ListPrincipals(t.Context(), e.org.ID)
	for name, req := range map[string]*stsv1.CreatePrincipalRequest{
		"short key":    {OrganizationId: e.org.ID, Kind: stsv1.PrincipalKind_PRINCIPAL_KIND_RUNNER, Name: "r-bad", RunnerPublicKey: pub[:16]},
		"zero key":     {OrganizationId: e.org.ID, Kind: stsv1.PrincipalKind_PRINCIPAL_KIND_RUNNER, Name: "r-zero", RunnerPublicKey: make([]byte, 32)},
		"key for user": {OrganizationId: e.org.ID, Kind: stsv1.PrincipalKind_PRINCIPAL_KIND_USER, Name: "u-key", RunnerPublicKey: pub[:]},
	} {
		_, err := pc.CreatePrincipal(as(e.admin), req)
		wantCode(t, name, err, connect.CodeInvalidArgument)
	}
	if after, _ := e.store.ListPrincipals(t.Context(), e.org.ID); len(after) != len(before) {
		t.Errorf("refused creations stored %d principals", len(after)-len(before))
	}
	res, err := pc.CreatePrincipal(as(e.admin), &stsv1.CreatePrincipalRequest{OrganizationId: e.org.ID,
		Kind: stsv1.PrincipalKind_PRINCIPAL_KIND_RUNNER, Name: "r-good", RunnerPublicKey: pub[:]})
	if err != nil {
		t.Fatal(err)
	}
	k, err := keys.GetRunnerPublicKey(as(e.admin), &stsv1.GetRunnerPublicKeyRequest{RunnerId: res.GetPrincipal().GetId()})
	if err != nil || string(k.GetKey().GetPublicKey()) != string(pub[:]) {
		t.Errorf("GetRunnerPublicKey = %v, %v", k, err)
	}
}

// TestGETWhereGitpodAllowsIt: Gitpod's descriptors mark
// GetHostAuthenticationTokenValue, GetPreference, ListPreferences and
// GetDotfilesConfiguration side-effect free (idempotency_level
// NO_SIDE_EFFECTS), so Gitpod's generated clients built with HTTP GET
// send them as GET. The clients here declare the idempotency themselves,
// as Gitpod's code does, so the server is judged on its own: each call
// goes out as GET and gets the answer a POST gets (the value, or
// unimplemented for what sts does not store), not 405.
func TestGETWhereGitpodAllowsIt(t *testing.T) {
	t.Parallel()
	e, runnerID, runnerPAT, _ := hostEnv(t)
	rec := &methodRecorder{next: e.srv.Client().Transport, seen: map[string]string{}}
	hc := &http.Client{Transport: rec}
	get := []connect.ClientOption{connect.WithHTTPGet(), connect.WithIdempotency(connect.IdempotencyNoSideEffects)}
	cfg := gitpodv1connect.NewRunnerConfigurationServiceClient(e.srv.Client(), e.srv.URL)
	if _, err := cfg.CreateHostAuthenticationToken(as(e.secret), &gitpodv1.CreateHostAuthenticationTokenRequest{
		RunnerId: runnerID, UserId: e.user.ID, Host: "github.com", Token: "gho_by_get"}); err != nil {
		t.Fatal(err)
	}
	pub, priv, _ := box.GenerateKey(rand.Reader)
	keys := stsv1connect.NewRunnerKeyServiceClient(e.srv.Client(), e.srv.URL)
	if _, err := keys.SetRunnerPublicKey(as(e.admin), &stsv1.SetRunnerPublicKeyRequest{RunnerId: runnerID, PublicKey: pub[:]}); err != nil {
		t.Fatal(err)
	}
	value := connect.NewClient[gitpodv1.GetHostAuthenticationTokenValueRequest, gitpodv1.GetHostAuthenticationTokenValueResponse](
		hc, e.srv.URL+gitpodv1connect.RunnerInteractionServiceGetHostAuthenticationTokenValueProcedure, get...)
	res, err := value.CallUnary(as(runnerPAT), connect.NewRequest(&gitpodv1.GetHostAuthenticationTokenValueRequest{
		RunnerId: runnerID, PrincipalId: e.user.ID, Host: "github.com"}))
	if err != nil {
		t.Fatalf("GetHostAuthenticationTokenValue by GET: %v", err)
	}
	if v, ok := box.OpenAnonymous(nil, res.Msg.GetValue(), pub, priv); !ok || string(v) != "gho_by_get" {
		t.Errorf("GetHostAuthenticationTokenValue by GET opened to %q, %v", v, ok)
	}
	unstored := map[string]func() error{
		gitpodv1connect.UserServiceGetPreferenceProcedure: func() error {
			_, err := connect.NewClient[gitpodv1.GetPreferenceRequest, gitpodv1.GetPreferenceResponse](hc,
				e.srv.URL+gitpodv1connect.UserServiceGetPreferenceProcedure, get...).CallUnary(as(e.secret), connect.NewRequest(&gitpodv1.GetPreferenceRequest{}))
			return err
		},
		gitpodv1connect.UserServiceListPreferencesProcedure: func() error {
			_, err := connect.NewClient[gitpodv1.ListPreferencesRequest, gitpodv1.ListPreferencesResponse](hc,
				e.srv.URL+gitpodv1connect.UserServiceListPreferencesProcedure, get...).CallUnary(as(e.secret), connect.NewRequest(&gitpodv1.ListPreferencesRequest{}))
			return err
		},
		gitpodv1connect.UserServiceGetDotfilesConfigurationProcedure: func() error {
			_, err := connect.NewClient[gitpodv1.GetDotfilesConfigurationRequest, gitpodv1.GetDotfilesConfigurationResponse](hc,
				e.srv.URL+gitpodv1connect.UserServiceGetDotfilesConfigurationProcedure, get...).CallUnary(as(e.secret), connect.NewRequest(&gitpodv1.GetDotfilesConfigurationRequest{}))
			return err
		},
	}
	for proc, call := range unstored {
		wantCode(t, proc+" by GET", call(), connect.CodeUnimplemented)
	}
	for _, proc := range []string{gitpodv1connect.RunnerInteractionServiceGetHostAuthenticationTokenValueProcedure,
		gitpodv1connect.UserServiceGetPreferenceProcedure, gitpodv1connect.UserServiceListPreferencesProcedure,
		gitpodv1connect.UserServiceGetDotfilesConfigurationProcedure} {
		if m := rec.seen[proc]; m != http.MethodGet {
			t.Errorf("%s went out as %q, want GET", proc, m)
		}
	}
}

// TestCreateRunnerWithKeyOnlyInOwnOrganization (docs/security.md A-77):
// registering a runner's key is for the runner organization's own
// administrators (sameOrgAdmin: SetRunnerPublicKey by an instance
// administrator of another organization reads the runner as missing), so
// CreatePrincipal's runner_public_key follows the same rule. An instance
// administrator of another organization may still create the runner, but
// not with a key of its choosing: that would have the vault seal to it
// the values acme's people store for the runner. The refusal stores
// neither the runner nor a key.
func TestCreateRunnerWithKeyOnlyInOwnOrganization(t *testing.T) {
	t.Parallel()
	e, _, _, _ := hostEnv(t)
	ctx := t.Context()
	pc := stsv1connect.NewPrincipalServiceClient(e.srv.Client(), e.srv.URL)
	pub, _, _ := box.GenerateKey(rand.Reader)
	rootOrg, err := CreateOrganization(ctx, e.store, testCaller, "root", "free", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	root, err := CreatePrincipal(ctx, e.store, testCaller, rootOrg.ID, storage.PrincipalUser, "root", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.UpdatePrincipal(ctx, root.ID, func(p storage.Principal) (storage.Principal, error) {
		p.InstanceAdmin = true
		return p, nil
	}); err != nil {
		t.Fatal(err)
	}
	rootPAT := e.mintPAT(root.ID, pat.ScopeFull, pat.ScopeAdmin)
	before, _ := e.store.ListPrincipals(ctx, e.org.ID)
	_, err = pc.CreatePrincipal(as(rootPAT), &stsv1.CreatePrincipalRequest{OrganizationId: e.org.ID,
		Kind: stsv1.PrincipalKind_PRINCIPAL_KIND_RUNNER, Name: "r-root", RunnerPublicKey: pub[:]})
	wantCode(t, "another organization's instance admin creating an acme runner with its key", err, connect.CodePermissionDenied)
	after, _ := e.store.ListPrincipals(ctx, e.org.ID)
	if len(after) != len(before) {
		t.Errorf("the refused creation stored %d principals", len(after)-len(before))
	}
	for _, p := range after {
		if _, err := e.store.(storage.RunnerKeyStore).GetRunnerKey(ctx, p.ID); err == nil && p.Name == "r-root" {
			t.Errorf("runner %s has the other organization's key", p.ID)
		}
	}
	// Without a key the instance role creates the runner; its key is then
	// for acme's administrators to register.
	res, err := pc.CreatePrincipal(as(rootPAT), &stsv1.CreatePrincipalRequest{OrganizationId: e.org.ID,
		Kind: stsv1.PrincipalKind_PRINCIPAL_KIND_RUNNER, Name: "r-root"})
	if err != nil {
		t.Fatalf("instance admin CreatePrincipal without a key: %v", err)
	}
	keys := stsv1connect.NewRunnerKeyServiceClient(e.srv.Client(), e.srv.URL)
	if _, err := keys.SetRunnerPublicKey(as(e.admin), &stsv1.SetRunnerPublicKeyRequest{RunnerId: res.GetPrincipal().GetId(), PublicKey: pub[:]}); err != nil {
		t.Errorf("acme admin SetRunnerPublicKey: %v", err)
	}
}
