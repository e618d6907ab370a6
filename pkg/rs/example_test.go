package rs_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/opensts/sts/pkg/rs"
)

// A resource server (here: an object store at https://storage.example)
// accepts sts access tokens and honours the Credential Access Boundary a
// client asked for at Google STS's /v1/token. The httptest server and the
// hand-signed token stand in for sts; in production Issuer is the sts URL
// and the token comes from the client's Authorization header.
func Example() {
	// Stand-in for sts: a signing key and the JWKS it publishes.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwks := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}}
	sts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(jwks)
	}))
	defer sts.Close()

	// A token as sts issues it: typ at+jwt, our audience, and a boundary
	// that leaves only reading the "reports" bucket.
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", "k1"))
	now := time.Now()
	raw, _ := jwt.Signed(signer).Claims(map[string]any{
		"iss": sts.URL, "sub": "ci-bot", "aud": "https://storage.example",
		"iat": now.Unix(), "exp": now.Add(15 * time.Minute).Unix(), "jti": "j1",
		"client_id": "ci", "scope": "storage", "org_id": "acme",
		"cab": map[string]any{"accessBoundaryRules": []any{map[string]any{
			"availableResource":    "//storage.example/buckets/reports",
			"availablePermissions": []string{"storage.objects.get"},
		}}},
	}).Serialize()

	v := &rs.Verifier{Issuer: sts.URL, Audience: "https://storage.example"}
	ctx := context.Background()
	claims, err := v.Verify(ctx, raw)
	if err != nil {
		fmt.Println("refused:", err)
		return
	}
	fmt.Println("subject:", claims.Subject, "org:", claims.OrgID, "scope:", claims.Scope)
	fmt.Println("read a report:", claims.Allowed("//storage.example/buckets/reports/objects/q3.csv", "storage.objects.get"))
	fmt.Println("delete a report:", claims.Allowed("//storage.example/buckets/reports/objects/q3.csv", "storage.objects.delete"))
	fmt.Println("read payroll:", claims.Allowed("//storage.example/buckets/payroll/objects/2026.csv", "storage.objects.get"))

	// A token that does not verify is an error, never a "no".
	_, err = v.Allowed(ctx, raw[:len(raw)-4]+"AAAA", "//storage.example/buckets/reports", "storage.objects.get")
	fmt.Println("tampered token refused:", errors.Is(err, rs.ErrInvalidToken))

	// Output:
	// subject: ci-bot org: acme scope: storage
	// read a report: true
	// delete a report: false
	// read payroll: false
	// tampered token refused: true
}
