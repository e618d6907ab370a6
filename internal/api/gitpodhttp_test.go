package api

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
	"github.com/opensts/sts/internal/pat"
)

// stainlessList sends a List call the way the Stainless SDKs do: POST with
// a JSON body and the page size and cursor as query parameters.
func stainlessList(t *testing.T, e *env, path string, query url.Values, body string) (int, map[string]any) {
	t.Helper()
	u := e.srv.URL + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-Stainless-Lang", "js")
	req.Header.Set("X-Stainless-Retry-Count", "0")
	req.Header.Set("Authorization", "Bearer "+e.admin)
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: body %q is not JSON", path, b)
	}
	return res.StatusCode, m
}

// TestStainlessQueryPagination posts exactly what @gitpod/sdk sends for
// users.pats.list — an empty body with ?pageSize= — and follows
// pagination.nextToken with ?token= to the end, as its auto-pager does.
// Before the query was read, pageSize was ignored and every page was the
// first: the pager looped forever.
func TestStainlessQueryPagination(t *testing.T) {
	t.Parallel()
	e := newAuditEnvOn(t, newSQLiteStore(t))
	adm, err := e.pats.Authenticate(t.Context(), e.admin)
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		e.mintPAT(adm.Principal.ID, pat.ScopeIdentityRead)
	}
	const path = "/api/gitpod.v1.UserService/ListPersonalAccessTokens"
	seen := map[string]bool{}
	q := url.Values{"pageSize": {"2"}}
	pages := 0
	for pages = 1; pages <= 10; pages++ {
		code, m := stainlessList(t, e, path, q, `{}`)
		if code != 200 {
			t.Fatalf("page %d: %d %v", pages, code, m)
		}
		list, _ := m["personalAccessTokens"].([]any)
		if len(list) > 2 {
			t.Fatalf("page %d has %d tokens; pageSize=2 in the query was ignored", pages, len(list))
		}
		for _, p := range list {
			id, _ := p.(map[string]any)["id"].(string)
			if seen[id] {
				t.Fatalf("page %d repeats token %s", pages, id)
			}
			seen[id] = true
		}
		next, _ := m["pagination"].(map[string]any)["nextToken"].(string)
		if next == "" {
			break
		}
		q.Set("token", next)
	}
	if len(seen) != 5 || pages != 3 {
		t.Errorf("%d tokens in %d pages, want 5 in 3", len(seen), pages)
	}

	// The body wins over the query.
	code, m := stainlessList(t, e, path, url.Values{"pageSize": {"3"}}, `{"pagination":{"pageSize":1}}`)
	if list, _ := m["personalAccessTokens"].([]any); code != 200 || len(list) != 1 {
		t.Errorf("body pageSize 1, query 3: %d %v", code, m)
	}
	// Bad input names the parameter and is refused.
	code, m = stainlessList(t, e, path, url.Values{"pageSize": {"many"}}, `{}`)
	if code != 400 || m["code"] != "invalid_argument" || !strings.Contains(m["message"].(string), "pageSize") {
		t.Errorf("pageSize=many: %d %v", code, m)
	}
	// A size past int32 is as large a page as the body can ask for, not
	// "not a non-negative integer"; past it the other way, refused.
	code, m = stainlessList(t, e, path, url.Values{"pageSize": {"99999999999"}}, `{}`)
	big, _ := stainlessList(t, e, path, nil, `{"pagination":{"pageSize":2147483647}}`)
	if list, _ := m["personalAccessTokens"].([]any); code != 200 || big != 200 || len(list) != 5 {
		t.Errorf("pageSize=99999999999: %d %v (the body's largest size: %d), want the one page of 5", code, m, big)
	}
	code, m = stainlessList(t, e, path, url.Values{"pageSize": {"-99999999999"}}, `{}`)
	if code != 400 || m["code"] != "invalid_argument" {
		t.Errorf("pageSize=-99999999999: %d %v", code, m)
	}
	code, m = stainlessList(t, e, path, url.Values{"token": {"not-a-cursor"}}, `{}`)
	if code != 400 || m["code"] != "invalid_argument" {
		t.Errorf("token=not-a-cursor: %d %v", code, m)
	}

	// The same mechanism serves sts.v1 lists (top-level page_size and
	// page_token): the audit trail, one event a page.
	code, m = stainlessList(t, e, "/api/sts.v1.AuditService/ListAuditEvents", url.Values{"pageSize": {"1"}}, `{}`)
	events, _ := m["events"].([]any)
	next, _ := m["nextPageToken"].(string)
	if code != 200 || len(events) != 1 || next == "" {
		t.Fatalf("ListAuditEvents ?pageSize=1: %d %v", code, m)
	}
	code, m = stainlessList(t, e, "/api/sts.v1.AuditService/ListAuditEvents", url.Values{"pageSize": {"1"}, "token": {next}}, `{}`)
	if events2, _ := m["events"].([]any); code != 200 || len(events2) != 1 ||
		events2[0].(map[string]any)["id"] == events[0].(map[string]any)["id"] {
		t.Errorf("ListAuditEvents second page: %d %v", code, m)
	}
}

// methodRecorder remembers the HTTP method of every request per path.
type methodRecorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	seen map[string]string
}

func (r *methodRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.seen[req.URL.Path] = req.Method
	r.mu.Unlock()
	return r.next.RoundTrip(req)
}

// TestConnectGET calls the side-effect-free RPCs with Connect clients that
// use HTTP GET for them (connect.WithHTTPGet), in both codecs, and checks
// GET was really sent, while a change is still a POST and a GET of a
// change is refused.
func TestConnectGET(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	rec := &methodRecorder{next: e.srv.Client().Transport, seen: map[string]string{}}
	hc := &http.Client{Transport: rec}
	id, err := e.pats.Authenticate(t.Context(), e.secret)
	if err != nil {
		t.Fatal(err)
	}
	for name, opts := range map[string][]connect.ClientOption{
		"proto": {connect.WithHTTPGet()},
		"json":  {connect.WithHTTPGet(), connect.WithProtoJSON()},
	} {
		t.Run(name, func(t *testing.T) {
			idc := gitpodv1connect.NewIdentityServiceClient(hc, e.srv.URL+"/api", opts...)
			uc := gitpodv1connect.NewUserServiceClient(hc, e.srv.URL, opts...)
			if r, err := idc.GetAuthenticatedIdentity(as(e.secret), &gitpodv1.GetAuthenticatedIdentityRequest{}); err != nil || r.GetSubject().GetId() != e.user.ID {
				t.Errorf("GetAuthenticatedIdentity = %v, %v", r, err)
			}
			if r, err := uc.GetAuthenticatedUser(as(e.secret), &gitpodv1.GetAuthenticatedUserRequest{}); err != nil || r.GetUser().GetId() != e.user.ID {
				t.Errorf("GetAuthenticatedUser = %v, %v", r, err)
			}
			if r, err := uc.GetUser(as(e.secret), &gitpodv1.GetUserRequest{UserId: e.user.ID}); err != nil || r.GetUser().GetId() != e.user.ID {
				t.Errorf("GetUser = %v, %v", r, err)
			}
			l, err := uc.ListPersonalAccessTokens(as(e.secret), &gitpodv1.ListPersonalAccessTokensRequest{Pagination: &gitpodv1.PaginationRequest{PageSize: 10}})
			if err != nil || len(l.GetPersonalAccessTokens()) == 0 {
				t.Fatalf("ListPersonalAccessTokens = %v, %v", l, err)
			}
			if r, err := uc.GetPersonalAccessToken(as(e.secret), &gitpodv1.GetPersonalAccessTokenRequest{PersonalAccessTokenId: id.TokenID}); err != nil || r.GetPat().GetId() != id.TokenID {
				t.Errorf("GetPersonalAccessToken = %v, %v", r, err)
			}
			_, err = idc.GetAuthenticatedIdentity(as(""), &gitpodv1.GetAuthenticatedIdentityRequest{})
			wantCode(t, "GET without credential", err, connect.CodeUnauthenticated)
			if _, err := uc.CreatePersonalAccessToken(as(e.secret), &gitpodv1.CreatePersonalAccessTokenRequest{ValidFor: durationpb.New(48 * time.Hour), ReadOnly: true}); err != nil {
				t.Errorf("CreatePersonalAccessToken: %v", err)
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			for _, p := range []string{
				"/api" + gitpodv1connect.IdentityServiceGetAuthenticatedIdentityProcedure,
				gitpodv1connect.UserServiceGetAuthenticatedUserProcedure,
				gitpodv1connect.UserServiceGetUserProcedure,
				gitpodv1connect.UserServiceListPersonalAccessTokensProcedure,
				gitpodv1connect.UserServiceGetPersonalAccessTokenProcedure,
			} {
				if rec.seen[p] != http.MethodGet {
					t.Errorf("%s sent as %q, want GET", p, rec.seen[p])
				}
			}
			if m := rec.seen[gitpodv1connect.UserServiceCreatePersonalAccessTokenProcedure]; m != http.MethodPost {
				t.Errorf("CreatePersonalAccessToken sent as %q, want POST", m)
			}
		})
	}
	// A plain GET, as a browser or curl sends it; and a GET of a change is
	// refused.
	get := func(proc string) int {
		u := e.srv.URL + "/api" + proc + "?encoding=json&message=%7B%7D&connect=v1"
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("Authorization", "Bearer "+e.secret)
		res, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if c := get(gitpodv1connect.IdentityServiceGetAuthenticatedIdentityProcedure); c != 200 {
		t.Errorf("curl GET GetAuthenticatedIdentity: %d", c)
	}
	if c := get(gitpodv1connect.UserServiceDeletePersonalAccessTokenProcedure); c != http.StatusMethodNotAllowed {
		t.Errorf("GET DeletePersonalAccessToken: %d, want 405", c)
	}
}
