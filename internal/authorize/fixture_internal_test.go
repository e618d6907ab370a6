package authorize

import (
	"testing"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
)

// bobsClientStore is a store holding organization "o", its user "bob" and
// client "c1" (authorization code, scope openid, redirect URI
// https://rp.example/cb), as the internal tests of the authorization
// endpoint use them.
func bobsClientStore(t *testing.T) storage.Store {
	t.Helper()
	st := sqlitetest.NewStore(t)
	ctx := t.Context()
	if err := st.CreateOrganization(ctx, storage.Organization{ID: "o", Name: "O"}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreatePrincipal(ctx, storage.Principal{ID: "bob", OrgID: "o", Kind: storage.PrincipalUser, Name: "bob"}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateClient(ctx, storage.Client{ID: "c1", OrgID: "o", PrincipalID: "bob", AuthMethod: oauth2.AuthMethodClientSecretBasic,
		GrantTypes: []string{oauth2.GrantTypeAuthorizationCode}, Scopes: []string{"openid"},
		RedirectURIs: []string{"https://rp.example/cb"}}); err != nil {
		t.Fatal(err)
	}
	return st
}
