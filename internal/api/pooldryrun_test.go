package api

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
)

// TestDryRunJudgesWhatIsIssued (docs/security.md T-185): PoolService/
// TestPool judges the scope and audience an exchange would issue, as the
// exchange's condition does: a request naming no scope is judged on the
// pool's default (within the named client's scopes), Google's default
// scope on the pool's google_default_scopes, no audience on the default
// one, a resource as an audience. The dry run judged the parameters as
// sent and said allowed for tokens the exchange refuses. One environment
// for every case.
func TestDryRunJudgesWhatIsIssued(t *testing.T) {
	t.Parallel()
	e := newPoolEnvOn(t, newSQLiteStore(t))
	c := e.poolClient(e.srv.URL)
	ctx := as(e.admin)
	const kafka = "https://kafka.example"
	p := e.validPool("dry")
	p.Scopes, p.Audiences, p.GoogleDefaultScopes = []string{"read", "deploy"}, []string{kafka}, []string{"read"}
	p.Condition = `request.scope.all(s, s == "read") && request.audience.all(a, a == "` + kafka + `")`
	if _, err := c.CreatePool(ctx, p); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateProvider(ctx, e.validProvider("dry", "gh")); err != nil {
		t.Fatal(err)
	}
	readOnly := e.dryRunClient(t, e.org.ID, "dry")

	tok := e.sign(t, nil, "repo:acme/app", "acme")
	for _, tc := range []struct {
		name    string
		req     *stsv1.TestPoolRequest
		allowed bool
		judged  string // the request step's detail
	}{
		{"no scope: the ceiling, deploy included",
			&stsv1.TestPoolRequest{Audiences: []string{kafka}}, false, `scope ["read" "deploy"]`},
		{"no audience: the default one",
			&stsv1.TestPoolRequest{Scopes: []string{"read"}}, false, `audience ["` + testIssuer + `"]`},
		{"a resource is an audience",
			&stsv1.TestPoolRequest{Scopes: []string{"read"}, Resources: []string{kafka}}, true, `audience ["` + kafka + `"]`},
		{"no scope, a client of read: the default within its scopes",
			&stsv1.TestPoolRequest{Audiences: []string{kafka}, ClientId: readOnly}, true, `scope ["read"]`},
		{"Google's default scope: the pool's google_default_scopes",
			&stsv1.TestPoolRequest{Audiences: []string{kafka}, Scopes: []string{googleDefaultScope}}, true, `scope ["read"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.PoolId, tc.req.SubjectToken = "dry", tok
			res, err := c.TestPool(ctx, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if res.GetAllowed() != tc.allowed {
				t.Errorf("allowed = %v (%s), want %v, as the exchange judges", res.GetAllowed(), res.GetReason(), tc.allowed)
			}
			if d := stepDetail(res, "request"); !strings.Contains(d, tc.judged) {
				t.Errorf("request step %q, want it to show %s", d, tc.judged)
			}
		})
	}

	// A client the pool's organization has no such client of is bad
	// input, whether it exists elsewhere or not: its scopes are not shown.
	if err := e.store.CreateOrganization(context.Background(), storage.Organization{ID: "globex", Name: "Globex", Tier: "free"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{storage.NewID(), e.dryRunClient(t, "globex", "dry")} {
		_, err := c.TestPool(ctx, &stsv1.TestPoolRequest{PoolId: "dry", SubjectToken: tok, ClientId: id})
		if ce := new(connect.Error); !errors.As(err, &ce) || ce.Code() != connect.CodeInvalidArgument {
			t.Errorf("client_id %s: %v, want invalid_argument", id, err)
		}
	}
}

// googleDefaultScope is what Google's client libraries ask for when their
// user sets none.
const googleDefaultScope = "https://www.googleapis.com/auth/cloud-platform"

// dryRunClient creates a token-exchange client of org for pool with scope
// read, audiences kafka.example and the issuer, and returns its ID. It is
// confidential: the exchange narrows the default scope to an authenticated
// client's only, a public one being an anonymous caller there.
func (e *poolEnv) dryRunClient(t *testing.T, org, pool string) string {
	t.Helper()
	sa, err := CreatePrincipal(context.Background(), e.store, testCaller, org, storage.PrincipalServiceAccount, "dry-"+storage.NewID()[:8], "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cl := storage.Client{ID: storage.NewID(), OrgID: org, PrincipalID: sa.ID, AuthMethod: oauth2.AuthMethodClientSecretBasic,
		GrantTypes: []string{oauth2.GrantTypeTokenExchange}, Pools: []string{pool}, Scopes: []string{"read"},
		Audiences: []string{"https://kafka.example", testIssuer}}
	if err := e.store.CreateClient(context.Background(), cl); err != nil {
		t.Fatal(err)
	}
	return cl.ID
}

func stepDetail(res *stsv1.TestPoolResponse, name string) string {
	for _, st := range res.GetSteps() {
		if st.GetName() == name {
			return st.GetDetail()
		}
	}
	return ""
}
