package grants

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/opensts/sts/internal/oauth2"
)

// TestResponseAppendJSON: the token response written without reflection
// is json.Marshal's, byte for byte, for every optional field set or not
// and strings encoding/json escapes; and oauth2.WriteJSON sends it with
// its newline and headers as before.
func TestResponseAppendJSON(t *testing.T) {
	tricky := []string{"", "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJzIn0.c2ln", "urn:ietf:params:oauth:token-type:access_token",
		"Bearer", "N_A", "read write", `q"uote`, `back\slash`, "<&>", "a&b", "a>b", "a<b", "\x00\n\x7f", "é日本", "\u2028", "bad\xff"}
	rng := rand.New(rand.NewPCG(3, 4))
	pick := func() string { return tricky[rng.IntN(len(tricky))] }
	for range 2000 {
		r := &Response{AccessToken: pick(), IssuedTokenType: pick(), TokenType: pick(), ExpiresIn: rng.Int64() - rng.Int64(),
			Scope: pick(), RefreshToken: pick(), IDToken: pick()}
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.AppendJSON(nil); !bytes.Equal(got, want) {
			t.Fatalf("AppendJSON(%+v)\n got %s\nwant %s", r, got, want)
		}
		w := httptest.NewRecorder()
		oauth2.WriteJSON(w, http.StatusOK, r)
		if got := w.Body.Bytes(); !bytes.Equal(got, append(want, '\n')) {
			t.Fatalf("WriteJSON(%+v) = %s, want %s", r, got, want)
		}
		if w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("headers %v", w.Header())
		}
	}
}
