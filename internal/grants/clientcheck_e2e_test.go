package grants_test

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/grants"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/ststest"
)

// TestServedGrantsHaveClientCheckRows probes the real sts serve for every
// grant type we know of: each one it serves (anything but
// unsupported_grant_type) must have rows in TestClientCheckMatrix, so a
// grant wired into serve cannot skip the client check unnoticed.
func TestServedGrantsHaveClientCheckRows(t *testing.T) {
	t.Parallel()
	srv := ststest.NewTestServer(t, nil)
	known := []string{
		oauth2.GrantTypeClientCredentials, oauth2.GrantTypeRefreshToken, oauth2.GrantTypeTokenExchange, oauth2.GrantTypeJWTBearer,
		"authorization_code", "password", "implicit", "urn:ietf:params:oauth:grant-type:device_code",
		"urn:ietf:params:oauth:grant-type:saml2-bearer", "urn:openid:params:grant-type:ciba",
	}
	served := 0
	for _, g := range known {
		resp, err := srv.Client.Post(srv.URL+grants.PathToken, "application/x-www-form-urlencoded", strings.NewReader(url.Values{"grant_type": {g}}.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if body["error"] == oauth2.ErrorUnsupportedGrantType {
			continue
		}
		served++
		if !slices.Contains(grants.MatrixGrantTypes, g) {
			t.Errorf("serve answers grant_type %s (%d %v) but the client-check matrix has no rows for it", g, resp.StatusCode, body)
		}
	}
	if served == 0 {
		t.Fatal("serve answered no grant type at all: the probe is broken")
	}
}
