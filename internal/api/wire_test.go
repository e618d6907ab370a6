package api

import (
	"context"
	"encoding/json"
	"github.com/opensts/sts/internal/ststest/mutate"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/pat"
)

// TestGRPCGo calls every IdentityService and UserService RPC with
// grpc-go itself (HTTP/2, TLS), the reference gRPC implementation.
func TestGRPCGo(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	conn := grpcConn(t, e.srv)
	ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+e.secret)
	call := func(ctx context.Context, method string, req, res any) error {
		return conn.Invoke(ctx, method, req, res)
	}
	id := &gitpodv1.GetAuthenticatedIdentityResponse{}
	if err := call(ctx, "/gitpod.v1.IdentityService/GetAuthenticatedIdentity", &gitpodv1.GetAuthenticatedIdentityRequest{}, id); err != nil || id.GetSubject().GetId() != e.user.ID {
		t.Fatalf("GetAuthenticatedIdentity = %v, %v", id, err)
	}
	err := call(t.Context(), "/gitpod.v1.IdentityService/GetAuthenticatedIdentity", &gitpodv1.GetAuthenticatedIdentityRequest{}, id)
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("no credential: %v", err)
	}
	tok := &gitpodv1.GetIDTokenResponse{}
	if err := call(ctx, "/gitpod.v1.IdentityService/GetIDToken", &gitpodv1.GetIDTokenRequest{Audience: []string{"a"}}, tok); err != nil || tok.GetToken() == "" {
		t.Fatalf("GetIDToken = %v, %v", tok, err)
	}
	_, xsecret, err := e.pats.CreateExchangeToken(t.Context(), pat.Caller{Actor: "test"}, e.user.ID, 0, pat.ExchangeSource{})
	if err != nil {
		t.Fatal(err)
	}
	xr := &gitpodv1.ExchangeTokenResponse{}
	if err := call(t.Context(), "/gitpod.v1.IdentityService/ExchangeToken", &gitpodv1.ExchangeTokenRequest{ExchangeToken: xsecret}, xr); err != nil || xr.GetAccessToken() == "" {
		t.Fatalf("ExchangeToken = %v, %v", xr, err)
	}
	u := &gitpodv1.GetAuthenticatedUserResponse{}
	if err := call(ctx, "/gitpod.v1.UserService/GetAuthenticatedUser", &gitpodv1.GetAuthenticatedUserRequest{}, u); err != nil || u.GetUser().GetName() != "ada" {
		t.Fatalf("GetAuthenticatedUser = %v, %v", u, err)
	}
	cr := &gitpodv1.CreatePersonalAccessTokenResponse{}
	if err := call(ctx, "/gitpod.v1.UserService/CreatePersonalAccessToken", &gitpodv1.CreatePersonalAccessTokenRequest{ValidFor: durationpb.New(48 * time.Hour)}, cr); err != nil {
		t.Fatalf("Create: %v", err)
	}
	pid := cr.GetPersonalAccessToken().GetId()
	steps := []struct {
		method   string
		req, res any
	}{
		{"ListPersonalAccessTokens", &gitpodv1.ListPersonalAccessTokensRequest{}, &gitpodv1.ListPersonalAccessTokensResponse{}},
		{"GetPersonalAccessToken", &gitpodv1.GetPersonalAccessTokenRequest{PersonalAccessTokenId: pid}, &gitpodv1.GetPersonalAccessTokenResponse{}},
		{"UpdatePersonalAccessToken", &gitpodv1.UpdatePersonalAccessTokenRequest{PersonalAccessTokenId: pid, Description: new("x")}, &gitpodv1.UpdatePersonalAccessTokenResponse{}},
		{"RegeneratePersonalAccessToken", &gitpodv1.RegeneratePersonalAccessTokenRequest{PersonalAccessTokenId: pid, ValidFor: durationpb.New(48 * time.Hour)}, &gitpodv1.RegeneratePersonalAccessTokenResponse{}},
		{"DeletePersonalAccessToken", &gitpodv1.DeletePersonalAccessTokenRequest{PersonalAccessTokenId: pid}, &gitpodv1.DeletePersonalAccessTokenResponse{}},
	}
	for _, s := range steps {
		if err := call(ctx, "/gitpod.v1.UserService/"+s.method, s.req, s.res); err != nil {
			t.Errorf("%s: %v", s.method, err)
		}
	}
	err = call(ctx, "/gitpod.v1.UserService/GetPersonalAccessToken", &gitpodv1.GetPersonalAccessTokenRequest{PersonalAccessTokenId: pid}, &gitpodv1.GetPersonalAccessTokenResponse{})
	if status.Code(err) != codes.NotFound {
		t.Errorf("get after delete: %v", err)
	}
}

// post sends a request shaped like the Gitpod API's curl examples.
func post(t *testing.T, e *env, path, token, body string) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: body %q is not JSON", path, b)
	}
	return res.StatusCode, res.Header, m
}

// TestCurlJSON is the Gitpod API's example verbatim: POST JSON with a bearer token, at
// /api/… (the SDK base URL) and at /…, camelCase fields and enum names.
func TestCurlJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for _, base := range []string{"/api", ""} {
		code, h, m := post(t, e, base+"/gitpod.v1.IdentityService/GetAuthenticatedIdentity", e.secret, `{}`)
		sub, _ := m["subject"].(map[string]any)
		if code != 200 || m["organizationId"] != e.org.ID || m["organizationTier"] != "enterprise" ||
			sub["id"] != e.user.ID || sub["principal"] != "PRINCIPAL_USER" || h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s GetAuthenticatedIdentity = %d %v %v", base, code, m, h)
		}
		code, h, m = post(t, e, base+"/gitpod.v1.IdentityService/GetIDToken", e.secret,
			`{"audience":["https://api.gitpod.io","https://ws.gitpod.io"],"version":"ID_TOKEN_VERSION_V2"}`)
		if code != 200 || m["token"] == nil || h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s GetIDToken = %d %v", base, code, m)
		}
		_, x, _ := e.pats.CreateExchangeToken(t.Context(), pat.Caller{Actor: "test"}, e.user.ID, 0, pat.ExchangeSource{})
		code, h, m = post(t, e, base+"/gitpod.v1.IdentityService/ExchangeToken", "", `{"exchangeToken":"`+x+`"}`)
		if code != 200 || m["accessToken"] == nil || h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s ExchangeToken = %d %v", base, code, m)
		}
		code, _, m = post(t, e, base+"/gitpod.v1.IdentityService/ExchangeToken", "", `{"exchangeToken":""}`)
		if code != 400 || m["code"] != "invalid_argument" || m["message"] != "exchangeToken is required" {
			t.Errorf("%s empty ExchangeToken = %d %v", base, code, m)
		}
	}
}

// TestUnauthenticatedSameBody covers docs/security.md T-65–T-68 at the wire:
// truncated, bad-checksum, unknown, wrong-type, expired-JWT-shaped and
// deleted credentials all get the same 401 body.
func TestUnauthenticatedSameBody(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	deleted := e.mintPAT(e.user.ID, pat.ScopeFull)
	a, _ := e.pats.Authenticate(t.Context(), deleted)
	if err := e.pats.Delete(t.Context(), pat.Caller{}, "", a.TokenID); err != nil {
		t.Fatal(err)
	}
	creds := map[string]string{
		"truncated":      e.secret[:len(e.secret)-1],
		"bad checksum":   mutate.LastChar(e.secret),
		"unknown":        pat.PrefixPAT.Generate(),
		"exchange token": pat.PrefixExchangeToken.Generate(),
		"garbage jwt":    "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
		"deleted":        deleted,
	}
	for name, c := range creds {
		code, h, m := post(t, e, "/api/gitpod.v1.IdentityService/GetAuthenticatedIdentity", c, `{}`)
		if code != 401 || m["code"] != "unauthenticated" || m["message"] != "invalid token" || !strings.Contains(h.Get("WWW-Authenticate"), "invalid_token") {
			t.Errorf("%s: %d %v %v", name, code, m, h.Get("WWW-Authenticate"))
		}
	}
	if code, _, m := post(t, e, "/api/gitpod.v1.IdentityService/GetAuthenticatedIdentity", "", `{}`); code != 401 || m["code"] != "unauthenticated" {
		t.Errorf("no credential: %d %v", code, m)
	}
}
