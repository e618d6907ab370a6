package api

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
)

// TestUnservedMediaMatchesConnect: for every procedure Mount serves, a
// POST of each content type below, and a Connect GET naming each encoding
// (with and without a body) of one that takes GET, is answered 415 (with
// connect's Accept-Post) without a credential and with a bad one exactly
// when connect's own handler, without the middleware, answers it 415;
// otherwise it is passed on to authentication. Without a credential it
// was 401 where connect answers 415 (docs/security.md T-179). The list
// holds the parameter, case and charset forms connect canonicalizes, so
// the middleware's mediaType is held to connect's.
func TestUnservedMediaMatchesConnect(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	judge, wrapped := bareConnect(e), e.h.handlers()
	contentTypes := []string{"", "application/json", "application/json; charset=utf-8", "application/json;charset=UTF-8",
		"application/json; charset=latin1", "application/json; charset=\"utf-8\"", "Application/JSON", "application/json ",
		"application/proto", "application/proto; foo=bar", "application/protobuf", "application/connect+json",
		"application/grpc", "application/grpc+proto", "application/grpc+json", "application/GRPC", "application/grpc-web",
		"application/grpc-web+proto", "application/grpc-web+json", "application/grpc-web-text", "application/grpc-web-text+proto",
		"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "garbage;;", "application/json/x"}
	encodings := []string{"json", "proto", "json; charset=utf-8", "JSON", "grpc", "grpc+proto", "grpc-web", "connect+json", "xml", ""}
	type ask struct{ method, target, contentType, body string }
	for _, proc := range Procedures() {
		asks := make([]ask, 0, len(contentTypes)+2*len(encodings))
		for _, ct := range contentTypes {
			asks = append(asks, ask{http.MethodPost, proc, ct, ""})
		}
		for _, enc := range encodings {
			q := url.Values{"connect": {"v1"}, "message": {"{}"}}
			if enc != "" {
				q.Set("encoding", enc)
			}
			asks = append(asks, ask{http.MethodGet, proc + "?" + q.Encode(), "", ""}, ask{http.MethodGet, proc + "?" + q.Encode(), "", "{}"})
		}
		for _, a := range asks {
			do := func(h http.Handler, tok string) *httptest.ResponseRecorder {
				var body *strings.Reader
				if a.body != "" {
					body = strings.NewReader(a.body)
				}
				req := httptest.NewRequest(a.method, a.target, nil)
				if body != nil {
					req = httptest.NewRequest(a.method, a.target, body)
				}
				if a.contentType != "" {
					req.Header.Set("Content-Type", a.contentType)
				}
				if tok != "" {
					req.Header.Set("Authorization", "Bearer "+tok)
				}
				return serve(h, req)
			}
			c := do(judge[serviceOf(proc)], "")
			if c.Code == http.StatusMethodNotAllowed {
				continue // TestWrongVerbMethodNotAllowed's
			}
			for who, tok := range map[string]string{"without a token": "", "with a bad token": "sts_pat_bogus"} {
				w := do(wrapped[serviceOf(proc)], tok)
				c415, w415 := c.Code == http.StatusUnsupportedMediaType, w.Code == http.StatusUnsupportedMediaType
				if c415 != w415 || c.Header().Get("Accept-Post") != w.Header().Get("Accept-Post") {
					t.Errorf("%s %s (Content-Type %q, body %q) %s: %d, Accept-Post %q; connect answers %d, Accept-Post %q",
						a.method, a.target, a.contentType, a.body, who, w.Code, w.Header().Get("Accept-Post"), c.Code, c.Header().Get("Accept-Post"))
				}
			}
		}
	}
}

// TestContentTypeAnswerIndependentOfCredential: on the wire, a POST of a
// content type connect does not serve is answered the same with a good
// credential, without one and with a bad one (415; it was 401 without a
// good one), and counted once, as unimplemented.
func TestContentTypeAnswerIndependentOfCredential(t *testing.T) {
	t.Parallel()
	var counted []connect.Code
	e := newEnv(t, func(h *Handler) { h.OnRefused = func(_ string, c connect.Code) { counted = append(counted, c) } })
	for _, ct := range []string{"application/grpc-web-text", "text/plain"} {
		got := map[string]int{}
		for who, tok := range map[string]string{"good": e.secret, "none": "", "bad": "sts_pat_bogus"} {
			counted = nil
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+gitpodv1connect.IdentityServiceGetAuthenticatedIdentityProcedure, strings.NewReader("AAAAAAA="))
			req.Header.Set("Content-Type", ct)
			if tok != "" {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			res, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			got[who] = res.StatusCode
			if len(counted) != 1 || counted[0] != connect.CodeUnimplemented {
				t.Errorf("POST %s with %s credential: counted %v, want once as unimplemented", ct, who, counted)
			}
		}
		if got["none"] != got["good"] || got["bad"] != got["good"] || got["good"] != http.StatusUnsupportedMediaType {
			t.Errorf("POST %s: with a good credential %d, without %d, with a bad one %d; want 415 each", ct, got["good"], got["none"], got["bad"])
		}
	}
}
