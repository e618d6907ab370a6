package authorize

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/sts"
	"github.com/opensts/sts/internal/tokens"
)

type bobSignedIn struct{}

func (bobSignedIn) Principal(*http.Request) (string, bool, error)           { return "bob", true, nil }
func (bobSignedIn) SignIn(w http.ResponseWriter, _ *http.Request, _ string) { w.WriteHeader(299) }

// failingHints answers every hint with err.
type failingHints struct{ err error }

func (h failingHints) VerifyIDTokenHint(context.Context, string) (*tokens.IDClaims, error) {
	return nil, h.err
}

// TestIDTokenHintUnverifiable (docs/security.md T-109, F-45): a hint that
// cannot be checked because its signing key cannot be read now is a
// retryable temporarily_unavailable, never "not ours"; a hint that fails
// verification otherwise, its key unknown included, is invalid_request
// whoever it names, so the answer never depends on an unverified sub.
func TestIDTokenHintUnverifiable(t *testing.T) {
	st := bobsClientStore(t)
	hint := func(sub string) string {
		return "eyJhbGciOiJFUzI1NiIsImtpZCI6Im9sZCJ9." + base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, `{"sub":%q}`, sub)) + ".c2ln"
	}
	unknownKey := fmt.Errorf("kid %q: %w", "old", tokens.ErrUnknownKey)
	for _, tc := range []struct {
		name string
		err  error
		hint string
		want string // the error of the redirect
	}{
		{"key unreadable", sts.Wrap(sts.Unavailable, errors.New("db down"), "signing keys unavailable"), hint("bob"), oauth2.ErrorTemporarilyUnavailable},
		// A hint is never read unverified: a made-up kid and any sub would
		// otherwise tell whether that person is signed in (T-97).
		{"unknown key, another person", unknownKey, hint("ada"), oauth2.ErrorInvalidRequest},
		{"unknown key, the person signed in", unknownKey, hint("bob"), oauth2.ErrorInvalidRequest},
		{"bad signature", fmt.Errorf("sig: %w", tokens.ErrSignature), hint("bob"), oauth2.ErrorInvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &Handler{Store: st, SignedIn: bobSignedIn{}, Hints: failingHints{tc.err}, Pepper: []byte("0123456789abcdef0123456789abcdef")}
			mux := http.NewServeMux()
			h.Mount(mux)
			q := url.Values{"client_id": {"c1"}, "redirect_uri": {"https://rp.example/cb"}, "response_type": {"code"},
				"scope": {"openid"}, "state": {"s"}, "nonce": {"n"},
				"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"},
				"id_token_hint": {tc.hint}}
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, Path+"?"+q.Encode(), nil))
			loc, _ := url.Parse(rec.Header().Get("Location"))
			got := ""
			if loc != nil {
				got = loc.Query().Get("error")
			}
			if got != tc.want {
				t.Errorf("= %d, error %q (%s); want error %q", rec.Code, got, rec.Header().Get("Location"), tc.want)
			}
		})
	}
}
