package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
	"github.com/opensts/sts/internal/ratelimit"
)

// headerCase is a request whose headers (or, for a Connect GET, query)
// alone decide connect's answer (refused), or a control connect passes on
// to the procedure.
type headerCase struct {
	name    string
	method  string // POST or GET
	ctype   string
	header  map[string]string
	query   url.Values // GET only; connect=v1, encoding=json, message={} unless set
	refused bool
}

func headerCases() []headerCase {
	post := func(name, ctype string, refused bool, kv ...string) headerCase {
		h := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			h[kv[i]] = kv[i+1]
		}
		return headerCase{name: name, method: http.MethodPost, ctype: ctype, header: h, refused: refused}
	}
	get := func(name string, refused bool, q url.Values) headerCase {
		return headerCase{name: name, method: http.MethodGet, query: q, refused: refused}
	}
	return []headerCase{
		post("connect version 2", "application/json", true, "Connect-Protocol-Version", "2"),
		post("connect version 1.0", "application/proto", true, "Connect-Protocol-Version", "1.0"),
		post("connect br", "application/proto", true, "Content-Encoding", "br"),
		post("connect GZIP", "application/json", true, "Content-Encoding", "GZIP"),
		post("connect gzip, br", "application/json", true, "Content-Encoding", "gzip, br"),
		post("connect timeout abc", "application/json", true, "Connect-Timeout-Ms", "abc"),
		post("connect timeout -5", "application/json", true, "Connect-Timeout-Ms", "-5"),
		post("connect timeout 11 digits", "application/json", true, "Connect-Timeout-Ms", "12345678901"),
		post("connect timeout and br", "application/json", true, "Connect-Timeout-Ms", "abc", "Content-Encoding", "br"),
		post("connect br and version 2", "application/json", true, "Content-Encoding", "br", "Connect-Protocol-Version", "2"),
		post("connect timeout and version 2", "application/json", true, "Connect-Timeout-Ms", "abc", "Connect-Protocol-Version", "2"),
		post("grpc snappy", "application/grpc", true, "Grpc-Encoding", "snappy"),
		post("grpc timeout 5x", "application/grpc", true, "Grpc-Timeout", "5x"),
		post("grpc timeout 9 digits", "application/grpc+proto", true, "Grpc-Timeout", "100000000m"),
		post("grpc timeout and snappy", "application/grpc", true, "Grpc-Timeout", "-1S", "Grpc-Encoding", "snappy"),
		post("grpc-web br", "application/grpc-web+proto", true, "Grpc-Encoding", "br"),
		post("grpc-web timeout", "application/grpc-web", true, "Grpc-Timeout", "S"),
		// Controls: connect passes these on.
		post("connect ok", "application/json", false, "Connect-Protocol-Version", "1", "Content-Encoding", "identity", "Connect-Timeout-Ms", "+300000"),
		post("connect gzip", "application/json", false, "Content-Encoding", "gzip"),
		post("grpc ok", "application/grpc", false, "Grpc-Encoding", "identity", "Grpc-Timeout", "2562048H"),
		post("grpc-web gzip", "application/grpc-web+proto", false, "Grpc-Encoding", "gzip"),
		post("grpc connect headers", "application/grpc", false, "Connect-Protocol-Version", "2", "Content-Encoding", "br", "Connect-Timeout-Ms", "x"),
		get("get version 2", true, url.Values{"connect": {"v2"}}),
		get("get br", true, url.Values{"compression": {"br"}}),
		get("get no message", true, url.Values{"message": nil}),
		get("get timeout", true, url.Values{"timeout": nil}),
		get("get no message, br", true, url.Values{"message": nil, "compression": {"br"}}),
		get("get no message, version 2", true, url.Values{"message": nil, "connect": {"v2"}}),
		get("get ok", false, url.Values{"compression": {"identity"}}),
	}
}

// request builds c for proc; a GET's timeout case sends a bad
// Connect-Timeout-Ms header.
func (c headerCase) request(proc, token string) *http.Request {
	var r *http.Request
	if c.method == http.MethodGet {
		q := url.Values{"connect": {"v1"}, "encoding": {"json"}, "message": {"{}"}}
		for k, v := range c.query {
			if v == nil {
				q.Del(k)
				continue
			}
			q[k] = v
		}
		r = httptest.NewRequest(http.MethodGet, proc+"?"+q.Encode(), nil)
		if _, ok := c.query["timeout"]; ok {
			r.Header.Set("Connect-Timeout-Ms", "1e3")
		}
	} else {
		body := "{}"
		if strings.HasPrefix(c.ctype, "application/grpc") || c.ctype == "application/proto" {
			body = "\x00\x00\x00\x00\x00"
			if c.ctype == "application/proto" {
				body = ""
			}
		}
		r = httptest.NewRequest(http.MethodPost, proc, strings.NewReader(body))
		r.Header.Set("Content-Type", c.ctype)
	}
	for k, v := range c.header {
		r.Header.Set(k, v)
	}
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return r
}

// answerCode is the code of a recorded answer: a gRPC status, or a
// Connect error's code with its HTTP status ("ok" for a success).
func answerCode(rec *httptest.ResponseRecorder) string {
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/grpc") {
		s := res.Header.Get("Grpc-Status")
		if s == "" {
			s = res.Trailer.Get("Grpc-Status")
		}
		if s == "12" {
			s += ", Grpc-Accept-Encoding " + res.Header.Get("Grpc-Accept-Encoding")
		}
		return "grpc-status " + s
	}
	if res.StatusCode == http.StatusNotImplemented {
		return res.Status + ", Accept-Encoding " + res.Header.Get("Accept-Encoding")
	}
	var e struct{ Code string }
	if res.StatusCode != http.StatusOK && json.Unmarshal(b, &e) == nil && e.Code != "" {
		return res.Status + " " + e.Code
	}
	return res.Status
}

// TestHeaderRefusalIndependentOfCredential: a call connect refuses for its
// headers alone, before reading any message (an unsupported
// Content-Encoding or grpc-encoding, a Connect-Protocol-Version or
// connect= other than 1, a malformed Connect-Timeout-Ms or grpc-timeout, a
// Connect GET without message=), is answered as connect's own handler
// answers it (the judge, no middleware) without a credential and with a
// bad one, for every procedure Mount serves: it was unauthenticated (401)
// unless the credential was good, so the answer to a request no
// credential can make valid depended on the credential (docs/security.md
// T-196). The controls, which connect passes on, still need a credential.
func TestHeaderRefusalIndependentOfCredential(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	judge, wrapped := bareConnect(e), e.h.handlers()
	for _, proc := range Procedures() {
		rules := connectRules(map[string]http.Handler{serviceOf(proc): judge[serviceOf(proc)]}, []string{proc})[proc]
		for _, c := range headerCases() {
			if c.method == http.MethodGet && (rules == nil || !methodAllowed(http.MethodGet, rules.allow)) {
				continue
			}
			want := answerCode(serve(judge[serviceOf(proc)], c.request(proc, "")))
			if c.refused && !strings.Contains(want, "invalid_argument") && !strings.Contains(want, "Not Implemented") &&
				want != "grpc-status 3" && !strings.HasPrefix(want, "grpc-status 12") {
				t.Fatalf("%s %s: connect answers %q, not a refusal: the case is wrong", proc, c.name, want)
			}
			for who, tok := range map[string]string{"without a token": "", "with a bad token": "sts_pat_bogus"} {
				got := answerCode(serve(wrapped[serviceOf(proc)], c.request(proc, tok)))
				switch {
				case c.refused && got != want:
					t.Errorf("%s %s %s: %q; connect answers %q", proc, c.name, who, got, want)
				case !c.refused && !publicProcedures[proc] && !strings.Contains(got, "unauthenticated") && got != "grpc-status 16":
					t.Errorf("%s %s (a call connect serves) %s: %q; want unauthenticated", proc, c.name, who, got)
				}
			}
		}
	}
}

// TestHeaderRefusalCountedNotCharged: such a refusal is counted once, as
// the code connect answers, and costs ExchangeToken's per-IP bucket
// nothing, as a wrong method or content type costs it nothing (T-179).
func TestHeaderRefusalCountedNotCharged(t *testing.T) {
	t.Parallel()
	var counted []connect.Code
	e := newEnv(t, func(h *Handler) {
		h.PublicLimit = ratelimit.NewMemory(ratelimit.Rule{Rate: 0.001, Burst: 1}, ratelimit.MemoryOptions{})
		h.OnRefused = func(_ string, c connect.Code) { counted = append(counted, c) }
	})
	proc := gitpodv1connect.IdentityServiceExchangeTokenProcedure
	for _, c := range headerCases() {
		if !c.refused || c.method != http.MethodPost {
			continue
		}
		counted = nil
		r := c.request(e.srv.URL+proc, "")
		r.RequestURI = ""
		res, err := e.srv.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode == http.StatusTooManyRequests || len(counted) != 1 ||
			(counted[0] != connect.CodeInvalidArgument && counted[0] != connect.CodeUnimplemented) {
			t.Errorf("ExchangeToken %s: %d, counted %v; want connect's refusal, counted once", c.name, res.StatusCode, counted)
		}
	}
	r, _ := http.NewRequest(http.MethodPost, e.srv.URL+proc, strings.NewReader(`{"exchangeToken":"x"}`))
	r.Header.Set("Content-Type", "application/json")
	res, err := e.srv.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode == http.StatusTooManyRequests {
		t.Errorf("a well-formed ExchangeToken after the refusals: 429; the refusals spent the per-IP bucket")
	}
}

// TestHeaderRefusalWholeAnswer (docs/security.md T-196): the middleware's
// answer to a call refused for its headers is connect's own, whole: status,
// every header (connect's Accept-Encoding or Grpc-Accept-Encoding naming
// gzip on every such refusal, not only an unknown compression's), the
// trailers and the body, message included, over real HTTP on loopback.
// Before, only an unknown compression carried the accept header, and a
// malformed timeout was "invalid timeout" where connect says what is wrong
// with it. Left out is only framing: how trailers are announced (a
// Trailer header, or the "Trailer:" prefix connect's handler writes) and
// whether a Content-Length is sent; the client reads the same trailers
// and body either way.
func TestHeaderRefusalWholeAnswer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	proc := gitpodv1connect.IdentityServiceGetAuthenticatedIdentityProcedure
	judge := httptest.NewServer(bareConnect(e)[serviceOf(proc)])
	t.Cleanup(judge.Close)
	wrapped := httptest.NewServer(e.h.handlers()[serviceOf(proc)])
	t.Cleanup(wrapped.Close)
	answer := func(t *testing.T, srv *httptest.Server, r *http.Request) string {
		t.Helper()
		u, _ := url.Parse(srv.URL)
		r.URL.Scheme, r.URL.Host, r.Host, r.RequestURI = u.Scheme, u.Host, u.Host, ""
		res, err := srv.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		var ks []string
		for k, v := range res.Header {
			switch k {
			case "Date", "Trailer", "Content-Length", "X-Request-Id", "Cache-Control":
				// The moment; how trailers are announced and the body
				// framed (connect's handler flushes a gRPC-Web answer, so
				// it goes chunked; the body itself is compared); what sts
				// adds to every answer.
				continue
			}
			ks = append(ks, fmt.Sprintf("%s=%q", k, v))
		}
		for k, v := range res.Trailer {
			ks = append(ks, fmt.Sprintf("trailer %s=%q", k, v))
		}
		sort.Strings(ks)
		return fmt.Sprintf("%d %s body=%q", res.StatusCode, strings.Join(ks, " "), b)
	}
	n := 0
	for _, c := range headerCases() {
		if !c.refused {
			continue
		}
		n++
		want := answer(t, judge, c.request(proc, ""))
		got := answer(t, wrapped, c.request(proc, ""))
		if got != want {
			t.Errorf("%s:\n got  %s\n want %s", c.name, got, want)
		}
	}
	if n < 20 {
		t.Fatalf("%d refused cases, want every one of headerCases", n)
	}
}
