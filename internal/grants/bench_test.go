package grants

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/ratelimit"
)

// BenchmarkExchange measures one RFC 8693 exchange through the handler
// (no network): RS256 subject token in, ES256 access token out, the pool's
// CEL condition and mapping, rate limits and the asynchronous audit writer
// on. Run: go test -run ^$ -bench Exchange -benchmem ./internal/grants
func BenchmarkExchange(b *testing.B) {
	e := newEnv(b, nil)
	w := &audit.Writer{Store: e.store}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	e.handler.Audit = w
	e.handler.Observe = nil
	e.handler.Limits = ratelimit.Limits{
		PerIP:   ratelimit.NewMemory(ratelimit.Rule{Rate: 1e9, Burst: 1 << 30}, ratelimit.MemoryOptions{}),
		PerPool: ratelimit.NewMemory(ratelimit.Rule{Rate: 1e9, Burst: 1 << 30}, ratelimit.MemoryOptions{}),
	}
	mux := http.NewServeMux()
	e.handler.Mount(mux)

	const distinct = 256
	now := time.Now()
	bodies := make([]string, distinct)
	for i := range bodies {
		c := e.issuer.claims(now, "user-"+string(rune('a'+i%26))+string(rune('a'+i/26)))
		bodies[i] = exchangeForm(e.issuer.mint(b, "RS256", c)).Encode()
	}
	// Warm the key cache and the registry.
	serve(b, mux, bodies[0])

	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		serve(b, mux, bodies[i%distinct])
	}
}

func serve(b *testing.B, h http.Handler, body string) {
	r := httptest.NewRequest(http.MethodPost, PathToken, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != http.StatusOK {
		b.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
}

// BenchmarkBare is the reference of docs/performance.md in the same harness: a
// handler that parses the same form, verifies one RS256 JWT and signs one
// ES256 JWT with go-jose, and nothing else. Compare ns/op side by side:
// go test -run ^$ -bench 'Exchange|Bare' -benchmem ./internal/grants
func BenchmarkBare(b *testing.B) {
	k := testKeys()
	iss := newTestIssuer(b)
	body := exchangeForm(iss.mint(b, "RS256", iss.claims(time.Now(), "u"))).Encode()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.ec}, (&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		b.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		tok, err := jwt.ParseSigned(r.PostForm.Get("subject_token"), []jose.SignatureAlgorithm{jose.RS256})
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		var c jwt.Claims
		if err := tok.Claims(k.rsa.Public(), &c); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		out, err := jwt.Signed(signer).Claims(jwt.Claims{Subject: c.Subject, Expiry: jwt.NewNumericDate(time.Now().Add(15 * time.Minute))}).Serialize()
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": out, "token_type": "Bearer", "expires_in": 900})
	})
	serve(b, h, body)
	b.ReportAllocs()
	for b.Loop() {
		serve(b, h, body)
	}
}
