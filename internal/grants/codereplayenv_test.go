package grants

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// codeReplay is what the code-replay tests share: a token endpoint on
// store, a verifier that checks revocations, and acme's client for the
// authorization_code and refresh_token grants.
type codeReplay struct {
	m        *matrixEnv
	verifier tokens.Verifier
	c        storage.Client
	sec      string
}

func newCodeReplay(t *testing.T, store storage.Store) *codeReplay {
	m := newMatrixEnvOn(t, store)
	r := &codeReplay{m: m, verifier: *m.verify}
	r.verifier.Revocations = tokens.StoreRevocations{Store: m.store}
	r.c, r.sec = m.client(t, storage.Client{OrgID: "acme", GrantTypes: []string{oauth2.GrantTypeAuthorizationCode, oauth2.GrantTypeRefreshToken},
		Scopes: []string{"read"}, Audiences: []string{stsIssuer}})
	return r
}

// redeemed is a new code of acme's client, redeemed once: the code's form
// and the access and refresh tokens the redemption issued.
func (r *codeReplay) redeemed(t *testing.T) (code url.Values, access, refresh string) {
	t.Helper()
	code = r.m.authCode(t, r.c, "ada", "read")
	status, body := r.m.postAs(t, r.c.ID, r.sec, code)
	access, _ = body["access_token"].(string)
	refresh, _ = body["refresh_token"].(string)
	if status != http.StatusOK || access == "" || refresh == "" {
		t.Fatalf("first redemption = %d %v %v", status, body["error"], body["reason"])
	}
	return code, access, refresh
}

// checkEnded fails t unless the first redemption's access token is
// revoked and its refresh family no longer refreshes.
func (r *codeReplay) checkEnded(t *testing.T, access, refresh string) {
	t.Helper()
	if _, err := r.verifier.VerifyAccessToken(t.Context(), access, stsIssuer); tokens.Reason(err) != "token_revoked" {
		t.Errorf("the first redemption's access token after the replay = %v, want token_revoked", err)
	}
	status, body := r.m.postAs(t, r.c.ID, r.sec, url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {refresh}})
	if status != http.StatusBadRequest || body["access_token"] != nil {
		t.Errorf("refresh of the first redemption's family after the replay = %d %v, want 400", status, body["reason"])
	}
}

// cloneForm is a copy of v whose values can be edited without touching v.
func cloneForm(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}
