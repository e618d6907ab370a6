package api

import (
	"context"
	"mime"
	"net/http"
	"strings"
)

// wireRules is what connect's handler for one procedure answers, before
// any message is read, to a request no credential can make valid: the
// middleware answers it the same way before authentication, so the answer
// does not depend on the credential (docs/security.md T-179). They are
// connect's own answers, asked of the handler once (probeConnect), not a
// copy of its rules.
type wireRules struct {
	allow      string          // its 405's Allow: the HTTP methods it takes
	acceptPost string          // its 415's Accept-Post
	post       map[string]bool // the content types a POST may carry: acceptPost's
	get        map[string]bool // those a Connect GET may name (?encoding=): Connect's, not gRPC's
}

// connectRules maps every procedure of procs, those Mount serves, to its
// handler's wireRules; services maps each service's path to connect's
// handler for it, no middleware in front. A procedure whose handler did
// not answer the probes as connect does maps to nil: the middleware then
// leaves every answer to connect.
func connectRules(services map[string]http.Handler, procs []string) map[string]*wireRules {
	out := map[string]*wireRules{}
	for _, proc := range procs {
		out[proc] = nil
		if hd := services[serviceOf(proc)]; hd != nil {
			out[proc] = probeConnect(hd, proc)
		}
	}
	return out
}

// probeConnect asks hd for proc with a method no protocol uses (405 and
// Allow) and a POST of a content type none serves (415 and Accept-Post):
// connect answers both before any gate, interceptor or message, and the
// context is cancelled besides.
func probeConnect(hd http.Handler, proc string) *wireRules {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ask := func(method string) *probeWriter {
		r, err := http.NewRequestWithContext(ctx, method, proc, http.NoBody)
		if err != nil {
			return &probeWriter{}
		}
		r.Header.Set("Content-Type", "application/x-sts-probe")
		w := &probeWriter{header: http.Header{}}
		hd.ServeHTTP(w, r)
		return w
	}
	wrongVerb, wrongType := ask("STS-PROBE"), ask(http.MethodPost)
	if wrongVerb.code != http.StatusMethodNotAllowed || wrongType.code != http.StatusUnsupportedMediaType {
		return nil
	}
	c := &wireRules{allow: wrongVerb.header.Get("Allow"), acceptPost: wrongType.header.Get("Accept-Post"),
		post: map[string]bool{}, get: map[string]bool{}}
	for ct := range strings.SplitSeq(c.acceptPost, ", ") {
		c.post[ct] = true
		// Connect GET names a codec, "application/<encoding>"; the
		// gRPC and gRPC-Web types are POST only.
		if methodAllowed(http.MethodGet, c.allow) && !strings.HasPrefix(ct, "application/grpc") {
			c.get[ct] = true
		}
	}
	return c
}

// unsupportedMedia reports whether connect answers r, a request with a
// method it takes, 415: a POST of a content type it does not serve, or a
// Connect GET naming no codec it has (both with Accept-Post), or a GET
// with a body (without).
func (c *wireRules) unsupportedMedia(r *http.Request) (unsupported bool, acceptPost string) {
	if r.Method == http.MethodGet {
		if !c.get["application/"+r.URL.Query().Get("encoding")] {
			return true, c.acceptPost
		}
		return r.ContentLength > 0, ""
	}
	if !c.post[mediaType(r.Header.Get("Content-Type"))] {
		return true, c.acceptPost
	}
	return false, ""
}

// mediaType is a Content-Type as connect compares it: as sent when it is
// a bare lower-case type, else parsed and formatted again, its charset
// lower-cased; as sent when it does not parse. TestUnservedMediaMatchesConnect
// holds it to connect's answers.
func mediaType(ct string) string {
	slashes := 0
	for _, r := range ct {
		switch {
		case r >= 'a' && r <= 'z', r == '.', r == '+', r == '-':
		case r == '/':
			slashes++
		default:
			return mediaTypeParsed(ct)
		}
	}
	if slashes == 1 {
		return ct
	}
	return mediaTypeParsed(ct)
}

func mediaTypeParsed(ct string) string {
	base, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return ct
	}
	if cs, ok := params["charset"]; ok {
		params["charset"] = strings.ToLower(cs)
	}
	return mime.FormatMediaType(base, params)
}

// serviceOf is the mux pattern of proc's service ("/gitpod.v1.IdentityService/").
func serviceOf(proc string) string { return proc[:strings.LastIndex(proc, "/")+1] }

// probeWriter keeps a probe's status and headers; the body is dropped.
type probeWriter struct {
	header http.Header
	code   int
}

func (w *probeWriter) Header() http.Header { return w.header }

func (w *probeWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *probeWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return len(b), nil
}
