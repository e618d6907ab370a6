package api

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/storage"
)

// TestUnknownEnumRefusedInEveryProtocol: a request enum the server does
// not know is invalid_argument in every protocol. The binary protocols
// carry a number, which the procedures refused; Connect's JSON codec read
// a name it did not know (a misspelling, a value of a newer schema) as
// the field unset, so GetIDToken with "ID_TOKEN_VERSION_V3" minted a V1
// token, a different sub than the one asked for, and CreateClient with a
// misspelled authMethod created a client with the default method. Unknown
// fields are still ignored (docs/api.md). Generated gitpod.v1 clients over
// Connect+proto, Connect+JSON and gRPC send an unknown number; Connect+JSON
// bodies send unknown names, at / and under /api.
func TestUnknownEnumRefusedInEveryProtocol(t *testing.T) {
	t.Parallel()
	e, runnerID, _, _ := hostEnv(t)
	for name, c := range e.gitpodProtocols(t) {
		t.Run(name, func(t *testing.T) {
			_, err := c.identity.GetIDToken(as(e.secret), &gitpodv1.GetIDTokenRequest{Audience: []string{"a"}, Version: 99})
			wantCode(t, "GetIDToken(version 99)", err, connect.CodeInvalidArgument)
		})
	}
	sa, err := CreatePrincipal(t.Context(), e.store, testCaller, e.org.ID, storage.PrincipalServiceAccount, "ci", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cl := fmt.Sprintf(`"organizationId":%q,"principalId":%q,"grantTypes":["client_credentials"]`, e.org.ID, sa.ID)
	ht := fmt.Sprintf(`"runnerId":%q,"userId":%q,"host":"github.com","token":"gho_x"`, runnerID, e.user.ID)
	for _, tc := range []struct {
		path, token, known, unknown string
	}{
		{"/gitpod.v1.IdentityService/GetIDToken", e.secret,
			`{"audience":["a"],"version":"ID_TOKEN_VERSION_V2"}`, `{"audience":["a"],"version":"ID_TOKEN_VERSION_V3"}`},
		{"/gitpod.v1.RunnerConfigurationService/CreateHostAuthenticationToken", e.secret,
			`{` + ht + `,"source":"HOST_AUTHENTICATION_TOKEN_SOURCE_PAT"}`, `{` + ht + `,"source":"HOST_AUTHENTICATION_TOKEN_SOURCE_PATT"}`},
		{"/gitpod.v1.RunnerConfigurationService/CreateHostAuthenticationToken", e.secret,
			`{` + strings.Replace(ht, "github.com", "gitlab.com", 1) + `,"subject":{"id":"` + e.user.ID + `","principal":"PRINCIPAL_USER"}}`,
			`{` + strings.Replace(ht, "github.com", "gitlab.com", 1) + `,"subject":{"id":"` + e.user.ID + `","principal":"PRINCIPAL_USERS"}}`},
		{"/sts.v1.ClientService/CreateClient", e.admin,
			`{` + cl + `,"name":"ok","authMethod":"CLIENT_AUTH_METHOD_CLIENT_SECRET_POST"}`,
			`{` + cl + `,"name":"typo","authMethod":"CLIENT_AUTH_METHOD_CLIENT_SECRET_POSTT"}`},
		{"/sts.v1.PrincipalService/CreatePrincipal", e.admin,
			`{"organizationId":"` + e.org.ID + `","kind":"PRINCIPAL_KIND_SERVICE_ACCOUNT","name":"ok"}`,
			`{"organizationId":"` + e.org.ID + `","kind":"PRINCIPAL_KIND_SERVICE_ACOUNT","name":"typo"}`},
	} {
		for _, prefix := range []string{"", APIPrefix} {
			code, _, body := post(t, e, prefix+tc.path, tc.token, tc.unknown)
			if msg, _ := body["message"].(string); code != http.StatusBadRequest || body["code"] != "invalid_argument" || !strings.Contains(msg, "unknown") {
				t.Errorf("%s%s %s: %d %v, want 400 invalid_argument", prefix, tc.path, tc.unknown, code, body)
			}
		}
		// The same request with the value spelled right, and with a field
		// the server does not know, succeeds.
		known := strings.Replace(tc.known, "{", `{"someNewerField":"x",`, 1)
		if code, _, body := post(t, e, tc.path, tc.token, known); code != http.StatusOK {
			t.Errorf("%s %s: %d %v, want 200", tc.path, known, code, body)
		}
	}
}

// TestEnumNullIsUnset: JSON null for an enum field is the field unset, as
// the proto3 JSON mapping has it for every field and as protojson, the
// codec of Gitpod's own connect-go server, reads it. checkEnumNames took
// null for a name the enum lacks and refused the request ("unknown
// gitpod.v1.IDTokenVersion value \"\""), so a client that writes unset
// fields as null (JSON.stringify of an object with null members, an SDK
// given None) got invalid_argument where Gitpod answers. protojson is the
// judge of the codec; the calls go over HTTP, at / and under /api. A name
// the enum lacks is still refused.
func TestEnumNullIsUnset(t *testing.T) {
	t.Parallel()
	e, runnerID, _, _ := hostEnv(t)
	for _, tc := range []struct {
		msg  proto.Message
		body string
	}{
		{&gitpodv1.GetIDTokenRequest{}, `{"audience":["a"],"version":null}`},
		{&gitpodv1.GetIDTokenRequest{}, `{"audience":null,"version" : null }`},
		{&gitpodv1.CreateHostAuthenticationTokenRequest{}, `{"host":"h","source":null,"subject":{"id":"s","principal":null}}`},
		{&gitpodv1.CreateHostAuthenticationTokenRequest{}, `{"source":null,"subject":null,"expiresAt":null}`},
	} {
		want := tc.msg.ProtoReflect().New().Interface()
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal([]byte(tc.body), want); err != nil {
			t.Fatalf("protojson refuses %s: %v", tc.body, err)
		}
		for _, c := range []fieldJSON{{name: "json"}, {name: "json", named: true}} {
			got := tc.msg.ProtoReflect().New().Interface()
			if err := c.Unmarshal([]byte(tc.body), got); err != nil || !proto.Equal(got, want) {
				t.Errorf("fieldJSON%+v %s = %v, %v; protojson reads %v", c, tc.body, got, err, want)
			}
		}
	}

	code, _, body := post(t, e, "/gitpod.v1.IdentityService/GetIDToken", e.secret, `{"audience":["a"],"version":null}`)
	if tok, _ := body["token"].(string); code != http.StatusOK || tok == "" {
		t.Fatalf("GetIDToken with version null: %d %v, want 200", code, body)
	} else if sub := claimsOf(t, tok)["sub"]; sub != e.user.ID {
		t.Errorf("GetIDToken with version null: sub %v, want the V1 sub %s (version unset)", sub, e.user.ID)
	}
	ht := fmt.Sprintf(`"runnerId":%q,"userId":%q,"token":"gho_null"`, runnerID, e.user.ID)
	for i, prefix := range []string{"", APIPrefix} {
		req := fmt.Sprintf(`{%s,"host":"h%d.example.com","source":null,"subject":{"id":%q,"principal":null}}`, ht, i, e.user.ID)
		code, _, body := post(t, e, prefix+"/gitpod.v1.RunnerConfigurationService/CreateHostAuthenticationToken", e.secret, req)
		tok, _ := body["token"].(map[string]any)
		if code != http.StatusOK || tok["host"] != fmt.Sprintf("h%d.example.com", i) || tok["source"] != nil {
			t.Errorf("%s CreateHostAuthenticationToken with null enums: %d %v, want 200 and no source", prefix, code, body)
		}
	}
	code, _, body = post(t, e, "/gitpod.v1.IdentityService/GetIDToken", e.secret, `{"audience":["a"],"version":""}`)
	if code != http.StatusBadRequest || body["code"] != "invalid_argument" {
		t.Errorf(`GetIDToken with version "": %d %v, want 400 invalid_argument`, code, body)
	}
}
