package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
)

// wrongVerbMethods are the HTTP methods the wrong-verb tests ask every
// procedure with: connect takes POST, and GET for a NO_SIDE_EFFECTS RPC;
// "post" is not POST (methods are case-sensitive).
var wrongVerbMethods = []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodPatch,
	http.MethodOptions, "post", "TRACE"}

// bareConnect is e's services as connect's handlers serve them to a caller
// with a good credential, no middleware in front: the judge of what a
// request no credential can make valid is answered.
func bareConnect(e *env) map[string]http.Handler {
	raw := &Handler{Store: e.h.Store, PATs: e.h.PATs, Clients: e.h.Clients, Issuer: e.h.Issuer, Verifier: e.h.Verifier,
		Audience: e.h.Audience, noAuth: &Identity{}}
	return raw.handlers()
}

// serve is h's answer to req.
func serve(h http.Handler, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestWrongVerbMethodNotAllowed: every procedure Mount serves, asked with
// an HTTP method it does not take, is 405 with connect's own Allow header
// without a credential and with a bad one, as with a good one; a method it
// does take is passed on (docs/security.md T-179). Without a (good)
// credential it answered 401, so the answer to a request no credential
// could make valid depended on the credential, and a caller debugging a
// GET of a POST-only RPC was told to fix its token. The judge is connect's
// handler without the middleware: the answer a caller with a good
// credential gets. The wire check covers / and /api and Cache-Control.
func TestWrongVerbMethodNotAllowed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	judge, wrapped := bareConnect(e), e.h.handlers()
	for _, proc := range Procedures() {
		for _, m := range wrongVerbMethods {
			ask := func(h http.Handler, tok string) *httptest.ResponseRecorder {
				req := httptest.NewRequest(m, proc+"?connect=v1&encoding=json&message=%7B%7D", nil)
				if tok != "" {
					req.Header.Set("Authorization", "Bearer "+tok)
				}
				return serve(h, req)
			}
			c := ask(judge[serviceOf(proc)], "")
			for who, tok := range map[string]string{"without a token": "", "with a bad token": "sts_pat_bogus"} {
				w := ask(wrapped[serviceOf(proc)], tok)
				c405, w405 := c.Code == http.StatusMethodNotAllowed, w.Code == http.StatusMethodNotAllowed
				if c405 != w405 || c.Header().Get("Allow") != w.Header().Get("Allow") {
					t.Errorf("%s %s %s: %d, Allow %q; connect answers %d, Allow %q", m, proc, who,
						w.Code, w.Header().Get("Allow"), c.Code, c.Header().Get("Allow"))
				}
			}
		}
	}

	proc := gitpodv1connect.IdentityServiceGetIDTokenProcedure
	want := serve(judge[serviceOf(proc)], httptest.NewRequest(http.MethodGet, proc, nil)).Header().Get("Allow")
	for _, base := range []string{e.srv.URL, e.srv.URL + APIPrefix} {
		for who, tok := range map[string]string{"with a token": e.admin, "without a token": "", "with a bad token": "sts_pat_bogus"} {
			req, _ := http.NewRequest(http.MethodGet, base+proc+"?connect=v1&encoding=json&message=%7B%7D", nil)
			if tok != "" {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			res, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != want || want == "" {
				t.Errorf("GET %s%s %s: %d, Allow %q; want 405, Allow %q", strings.TrimPrefix(base, e.srv.URL), proc, who,
					res.StatusCode, res.Header.Get("Allow"), want)
			}
			if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("GET %s %s: Cache-Control %q", proc, who, cc)
			}
		}
	}
}

// TestWrongVerbCounted: a known procedure asked with an HTTP method it does
// not take is counted among the refusals (OnRefused, so
// sts_rpc_requests_total), as unimplemented, as a call to an unknown
// method is: a client probing with the wrong verb shows in the metrics.
// Answered 401 without a credential it was counted as unauthenticated;
// answered 405 before authentication it was not counted at all.
func TestWrongVerbCounted(t *testing.T) {
	t.Parallel()
	var got []connect.Code
	e := newEnv(t, func(h *Handler) { h.OnRefused = func(_ string, c connect.Code) { got = append(got, c) } })
	for _, path := range []string{"/gitpod.v1.IdentityService/NoSuchMethod", gitpodv1connect.IdentityServiceGetIDTokenProcedure} {
		got = nil
		req, _ := http.NewRequest(http.MethodPut, e.srv.URL+path, nil)
		res, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if len(got) != 1 || got[0] != connect.CodeUnimplemented {
			t.Errorf("PUT %s (%d): counted %v, want once as unimplemented", path, res.StatusCode, got)
		}
	}
}
