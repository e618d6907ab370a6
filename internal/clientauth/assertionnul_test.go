package clientauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest/pgtest"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
)

// TestAssertionJTIWithNULRefused (docs/security.md T-240): a client
// assertion whose jti holds a NUL character ("\u0000" in its JSON) is an
// assertion without a usable jti, invalid_client on both backends. Its
// jti became the used-jti key, which PostgreSQL refuses in text, so
// authentication was a storage failure: 503 temporarily_unavailable with
// Retry-After, which clients retry for ever, for an assertion that can
// never be spent; SQLite accepted it. The client's next assertion is
// served as before.
func TestAssertionJTIWithNULRefused(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			var store storage.Store
			if backend == "sqlite" {
				store = sqlitetest.NewStore(t)
			} else {
				s, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: pgtest.DSN(t)})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				if err := s.Migrate(t.Context()); err != nil {
					t.Fatal(err)
				}
				store = s
			}
			key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES256"}}})
			c := storage.Client{ID: "c1", OrgID: "o", PrincipalID: "p", AuthMethod: oauth2.AuthMethodPrivateKeyJWT, JWKS: jwks}
			if err := store.CreateClient(t.Context(), c); err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			a := &Authenticator{Store: store, Pepper: make([]byte, 32), TokenEndpoint: "https://sts.example/oauth2/token", Issuer: "https://sts.example"}
			try := func(jti string) error {
				s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
				raw, err := jwt.Signed(s).Claims(map[string]any{"iss": "c1", "sub": "c1", "aud": a.Issuer,
					"exp": now.Add(time.Minute).Unix(), "iat": now.Unix(), "jti": jti}).Serialize()
				if err != nil {
					t.Fatal(err)
				}
				f := url.Values{"client_assertion_type": {oauth2.ClientAssertionTypeJWTBearer}, "client_assertion": {raw}}
				r, _ := http.NewRequest(http.MethodPost, "/", nil)
				_, err = a.Authenticate(t.Context(), r, f, Required)
				return err
			}
			var oe *oauth2.Error
			if err := try("job\x00-" + rand.Text()); !errors.As(err, &oe) || oe.Code != oauth2.ErrorInvalidClient {
				t.Fatalf("assertion whose jti holds a NUL: Authenticate = %v, want invalid_client", err)
			}
			if err := try(rand.Text()); err != nil {
				t.Fatalf("then an assertion with a plain jti: %v", err)
			}
		})
	}
}
