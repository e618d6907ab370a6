package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
)

// TestEnumWords: --output json and the tables print enum values as
// words, in nested and repeated messages too, and flags take the same
// words back.
func TestEnumWords(t *testing.T) {
	t.Parallel()
	tok := &gitpodv1.HostAuthenticationToken{Id: "t1", Source: gitpodv1.HostAuthenticationTokenSource_HOST_AUTHENTICATION_TOKEN_SOURCE_PAT,
		Subject: &gitpodv1.Subject{Id: "r1", Principal: gitpodv1.Principal_PRINCIPAL_RUNNER}}
	var out bytes.Buffer
	if err := printObjects(&out, []*gitpodv1.HostAuthenticationToken{tok, tok}, false); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "HOST_AUTHENTICATION") || strings.Contains(out.String(), "PRINCIPAL_") {
		t.Errorf("enum names in the JSON:\n%s", out.String())
	}
	var list []struct {
		Source  string `json:"source"`
		Subject struct {
			Principal string `json:"principal"`
		} `json:"subject"`
	}
	if err := json.Unmarshal(out.Bytes(), &list); err != nil || len(list) != 2 {
		t.Fatalf("not a JSON array of 2: %v\n%s", err, out.String())
	}
	if list[1].Source != "pat" || list[1].Subject.Principal != "runner" {
		t.Errorf("source, principal = %q, %q; want pat, runner", list[1].Source, list[1].Subject.Principal)
	}
	for _, c := range []struct {
		e    protoreflect.Enum
		want string
	}{
		{stsv1.PrincipalKind_PRINCIPAL_KIND_SERVICE_ACCOUNT, "service-account"},
		{stsv1.PrincipalKind_PRINCIPAL_KIND_RUNNER_MANAGER, "runner-manager"},
		{stsv1.ClientAuthMethod_CLIENT_AUTH_METHOD_CLIENT_SECRET_POST, "client_secret_post"},
		{stsv1.SigningKeyState_SIGNING_KEY_STATE_RETIRED, "retired"},
		{gitpodv1.HostAuthenticationTokenSource_HOST_AUTHENTICATION_TOKEN_SOURCE_OAUTH, "oauth"},
	} {
		if got := enumWord(c.e); got != c.want {
			t.Errorf("enumWord(%v) = %q, want %q", c.e, got, c.want)
		}
	}
	for word, want := range map[string]stsv1.PrincipalKind{"service-account": stsv1.PrincipalKind_PRINCIPAL_KIND_SERVICE_ACCOUNT,
		"service_account": stsv1.PrincipalKind_PRINCIPAL_KIND_SERVICE_ACCOUNT, "user": stsv1.PrincipalKind_PRINCIPAL_KIND_USER} {
		if n, ok := enumFromWord(stsv1.PrincipalKind(0).Descriptor(), word); !ok || stsv1.PrincipalKind(n) != want {
			t.Errorf("enumFromWord(%q) = %v, %v", word, n, ok)
		}
	}
	for _, bad := range []string{"unspecified", "robot", ""} {
		if _, ok := enumFromWord(stsv1.PrincipalKind(0).Descriptor(), bad); ok {
			t.Errorf("enumFromWord(%q) accepted", bad)
		}
	}
}
