package app_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/opensts/sts/internal/audit"
	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/pat"
)

// boundaryOptions is the options parameter of a downscoped exchange at the
// Google STS dialect (docs/guides/resource-server.md).
const boundaryOptions = `{"accessBoundary":{"accessBoundaryRules":[{` +
	`"availableResource":"//storage.example/buckets/reports","availablePermissions":["storage.objects.get"]}]}}`

// googleExchange exchanges subject (of type typ) at POST /v1/token, with
// options when not empty, and returns the access token.
func (e *codeEnv) googleExchange(t *testing.T, subject, typ, options string) string {
	t.Helper()
	form := url.Values{"grant_type": {oauth2.GrantTypeTokenExchange}, "requested_token_type": {oauth2.TokenTypeAccessToken},
		"subject_token": {subject}, "subject_token_type": {typ}}
	if options != "" {
		form.Set("options", options)
	}
	req, _ := http.NewRequest(http.MethodPost, e.base+"/v1/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	st, m := do(t, req)
	tok, _ := m["access_token"].(string)
	if st != http.StatusOK || tok == "" {
		t.Fatalf("POST /v1/token (options %q) = %d %v", options, st, m)
	}
	return tok
}

// TestBoundaryBoundTokenRefusedByOwnAPI: a token narrowed with a Credential
// Access Boundary is for resource servers only (docs/security.md A-53).
// sts cannot express its own procedures as boundary resources, so its
// bearer API refuses the token (permission_denied) instead of giving it
// its full scopes: GetIDToken would turn it into an ID token without the
// boundary for any audience, and UserService would manage the owner's
// PATs. UserInfo refuses it too (403 insufficient_scope). The same
// exchange without a boundary, and the PAT itself, keep working.
func TestBoundaryBoundTokenRefusedByOwnAPI(t *testing.T) {
	t.Parallel()
	e := newCodeEnv(t)
	ctx := t.Context()
	pats, err := pat.NewService(e.store, e.pepper)
	if err != nil {
		t.Fatal(err)
	}
	_, secret, err := pats.Create(ctx, audit.Caller{Actor: "principal:test"}, pat.CreateInput{OwnerID: e.user.ID,
		Scopes: []string{pat.ScopeFull}, ExpiresAt: time.Now().Add(48 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	bounded := e.googleExchange(t, secret, oauth2.TokenTypePAT, boundaryOptions)
	plain := e.googleExchange(t, secret, oauth2.TokenTypePAT, "")

	call := func(tok string) (idErr, idTokErr, listErr error) {
		c := &http.Client{Transport: bearerRT{tok}}
		identity := gitpodv1connect.NewIdentityServiceClient(c, e.base+"/api")
		users := gitpodv1connect.NewUserServiceClient(c, e.base+"/api")
		_, idErr = identity.GetAuthenticatedIdentity(ctx, &gitpodv1.GetAuthenticatedIdentityRequest{})
		_, idTokErr = identity.GetIDToken(ctx, &gitpodv1.GetIDTokenRequest{Audience: []string{"sts.amazonaws.com"},
			Version: gitpodv1.IDTokenVersion_ID_TOKEN_VERSION_V2})
		_, listErr = users.ListPersonalAccessTokens(ctx, &gitpodv1.ListPersonalAccessTokensRequest{})
		return idErr, idTokErr, listErr
	}
	for name, tok := range map[string]string{"the PAT": secret, "the exchange without a boundary": plain} {
		if a, b, c := call(tok); a != nil || b != nil || c != nil {
			t.Errorf("%s: GetAuthenticatedIdentity %v, GetIDToken %v, ListPersonalAccessTokens %v; want all ok", name, a, b, c)
		}
	}
	a, b, c := call(bounded)
	for what, err := range map[string]error{"GetAuthenticatedIdentity": a, "GetIDToken": b, "ListPersonalAccessTokens": c} {
		if connect.CodeOf(err) != connect.CodePermissionDenied || !strings.Contains(err.Error(), "access boundary") {
			t.Errorf("%s with a boundary-bound token = %v, want permission_denied naming the boundary", what, err)
		}
	}

	// UserInfo: an authorization-code token with openid, downscoped by
	// re-exchange at /v1/token.
	oidcTok := e.tokenFor(t, e.user, "openid", "email").AccessToken
	if code, body, _ := e.userinfo(t, http.MethodGet, "Bearer "+e.googleExchange(t, oidcTok, oauth2.TokenTypeAccessToken, "")); code != http.StatusOK {
		t.Errorf("userinfo with the re-exchanged token = %d %v, want 200", code, body)
	}
	code, body, www := e.userinfo(t, http.MethodGet, "Bearer "+e.googleExchange(t, oidcTok, oauth2.TokenTypeAccessToken, boundaryOptions))
	if code != http.StatusForbidden || !strings.Contains(www, "insufficient_scope") || body["sub"] != nil {
		t.Errorf("userinfo with a boundary-bound token = %d %v (WWW-Authenticate %q), want 403 insufficient_scope", code, body, www)
	}
}
