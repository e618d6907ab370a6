package clientauth

import (
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
)

// TestPublicClientBasicEmptyPassword: HTTP Basic with a client's ID and
// an empty password (RFC 6749 §2.3.1; golang.org/x/oauth2's
// AuthStyleInHeader for a client without a secret) is a public client
// naming itself, judged exactly as client_id in the body under each
// policy; for a confidential client, an unknown one or Basic without a
// name it is invalid_client whatever the policy (docs/security.md T-149).
func TestPublicClientBasicEmptyPassword(t *testing.T) {
	store := newTestStore(t)
	pepper := make([]byte, 32)
	a := &Authenticator{Store: store, Pepper: pepper}
	for _, c := range []storage.Client{
		{ID: "pub lic", OrgID: "o", PrincipalID: "p", AuthMethod: oauth2.AuthMethodNone},
		{ID: "conf", OrgID: "o", PrincipalID: "p", AuthMethod: oauth2.AuthMethodClientSecretBasic,
			SecretDigest: secret.Digest(pepper, secret.PrefixClientSecret.Generate())},
	} {
		if err := store.CreateClient(t.Context(), c); err != nil {
			t.Fatal(err)
		}
	}
	auth := func(user string, form url.Values, p Policy) (*Result, error) {
		r, _ := http.NewRequest(http.MethodPost, "/", nil)
		r.SetBasicAuth(user, "")
		return a.Authenticate(t.Context(), r, form, p)
	}
	code := func(err error) string {
		if oe, ok := errors.AsType[*oauth2.Error](err); ok {
			return oe.Code
		}
		return ""
	}
	pub := url.QueryEscape("pub lic")
	if res, err := auth(pub, url.Values{}, OptionalPublic); err != nil || res == nil || res.Client.ID != "pub lic" || res.Method != oauth2.AuthMethodNone {
		t.Errorf("OptionalPublic = %+v, %v; want the public client, method none", res, err)
	}
	if res, err := auth(pub, url.Values{"client_id": {"pub lic"}}, OptionalPublic); err != nil || res == nil || res.Client.ID != "pub lic" {
		t.Errorf("OptionalPublic with the same client_id in the body = %+v, %v", res, err)
	}
	if res, err := auth(pub, url.Values{}, Optional); err != nil || res != nil {
		t.Errorf("Optional = %+v, %v; want identified, not authenticated (nil, nil)", res, err)
	}
	if _, err := auth(pub, url.Values{}, Required); code(err) != oauth2.ErrorInvalidClient {
		t.Errorf("Required = %v, want invalid_client", err)
	}
	if _, err := auth(pub, url.Values{"client_id": {"conf"}}, OptionalPublic); code(err) != oauth2.ErrorInvalidRequest {
		t.Errorf("a body client_id that differs = %v, want invalid_request", err)
	}
	for _, user := range []string{"conf", "nobody", ""} {
		for _, p := range []Policy{Required, Optional, OptionalPublic} {
			if res, err := auth(user, url.Values{}, p); code(err) != oauth2.ErrorInvalidClient || res != nil {
				t.Errorf("Basic %q with an empty password, policy %d = %+v, %v; want invalid_client", user, p, res, err)
			}
		}
	}
}
