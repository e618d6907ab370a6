package cli_test

import (
	"net/http"
	"net/url"
	"testing"

	"connectrpc.com/connect"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
	"github.com/opensts/sts/internal/oauth2"
)

// TestServeDerivedTokensDieWithTheirSigningKey (docs/security.md T-192): a
// signing key whose private half was stolen is revoked (`sts keys revoke`)
// after it stopped signing (a rotation since, or a retired or next key
// all along). What the thief exchanged a token of that key for while it
// was trusted (a re-exchange, a delegation with it as the actor, the
// access token an exchange token it created bought) is signed by another
// key; each ends with the key, at once, on the bearer API, introspection
// and re-exchange, as the token of the key itself does. A token of
// another key that derives from nothing the key signed lives on.
func TestServeDerivedTokensDieWithTheirSigningKey(t *testing.T) {
	t.Parallel()
	d := startDerived(t)
	ctx := t.Context()
	token := func(t *testing.T, form url.Values) string {
		t.Helper()
		code, m := d.token(t, form)
		if code != http.StatusOK {
			t.Fatalf("exchange = %d %v", code, m)
		}
		return m["access_token"].(string)
	}
	fromPAT := func(t *testing.T, secret string) string {
		return token(t, url.Values{"grant_type": {oauth2.GrantTypeTokenExchange}, "subject_token": {secret},
			"subject_token_type": {oauth2.TokenTypePAT}})
	}
	reexchange := func(t *testing.T, tok string, kv ...string) string {
		f := url.Values{"grant_type": {oauth2.GrantTypeTokenExchange}, "subject_token": {tok},
			"subject_token_type": {oauth2.TokenTypeAccessToken}, "scope": {"identity:read"}}
		for i := 0; i+1 < len(kv); i += 2 {
			f.Set(kv[i], kv[i+1])
		}
		return token(t, f)
	}
	keys := stsv1connect.NewKeyServiceClient(h2cClient(d.admin), d.api)

	// The stolen key signs stolen, a token holding sts:admin (what its
	// thief can forge), and then stops signing: a forced rotation.
	stolenKey := d.activeKids(t)["ES256"]
	stolen := fromPAT(t, d.admin)
	if _, err := keys.RotateSigningKey(ctx, &stsv1.RotateSigningKeyRequest{Force: true}); err != nil {
		t.Fatalf("RotateSigningKey: %v", err)
	}
	if k := d.activeKids(t)["ES256"]; k == stolenKey || k == "" {
		t.Fatalf("test setup: active ES256 key after the rotation = %q", k)
	}

	child := reexchange(t, stolen)
	innocent := fromPAT(t, d.admin)
	delegated := reexchange(t, innocent, "actor_token", stolen, "actor_token_type", oauth2.TokenTypeAccessToken)
	sa := d.serviceAccount(t, "bought-by-a-stolen-key")
	x, err := stsv1connect.NewPrincipalServiceClient(h2cClient(stolen), d.api).
		CreateExchangeToken(ctx, &stsv1.CreateExchangeTokenRequest{PrincipalId: sa})
	if err != nil {
		t.Fatalf("CreateExchangeToken with a token of the key: %v", err)
	}
	identity := gitpodv1connect.NewIdentityServiceClient(h2cClient(""), d.api)
	res, err := identity.ExchangeToken(ctx, &gitpodv1.ExchangeTokenRequest{ExchangeToken: x.GetExchangeToken()})
	if err != nil {
		t.Fatalf("ExchangeToken: %v", err)
	}
	bought := res.GetAccessToken()
	unspent, err := stsv1connect.NewPrincipalServiceClient(h2cClient(stolen), d.api).
		CreateExchangeToken(ctx, &stsv1.CreateExchangeTokenRequest{PrincipalId: sa})
	if err != nil {
		t.Fatalf("CreateExchangeToken with a token of the key: %v", err)
	}
	derived := map[string]string{"re-exchanged": child, "delegated": delegated, "bought": bought}
	for _, tok := range derived {
		d.wantAlive(t, tok)
	}

	if _, err := keys.RevokeSigningKey(ctx, &stsv1.RevokeSigningKeyRequest{Kid: stolenKey}); err != nil {
		t.Fatalf("RevokeSigningKey(%s): %v", stolenKey, err)
	}
	if api, active, re := d.consumers(t, stolen); api == nil || active || re != http.StatusBadRequest {
		t.Fatalf("the key's own token after its revocation: bearer API err = %v, active = %v, re-exchange = %d", api, active, re)
	}
	for name, tok := range derived {
		if api, active, re := d.consumers(t, tok); connect.CodeOf(api) != connect.CodeUnauthenticated || active || re != http.StatusBadRequest {
			t.Errorf("%s from a token of the revoked key: bearer API err = %v, introspection active = %v, re-exchange = %d; want unauthenticated, inactive, 400",
				name, api, active, re)
		}
	}
	_, err = identity.ExchangeToken(ctx, &gitpodv1.ExchangeTokenRequest{ExchangeToken: unspent.GetExchangeToken()})
	if connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Errorf("ExchangeToken of one created by a token of the revoked key: %v, want unauthenticated", err)
	}
	d.wantAlive(t, innocent)
}
