package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
)

// TestWrongVerbMethodNotAllowed: a known procedure asked with an HTTP
// method it does not take is 405 with connect's own Allow header, with a
// credential, without one and with a bad one alike, at / and under /api.
// Without a (good) credential it answered 401, so the answer to a request
// no credential could make valid depended on the credential, and a caller
// debugging a GET of a POST-only RPC was told to fix its token
// (docs/security.md T-182). The judge is connect's handler: the answer a
// caller with a good credential gets.
func TestWrongVerbMethodNotAllowed(t *testing.T) {
	e := newEnv(t, nil)
	hc := e.srv.Client()
	cases := []struct {
		proc, allow string
		verbs       []string
	}{
		{gitpodv1connect.IdentityServiceGetIDTokenProcedure, "POST", []string{http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodOptions}},
		{gitpodv1connect.IdentityServiceExchangeTokenProcedure, "POST", []string{http.MethodGet, http.MethodPatch}},
		{stsv1connect.OrganizationServiceListOrganizationsProcedure, "POST", []string{http.MethodGet, http.MethodHead}},
		{gitpodv1connect.IdentityServiceGetAuthenticatedIdentityProcedure, "GET, POST", []string{http.MethodPut, http.MethodDelete}},
		{gitpodv1connect.RunnerInteractionServiceGetHostAuthenticationTokenValueProcedure, "GET, POST", []string{http.MethodPatch}},
	}
	for _, c := range cases {
		for _, verb := range c.verbs {
			for _, base := range []string{e.srv.URL, e.srv.URL + APIPrefix} {
				for who, tok := range map[string]string{"with a token": e.admin, "without a token": "", "with a bad token": "sts_pat_bogus"} {
					url := base + c.proc + "?connect=v1&encoding=json&message=%7B%7D"
					req, _ := http.NewRequest(verb, url, strings.NewReader("{}"))
					req.Header.Set("Content-Type", "application/json")
					if tok != "" {
						req.Header.Set("Authorization", "Bearer "+tok)
					}
					res, err := hc.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					res.Body.Close()
					if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != c.allow {
						t.Errorf("%s %s%s %s: %d, Allow %q; want 405, Allow %q", verb, strings.TrimPrefix(base, e.srv.URL), c.proc, who,
							res.StatusCode, res.Header.Get("Allow"), c.allow)
					}
					if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
						t.Errorf("%s %s %s: Cache-Control %q", verb, c.proc, who, cc)
					}
				}
			}
		}
	}
}
