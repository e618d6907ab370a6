package api

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// flakyPATs is a source store whose PAT reads fail, as a storage outage
// does, while down is set.
type flakyPATs struct {
	tokens.SourceStore
	down *atomic.Bool
}

func (f flakyPATs) GetPAT(ctx context.Context, id string) (storage.PAT, error) {
	if f.down.Load() {
		return storage.PAT{}, errors.New("connection refused")
	}
	return f.SourceStore.GetPAT(ctx, id)
}

// TestExchangeTokenSurvivesTransientFailures: when storage cannot say
// whether what an exchange token derives from stands (the source check of
// the token it would buy, A-67), ExchangeToken answers unavailable with
// Retry-After and the exchange token stays unspent: the same exchange
// token is redeemed once storage answers again. A definite refusal (the
// PAT that created it deleted) still spends it (docs/security.md A-70).
func TestExchangeTokenSurvivesTransientFailures(t *testing.T) {
	var down atomic.Bool
	e := newEnv(t, func(h *Handler) {
		s := tokens.NewStoreSources(flakyPATs{h.Store.(tokens.SourceStore), &down}, nil)
		s.TTL = 0
		h.Verifier.Sources = s
	})
	c := e.clients(e.srv.URL)
	create := func() string {
		t.Helper()
		x, err := c.principal.CreateExchangeToken(as(e.admin), &stsv1.CreateExchangeTokenRequest{
			PrincipalId: e.user.ID, ValidFor: durationpb.New(5 * time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		return x.GetExchangeToken()
	}
	redeem := func(x string) (*gitpodv1.ExchangeTokenResponse, error) {
		return c.identity.ExchangeToken(as(""), &gitpodv1.ExchangeTokenRequest{ExchangeToken: x})
	}

	x := create()
	down.Store(true)
	_, err := redeem(x)
	wantCode(t, "ExchangeToken while the creator's PAT cannot be read", err, connect.CodeUnavailable)
	if ce := new(connect.Error); !errors.As(err, &ce) || ce.Meta().Get("Retry-After") == "" {
		t.Errorf("unavailable answer without Retry-After: %v", err)
	}
	down.Store(false)
	res, err := redeem(x)
	if err != nil {
		t.Fatalf("ExchangeToken once storage answers again: %v, want the same exchange token redeemed", err)
	}
	if _, err := c.identity.GetAuthenticatedIdentity(as(res.GetAccessToken()), &gitpodv1.GetAuthenticatedIdentityRequest{}); err != nil {
		t.Errorf("the bought token does not authenticate: %v", err)
	}
	_, err = redeem(x)
	wantCode(t, "ExchangeToken of the spent exchange token", err, connect.CodeUnauthenticated)
}
