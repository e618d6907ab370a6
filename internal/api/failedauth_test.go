package api

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/clientip"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/ratelimit"
)

// TestForgedBearerChargesIP is docs/security.md T-247: a bearer credential
// that fails authentication (a forged JWT, an unknown PAT) is charged to
// its source address's per-IP bucket after the failure; once that bucket
// is empty the address's next calls are refused resource_exhausted with
// Retry-After before any credential is checked (a forged token answered
// 429, not 401, and a genuine one too until the bucket has a token), while a genuine credential is never charged: many more
// calls than the burst pass, from the same address, before the flood.
// Another address keeps its own bucket.
func TestForgedBearerChargesIP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(h *Handler) {
		h.PublicLimit = ratelimit.NewMemory(ratelimit.Rule{Rate: 0.001, Burst: 2}, ratelimit.MemoryOptions{})
	})
	const path = "/gitpod.v1.IdentityService/GetAuthenticatedIdentity"
	// Over loopback, from 127.0.0.1.
	call := func(bearer string) (int, string, string) { return postBearer(t, e, path, bearer) }
	forgedJWT := "eyJhbGciOiJFUzI1NiIsImtpZCI6IngifQ.eyJzdWIiOiJ4In0.c2ln"
	unknownPAT := pat.PrefixPAT.Generate()
	// A genuine credential is never charged: five calls over a burst of 2.
	for i := range 5 {
		if code, _, _ := call(e.secret); code != http.StatusOK {
			t.Fatalf("genuine call %d = %d, want 200", i, code)
		}
	}
	// Two failures take the bucket's two tokens, each answered 401.
	for i, bad := range []string{forgedJWT, unknownPAT} {
		if code, c, _ := call(bad); code != http.StatusUnauthorized {
			t.Fatalf("forged call %d = %d %s, want 401", i, code, c)
		}
	}
	// The bucket is empty: the address is refused before anything is
	// checked, forged or not.
	for _, bad := range []string{forgedJWT, unknownPAT, "garbage"} {
		code, c, retry := call(bad)
		if code != http.StatusTooManyRequests || c != "resource_exhausted" || retry == "" {
			t.Errorf("forged call over the limit = %d %q (Retry-After %q), want 429 resource_exhausted with Retry-After", code, c, retry)
		}
	}
	// Nothing is checked while the address is refused: not even a
	// genuine credential is looked at (no storage, no signature).
	if code, c, _ := call(e.secret); code != http.StatusTooManyRequests || c != "resource_exhausted" {
		t.Errorf("genuine call from the refused address = %d %q, want 429 resource_exhausted, unchecked", code, c)
	}
	// Another address's bucket is its own.
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(`{}`))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer "+forgedJWT)
	r = r.WithContext(clientip.WithIP(r.Context(), "2001:db8:9::1"))
	w := httptest.NewRecorder()
	e.srv.Config.Handler.ServeHTTP(w, r)
	if w.Code != http.StatusUnauthorized {
		t.Errorf("forged call from another address = %d, want 401", w.Code)
	}
}

// TestForgedBearerRefusedAtEveryProcedure is docs/security.md F-117: an
// address whose forged credentials emptied its bucket at one procedure is
// refused, unchecked, at every other procedure too; it does not buy one
// more signature check per procedure by moving on. Seen from outside: a
// genuine credential from that address, which would be served were it
// checked, is refused resource_exhausted at a procedure the flood never
// called.
func TestForgedBearerRefusedAtEveryProcedure(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(h *Handler) {
		h.PublicLimit = ratelimit.NewMemory(ratelimit.Rule{Rate: 0.001, Burst: 1}, ratelimit.MemoryOptions{})
	})
	call := func(path, bearer string) (int, string) {
		status, code, _ := postBearer(t, e, path, bearer)
		return status, code
	}
	const flooded, other = "/gitpod.v1.IdentityService/GetAuthenticatedIdentity", "/gitpod.v1.UserService/ListPersonalAccessTokens"
	if code, _ := call(other, e.secret); code != http.StatusOK {
		t.Fatalf("genuine call to %s before the flood = %d, want 200", other, code)
	}
	forged := "eyJhbGciOiJFUzI1NiIsImtpZCI6IngifQ.eyJzdWIiOiJ4In0.c2ln"
	if code, _ := call(flooded, forged); code != http.StatusUnauthorized {
		t.Fatalf("first forged call = %d, want 401", code)
	}
	if code, c := call(flooded, forged); code != http.StatusTooManyRequests {
		t.Fatalf("forged call past the bucket = %d %q, want 429", code, c)
	}
	if code, c := call(other, e.secret); code != http.StatusTooManyRequests || c != "resource_exhausted" {
		t.Errorf("genuine call to %s from the refused address = %d %q, want 429 resource_exhausted, unchecked", other, code, c)
	}
}

// postBearer calls the Connect procedure at path over loopback, from
// 127.0.0.1, with bearer as its credential, and returns the status, the
// Connect error code (empty on success) and Retry-After.
func postBearer(t *testing.T, e *env, path, bearer string) (status int, code, retryAfter string) {
	t.Helper()
	r, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(`{}`))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer "+bearer)
	res, err := e.srv.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct{ Code string }
	b, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(b, &body)
	return res.StatusCode, body.Code, res.Header.Get("Retry-After")
}
