package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/logbuf"
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
	t.Parallel()
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

// TestExchangeTokenSurvivesAuditOutage: in audit.mode required, when the
// issuance's event cannot be stored, ExchangeToken withholds the token
// and answers unavailable with Retry-After (D-11), and the exchange token
// stays unspent: the same exchange token is redeemed once the audit store
// answers again, with one issued event, and is spent then
// (docs/security.md A-70).
func TestExchangeTokenSurvivesAuditOutage(t *testing.T) {
	t.Parallel()
	sa := &stubTokenAudit{fail: errors.New("audit: commit timed out")}
	e := newEnv(t, func(h *Handler) { h.SetTokenAudit(sa, true) })
	c := e.clients(e.srv.URL)
	x, err := c.principal.CreateExchangeToken(as(e.admin), &stsv1.CreateExchangeTokenRequest{
		PrincipalId: e.user.ID, ValidFor: durationpb.New(5 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	redeem := func() (*gitpodv1.ExchangeTokenResponse, error) {
		return c.identity.ExchangeToken(as(""), &gitpodv1.ExchangeTokenRequest{ExchangeToken: x.GetExchangeToken()})
	}
	res, err := redeem()
	wantCode(t, "ExchangeToken while the audit store is down", err, connect.CodeUnavailable)
	if ce := new(connect.Error); !errors.As(err, &ce) || ce.Meta().Get("Retry-After") == "" {
		t.Errorf("unavailable answer without Retry-After: %v", err)
	}
	if res.GetAccessToken() != "" {
		t.Error("a token left although its audit event was not stored")
	}
	sa.mu.Lock()
	sa.fail = nil
	sa.mu.Unlock()
	res, err = redeem()
	if err != nil {
		t.Fatalf("ExchangeToken once the audit store answers again: %v, want the same exchange token redeemed", err)
	}
	if _, err := c.identity.GetAuthenticatedIdentity(as(res.GetAccessToken()), &gitpodv1.GetAuthenticatedIdentityRequest{}); err != nil {
		t.Errorf("the bought token does not authenticate: %v", err)
	}
	var issued, unavailable int
	for _, ev := range sa.events() {
		switch {
		case ev.Action != ActionTokenExchange:
		case ev.Outcome == outcomeIssued:
			issued++
		case strings.Contains(ev.Detail, `"reason":"audit_unavailable"`):
			unavailable++
		}
	}
	if issued != 1 || unavailable != 1 {
		t.Errorf("events: %d issued, %d audit_unavailable; want one each: %+v", issued, unavailable, sa.events())
	}
	_, err = redeem()
	wantCode(t, "ExchangeToken of the spent exchange token", err, connect.CodeUnauthenticated)
}

// spendFails is a store whose ConsumeExchangeToken fails, as a storage
// outage does, while down is set; reads still answer.
type spendFails struct {
	storage.Store
	down *atomic.Bool
}

func (s spendFails) ConsumeExchangeToken(ctx context.Context, digest []byte, now time.Time) (storage.ExchangeToken, error) {
	if s.down.Load() {
		return storage.ExchangeToken{}, errors.New("connection refused")
	}
	return s.Store.ConsumeExchangeToken(ctx, digest, now)
}

// TestExchangeTokenWithheldWhenSpendFails: in audit.mode required the
// issuance's event is committed before the exchange token is spent
// when the spend then fails, the token is withheld (unavailable,
// the exchange token kept) and a second event says so with the same jti,
// so the trail never shows an issued token without saying it was not
// sent.
func TestExchangeTokenWithheldWhenSpendFails(t *testing.T) {
	t.Parallel()
	var down atomic.Bool
	sa := &stubTokenAudit{}
	e := newEnvOn(t, spendFails{newSQLiteStore(t), &down}, func(h *Handler) { h.SetTokenAudit(sa, true) })
	c := e.clients(e.srv.URL)
	x, err := c.principal.CreateExchangeToken(as(e.admin), &stsv1.CreateExchangeTokenRequest{
		PrincipalId: e.user.ID, ValidFor: durationpb.New(5 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	down.Store(true)
	res, err := c.identity.ExchangeToken(as(""), &gitpodv1.ExchangeTokenRequest{ExchangeToken: x.GetExchangeToken()})
	wantCode(t, "ExchangeToken while the spend fails", err, connect.CodeUnavailable)
	if res.GetAccessToken() != "" {
		t.Error("a token left although the exchange token was not spent")
	}
	var evs []storage.AuditEvent
	for _, ev := range sa.events() {
		if ev.Action == ActionTokenExchange {
			evs = append(evs, ev)
		}
	}
	jti := func(ev storage.AuditEvent) string {
		var d struct{ JTI string }
		_ = json.Unmarshal([]byte(ev.Detail), &d)
		return d.JTI
	}
	if len(evs) != 2 || evs[0].Outcome != outcomeIssued || evs[1].Outcome != outcomeError ||
		jti(evs[0]) == "" || jti(evs[1]) != jti(evs[0]) ||
		!strings.Contains(evs[1].Detail, `"reason":"withheld"`) || !strings.Contains(evs[1].Detail, `"src":`) {
		t.Errorf("events %+v; want the issued one, then an error naming the same jti, reason withheld, with src", evs)
	}
	down.Store(false)
	if _, err := c.identity.ExchangeToken(as(""), &gitpodv1.ExchangeTokenRequest{ExchangeToken: x.GetExchangeToken()}); err != nil {
		t.Errorf("ExchangeToken once storage answers again: %v, want the same exchange token redeemed", err)
	}
}

// spendGate holds every ConsumeExchangeToken until n callers reached it,
// so that n concurrent redemptions have all passed their check (signed,
// and in audit.mode required committed their issued event) before any
// spends.
type spendGate struct {
	storage.Store
	n       int32
	arrived atomic.Int32
	all     chan struct{}
	once    sync.Once
}

func (s *spendGate) ConsumeExchangeToken(ctx context.Context, digest []byte, now time.Time) (storage.ExchangeToken, error) {
	if s.arrived.Add(1) == s.n {
		s.once.Do(func() { close(s.all) })
	}
	select {
	case <-s.all:
	case <-time.After(5 * time.Second):
	}
	return s.Store.ConsumeExchangeToken(ctx, digest, now)
}

// TestConcurrentRedemptionsWithheldInTheTrail: n redemptions of one
// exchange token race in audit.mode required. Each commits an issued
// event before the spend decides the winner, so the trail must say
// which were not sent: one token is delivered, and every other issued
// jti is followed by an error event with reason withheld, keeping the
// sources it carried, not a refusal with reason unknown, which reads as a
// replay (docs/security.md D-18). The log says the token was spent since
// it was read, not that a PAT was unknown.
func TestConcurrentRedemptionsWithheldInTheTrail(t *testing.T) {
	t.Parallel()
	const n = 4
	sa := &stubTokenAudit{}
	var logs syncBuffer
	g := &spendGate{Store: newSQLiteStore(t), n: n, all: make(chan struct{})}
	e := newEnvOn(t, g, func(h *Handler) {
		h.SetTokenAudit(sa, true)
		h.PATs.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	c := e.clients(e.srv.URL)
	x, err := c.principal.CreateExchangeToken(as(e.admin), &stsv1.CreateExchangeTokenRequest{
		PrincipalId: e.user.ID, ValidFor: durationpb.New(5 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	delivered := make(chan string, n)
	for range n {
		wg.Go(func() {
			res, err := c.identity.ExchangeToken(as(""), &gitpodv1.ExchangeTokenRequest{ExchangeToken: x.GetExchangeToken()})
			if err == nil {
				delivered <- res.GetAccessToken()
				return
			}
			wantCode(t, "a redemption that lost the race", err, connect.CodeUnauthenticated)
		})
	}
	wg.Wait()
	close(delivered)
	var toks []string
	for tok := range delivered {
		toks = append(toks, tok)
	}
	if len(toks) != 1 {
		t.Fatalf("%d tokens delivered, want 1", len(toks))
	}
	got, err := e.h.Verifier.VerifyAccessTokenAnyAudience(t.Context(), toks[0])
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		JTI, Reason string
		Src         json.RawMessage
	}
	issued, withheld := map[string]bool{}, map[string]bool{}
	for _, ev := range sa.events() {
		if ev.Action != ActionTokenExchange {
			continue
		}
		d.JTI, d.Reason, d.Src = "", "", nil
		if err := json.Unmarshal([]byte(ev.Detail), &d); err != nil {
			t.Fatal(err)
		}
		switch {
		case ev.Outcome == outcomeIssued && d.JTI != "":
			issued[d.JTI] = true
		case ev.Outcome == outcomeError && d.Reason == reasonWithheld && issued[d.JTI] && len(d.Src) > 2:
			withheld[d.JTI] = true
		default:
			t.Errorf("event %s %s: want issued, or error withheld naming an issued jti, with src", ev.Outcome, ev.Detail)
		}
	}
	var sent []string
	for j := range issued {
		if !withheld[j] {
			sent = append(sent, j)
		}
	}
	if len(issued) != n || len(sent) != 1 || sent[0] != got.ID {
		t.Errorf("trail: %d issued, delivered by it %v; want %d issued and only %s delivered", len(issued), sent, n, got.ID)
	}
	if l := logs.String(); strings.Contains(l, "personal access token rejected") || strings.Count(l, "spent since it was read") != n-1 {
		t.Errorf("log of the lost redemptions:\n%s", l)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer = logbuf.Buffer
