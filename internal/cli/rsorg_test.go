package cli_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/pkg/rs"
)

// TestResourceServerRefusesOtherOrganizations (docs/security.md A-63): on a
// real server with two organizations, evil's administrator makes a pool
// that lists acme's resource server as an audience, trusts an issuer evil
// controls and maps every subject to the ID of acme's administrator, then
// exchanges its own JWT for a write token for acme's audience. pkg/rs, set
// up as the guide says (issuer and a dedicated audience), accepted it as
// acme's administrator; with OrgID set it refuses every token of another
// organization and still accepts acme's own.
func TestResourceServerRefusesOtherOrganizations(t *testing.T) {
	t.Parallel()
	setenv(t, "STS_FEDERATION_ALLOW_LOOPBACK", "true")
	const acmeAPI = "https://api.acme.example"
	iss := newLoopbackIssuer(t)
	s := startAdminServer(t)
	ctx := t.Context()
	inst := h2cClient(s.admin) // acme's bootstrap administrator, an instance administrator
	me, err := gitpodv1connect.NewUserServiceClient(inst, s.api).GetAuthenticatedUser(ctx, &gitpodv1.GetAuthenticatedUserRequest{})
	if err != nil {
		t.Fatal(err)
	}
	victim := me.GetUser().GetId()

	org, err := stsv1connect.NewOrganizationServiceClient(inst, s.api).CreateOrganization(ctx, &stsv1.CreateOrganizationRequest{Name: "evil"})
	if err != nil {
		t.Fatal(err)
	}
	evilOrg := org.GetOrganization().GetId()
	mallory, err := stsv1connect.NewPrincipalServiceClient(inst, s.api).CreatePrincipal(ctx, &stsv1.CreatePrincipalRequest{
		OrganizationId: evilOrg, Kind: stsv1.PrincipalKind_PRINCIPAL_KIND_USER, Name: "mallory"})
	if err != nil {
		t.Fatal(err)
	}
	pt, err := gitpodv1connect.NewUserServiceClient(inst, s.api).CreatePersonalAccessToken(ctx, &gitpodv1.CreatePersonalAccessTokenRequest{
		UserId: mallory.GetPrincipal().GetId(), Scopes: []string{"*", "sts:admin"}, ValidFor: durationpb.New(48 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}

	// evil's administrator, within its own organization only.
	ps := stsv1connect.NewPoolServiceClient(h2cClient(pt.GetToken()), s.api)
	if _, err := ps.CreatePool(ctx, &stsv1.CreatePoolRequest{PoolId: "evil-ci", OrganizationId: evilOrg,
		Mapping: &stsv1.PoolMapping{Subject: strconv.Quote(victim)}, Scopes: []string{"read", "write"},
		AllowUnauthenticated: true, Audiences: []string{acmeAPI}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ps.CreateProvider(ctx, &stsv1.CreateProviderRequest{PoolId: "evil-ci", ProviderId: "own", Issuer: iss.url, Audiences: []string{"sts"}}); err != nil {
		t.Fatal(err)
	}
	token := func(form url.Values) string {
		t.Helper()
		resp, err := http.PostForm(s.r.base+"/oauth2/token", form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		at, _ := m["access_token"].(string)
		if resp.StatusCode != http.StatusOK || at == "" {
			t.Fatalf("token endpoint = %d, error %v", resp.StatusCode, m["error"])
		}
		return at
	}
	forged := token(url.Values{"grant_type": {oauth2.GrantTypeTokenExchange}, "subject_token": {iss.mint(t, "anyone", "evil")},
		"subject_token_type": {oauth2.TokenTypeJWT}, "scope": {"write"}, "audience": {acmeAPI}})
	own := token(url.Values{"grant_type": {oauth2.GrantTypeTokenExchange}, "subject_token": {s.notAdmin},
		"subject_token_type": {oauth2.TokenTypePAT}})

	guide := &rs.Verifier{Issuer: s.r.base, Audience: acmeAPI}
	if c, err := guide.Verify(ctx, forged); err != nil || c.Subject != victim {
		t.Fatalf("without OrgID the forged token verifies as %v, %v (the attack the option stops)", c, err)
	}
	acme := &rs.Verifier{Issuer: s.r.base, Audience: acmeAPI, OrgID: s.orgID}
	if c, err := acme.Verify(ctx, forged); !errors.Is(err, rs.ErrInvalidToken) {
		t.Errorf("acme's resource server accepted evil's token for %s as sub %s: %v", acmeAPI, c.Subject, err)
	}
	if _, err := (&rs.Verifier{Issuer: s.r.base, Audience: acmeAPI, OrgID: evilOrg}).Verify(ctx, forged); err != nil {
		t.Errorf("the token in its own organization: %v", err)
	}
	if c, err := (&rs.Verifier{Issuer: s.r.base, Audience: s.r.base, OrgID: s.orgID}).Verify(ctx, own); err != nil || c.OrgID != s.orgID {
		t.Errorf("acme's own token: %v, %v", c, err)
	}
}
