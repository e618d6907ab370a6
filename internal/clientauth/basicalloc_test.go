package clientauth

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/cache"
)

// TestSecretBasicAllocs: client_secret_basic allocates the Authorization
// header's decoding once, the cached client's copy and the result,
// nothing more (the secret's digest is an array on the stack): the header used to be decoded a second
// time to see whether it named a public client (docs/performance.md,
// "client_credentials, seventh pass"). Each part is measured here on the
// same request, so the bound follows their own counts.
func TestSecretBasicAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	store := newTestStore(t)
	pepper := make([]byte, 32)
	records := cache.New(store)
	a := &Authenticator{Store: store, Pepper: pepper, Cache: records}
	sec := secret.PrefixClientSecret.Generate()
	c := storage.Client{ID: "svc", OrgID: "o", PrincipalID: "p", AuthMethod: oauth2.AuthMethodClientSecretBasic,
		SecretDigest: secret.Digest(pepper, sec), Audiences: []string{"https://api.example"}, Scopes: []string{"read"}}
	if err := store.CreateClient(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	r, _ := http.NewRequest(http.MethodPost, "/", nil)
	r.SetBasicAuth(c.ID, sec)
	form := url.Values{"grant_type": {oauth2.GrantTypeClientCredentials}}
	ctx := t.Context()
	for range 2 { // the second fills the record cache
		if res, err := a.Authenticate(ctx, r, form, Required); err != nil || res.Client.ID != c.ID || res.Method != oauth2.AuthMethodClientSecretBasic {
			t.Fatalf("Authenticate = %+v, %v; want the client, by client_secret_basic", res, err)
		}
	}
	if _, cached, err := records.CachedClient(ctx, c.ID); err != nil || !cached {
		t.Fatalf("the client is not served from the cache (cached %v, %v)", cached, err)
	}
	header := testing.AllocsPerRun(100, func() { _, _, _ = r.BasicAuth() })
	record := testing.AllocsPerRun(100, func() { _, _, _ = records.CachedClient(ctx, c.ID) })
	total := testing.AllocsPerRun(100, func() {
		if _, err := a.Authenticate(ctx, r, form, Required); err != nil {
			t.Fatal(err)
		}
	})
	// The secret's digest is compared, never kept: it costs nothing
	// (secret.TestDigestSumAllocs).
	if parts := header + record + 1; total > parts {
		t.Errorf("Authenticate allocates %v times; the header's decoding %v, the cached record %v and the result 1 make %v",
			total, header, record, parts)
	}
}
