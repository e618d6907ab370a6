package api

import "testing"

// TestBearerSchemeSpaces: RFC 6750 §2.1 writes the credentials as
// "Bearer" 1*SP b64token, and the scheme's name is case-insensitive (RFC
// 7235 §2.1), as userinfo and introspection already accept. A header
// without a token stays refused.
func TestBearerSchemeSpaces(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	a := &Authenticator{PATs: e.pats}
	for _, h := range []string{"Bearer " + e.secret, "bearer " + e.secret, "Bearer  " + e.secret, "BEARER   " + e.secret} {
		id, err := a.Authenticate(t.Context(), h)
		if err != nil || id.Credential != CredentialPAT {
			t.Errorf("%q: %v, want the PAT accepted", h[:len(h)-len(e.secret)]+"<pat>", err)
		}
	}
	for _, h := range []string{"Bearer", "Bearer ", "Bearer   ", "Basic " + e.secret, " Bearer " + e.secret, "Bearer\t" + e.secret} {
		if _, err := a.Authenticate(t.Context(), h); err == nil {
			t.Errorf("%q accepted, want refused", h)
		}
	}
}
