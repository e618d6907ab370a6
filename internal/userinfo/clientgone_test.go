package userinfo_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/logbuf"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
	"github.com/opensts/sts/internal/ststest/stall"
	"github.com/opensts/sts/internal/tokens"
	"github.com/opensts/sts/internal/userinfo"
)

// stallingPrincipals holds GetPrincipal until the request's context ends,
// after telling its gate (which fails it at once when storage is down).
type stallingPrincipals struct {
	storage.PrincipalStore
	gate *stall.Gate
}

func (s stallingPrincipals) GetPrincipal(ctx context.Context, id string) (storage.Principal, error) {
	return storage.Principal{}, s.gate.Hold(ctx)
}

// TestClientGoneIsNotAnOutage: a caller that goes away while UserInfo
// looks its principal up is not logged as "userinfo: principal lookup
// failed" at ERROR, the line an operator reads as a database outage; a
// lookup that fails for a caller still there is, and answers 503
// (docs/security.md F-107).
func TestClientGoneIsNotAnOutage(t *testing.T) {
	const issuer = "https://sts.example"
	s := sqlitetest.NewStore(t)
	keys, err := signer.NewStatic(signer.ES256)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tok, _, err := (&tokens.Issuer{Signer: keys, IssuerURL: issuer}).MintAccessToken(t.Context(), tokens.AccessClaims{
		Subject: "p1", Audience: tokens.Audience{"https://api.example"}, Expiry: tokens.NewNumericDate(now.Add(10 * time.Minute)),
		ClientID: "a", Scope: "openid", OrgID: "o1", Principal: "p1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, down := range []bool{false, true} {
		logs := &logbuf.Buffer{}
		gate := stall.For(down)
		h := &userinfo.Handler{
			Tokens:     &tokens.Verifier{Keys: keys, Issuer: issuer, Revocations: tokens.StoreRevocations{Store: s}},
			Principals: stallingPrincipals{PrincipalStore: s, gate: gate},
			Logger:     slog.New(slog.NewTextHandler(logs, nil)),
		}
		mux := http.NewServeMux()
		h.Mount(mux)
		srv := httptest.NewServer(mux)
		ctx, cancel := gate.Context(t.Context())
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+userinfo.Path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		stall.Call(t, req, down, "userinfo")
		cancel()
		srv.Close() // waits for the handler to return
		stall.Logged(t, logs.String(), `level=ERROR msg="userinfo: principal lookup failed"`, down, "userinfo")
	}
}
