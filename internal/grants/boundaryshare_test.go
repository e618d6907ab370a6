package grants

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/tokens"
)

// TestBoundaryShareExact (docs/security.md T-199): what a Credential Access
// Boundary adds to an issued token is counted whole, the "cab" member's
// name and separators with its JSON, so the token that would fit without
// the boundary is told apart at the byte: the boundary is refused naming
// options exactly when the token without it is within the verifier's
// size. The estimate left out the name and separators, about ten bytes
// once encoded, so a boundary just at that edge got T-166's subject-token
// answer.
func TestBoundaryShareExact(t *testing.T) {
	e := newEnv(t, nil)
	for _, n := range []int{1, 2, 3, 4, 5, 6, 40, 41, 42, 43, 64} {
		var perms []string
		for i := range n {
			perms = append(perms, `"inRole:roles/r`+strconv.Itoa(i)+`"`)
		}
		opts := `{"accessBoundary":{"accessBoundaryRules":[{"availableResource":"//storage.example/buckets/b","availablePermissions":[` + strings.Join(perms, ",") + `]}]}}`
		o, err := parseOptions(opts)
		if err != nil {
			t.Fatal(err)
		}
		req := &Request{Boundary: o.boundary}
		c := tokens.AccessClaims{Subject: "repo:acme/app", Audience: tokens.Audience{stsIssuer}, Scope: "read",
			Pool: "ci", Provider: "github", Expiry: tokens.NewNumericDate(time.Now().Add(30 * time.Minute))}
		without, _, err := e.grant.Issuer.MintAccessToken(t.Context(), c)
		if err != nil {
			t.Fatal(err)
		}
		c.CAB = req.Boundary.Claim()
		with, c2, err := e.grant.Issuer.MintAccessToken(t.Context(), c)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(with)-boundaryShare(c2.CAB, with), len(without); got != want {
			t.Errorf("%d permissions: token less the boundary's share is %d bytes, the token without it %d", n, got, want)
		}
	}
}
