package api

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// TestExchangeTokenBuysNoTokenTooLarge is docs/security.md T-220: an
// exchange token records what its creator's credential derives from, and
// the token it buys carries it, the credential's audiences re-encoded in
// src_client_id. A credential of ten long audiences, within the
// size our verifier accepts, made a token it does not: CreateExchangeToken
// took it, ExchangeToken spent it and handed out a token every check
// refuses. Such a credential is refused at CreateExchangeToken
// (failed_precondition), nothing stored; one of ordinary size still works.
func TestExchangeTokenBuysNoTokenTooLarge(t *testing.T) {
	t.Parallel()
	fx := newProvenanceFx(t)
	ctx := t.Context()
	// Ten audiences of 500 bytes, each mostly '/', which a query string
	// escapes to three bytes: the credential stays well within
	// tokens.MaxTokenSize, the src_client_id entry naming them does not.
	auds := []string{testIssuer}
	for i := range 10 {
		auds = append(auds, "https://svc"+string(rune('a'+i))+".example/"+strings.Repeat("/", 480))
	}
	cl := storage.Client{ID: storage.NewID(), OrgID: fx.org.ID, PrincipalID: fx.adminID, Name: "ops", AuthMethod: "client_secret_basic",
		GrantTypes: []string{"client_credentials"}, Scopes: []string{pat.ScopeAdmin}, Audiences: auds}
	if err := fx.store.CreateClient(ctx, cl); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cred, _, err := fx.h.Issuer.MintAccessToken(ctx, tokens.AccessClaims{
		Subject: fx.adminID, Audience: tokens.Audience(auds), ClientID: cl.ID, Scope: pat.ScopeAdmin,
		IssuedAt: tokens.NewNumericDate(now), Expiry: tokens.NewNumericDate(now.Add(5 * time.Minute)),
		OrgID: fx.org.ID, Principal: string(storage.PrincipalUser),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(cred) > tokens.MaxTokenSize/2 {
		t.Fatalf("the credential is %d bytes: the case wants one well within %d", len(cred), tokens.MaxTokenSize)
	}
	if _, err := fx.h.Verifier.VerifyAccessToken(ctx, cred, testIssuer); err != nil {
		t.Fatalf("the credential does not verify: %v", err)
	}
	before, err := fx.store.ListAudit(ctx, storage.AuditFilter{OrgID: fx.org.ID, Action: pat.ActionExchangeMint})
	if err != nil {
		t.Fatal(err)
	}
	x, err := fx.c.principal.CreateExchangeToken(as(cred), &stsv1.CreateExchangeTokenRequest{
		PrincipalId: fx.user.ID, ValidFor: durationpb.New(5 * time.Minute)})
	if err == nil {
		// Before: taken, and the token it bought was refused everywhere.
		res, xerr := fx.c.identity.ExchangeToken(as(""), &gitpodv1.ExchangeTokenRequest{ExchangeToken: x.GetExchangeToken()})
		if xerr == nil {
			_, aerr := fx.c.identity.GetAuthenticatedIdentity(as(res.GetAccessToken()), &gitpodv1.GetAuthenticatedIdentityRequest{})
			t.Fatalf("CreateExchangeToken took the credential and ExchangeToken spent it for a %d-byte token (our verifier takes at most %d): authenticating with it: %v",
				len(res.GetAccessToken()), tokens.MaxTokenSize, aerr)
		}
		t.Fatalf("CreateExchangeToken took the credential; ExchangeToken: %v", xerr)
	}
	wantCode(t, "CreateExchangeToken with a credential whose sources make the bought token too large", err, connect.CodeFailedPrecondition)
	after, err := fx.store.ListAudit(ctx, storage.AuditFilter{OrgID: fx.org.ID, Action: pat.ActionExchangeMint})
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Errorf("a refused CreateExchangeToken stored an exchange token (%d exchange_token.create events, want %d)", len(after), len(before))
	}

	// The same client and credential with two of those audiences buy a
	// token that works.
	cred2, _, err := fx.h.Issuer.MintAccessToken(ctx, tokens.AccessClaims{
		Subject: fx.adminID, Audience: tokens.Audience(auds[:3]), ClientID: cl.ID, Scope: pat.ScopeAdmin,
		IssuedAt: tokens.NewNumericDate(now), Expiry: tokens.NewNumericDate(now.Add(5 * time.Minute)),
		OrgID: fx.org.ID, Principal: string(storage.PrincipalUser),
	})
	if err != nil {
		t.Fatal(err)
	}
	fx.buy(t, cred2, fx.user.ID)
}

// TestExchangeTokenWithOversizedSourcesIsSpentNotHonoured is the backstop
// of docs/security.md T-220: an exchange token stored before
// CreateExchangeToken bounded its sources (here written through the PAT
// service directly, as such a row) would buy a token over
// tokens.MaxTokenSize. ExchangeToken hands nothing out, and spends it: it
// would make the same token at every try.
func TestExchangeTokenWithOversizedSourcesIsSpentNotHonoured(t *testing.T) {
	t.Parallel()
	fx := newProvenanceFx(t)
	ctx := t.Context()
	// Sixteen families of a kilobyte each: no check refuses an unknown
	// family, only the size does.
	var grants []string
	for i := range maxSources {
		grants = append(grants, fmt.Sprintf("%02d", i)+strings.Repeat("g", 1<<10))
	}
	claims, err := json.Marshal(exchangeClaims{SourceGrants: grants})
	if err != nil {
		t.Fatal(err)
	}
	_, secret, err := fx.pats.CreateExchangeToken(ctx, testCaller, fx.user.ID, 5*time.Minute,
		pat.ExchangeSource{CreatorID: fx.adminID, ExpiresAt: time.Now().Add(5 * time.Minute), Claims: claims})
	if err != nil {
		t.Fatal(err)
	}
	res, err := fx.c.identity.ExchangeToken(as(""), &gitpodv1.ExchangeTokenRequest{ExchangeToken: secret})
	if err == nil {
		t.Fatalf("ExchangeToken handed out a %d-byte token (our verifier takes at most %d)", len(res.GetAccessToken()), tokens.MaxTokenSize)
	}
	wantCode(t, "ExchangeToken of an exchange token whose sources make too large a token", err, connect.CodeUnauthenticated)
	left, err := fx.store.ListExchangeTokensOfPrincipal(ctx, fx.user.ID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("the exchange token is still redeemable after it was refused for its size (%d unspent)", len(left))
	}
}
