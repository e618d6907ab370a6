package api

import (
	"slices"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/pools"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
	"github.com/opensts/sts/internal/trust"
)

// provenanceFx is an env whose verifier checks sources (uncached, so a
// change is seen at once), with the admin's PAT and a 2-minute access
// token derived from it as PAT exchange mints one.
type provenanceFx struct {
	*env
	c        clients
	adminID  string // the admin principal
	patID    string // the admin's PAT
	derived  string // access token exchanged from it, 2 minutes
	derivedC tokens.AccessClaims
}

func newProvenanceFx(t *testing.T) *provenanceFx {
	t.Helper()
	return newProvenanceFxWith(t, func(*Handler) tokens.PoolRegistry { return nil })
}

// newProvenanceFxWith is newProvenanceFx whose source checker judges
// pools with the registry pools returns (nil: none).
func newProvenanceFxWith(t *testing.T, pools func(h *Handler) tokens.PoolRegistry) *provenanceFx {
	t.Helper()
	return newProvenanceFxOn(t, newSQLiteStore(t), pools)
}

// newProvenanceFxOn is newProvenanceFxWith over store (a migrated, empty
// SQLite or PostgreSQL store).
func newProvenanceFxOn(t *testing.T, store storage.Store, pools func(h *Handler) tokens.PoolRegistry) *provenanceFx {
	t.Helper()
	e := newEnvOn(t, store, func(h *Handler) {
		reg := pools(h)
		s := tokens.NewStoreSources(h.Store.(tokens.SourceStore), nil)
		if reg != nil {
			s.Pools, s.Audiences = reg, []string{testIssuer}
		}
		s.TTL = 0
		s.InstanceAdmins = h.InstanceAdmins
		h.Verifier.Sources = s
	})
	ctx := t.Context()
	au, err := e.pats.Authenticate(ctx, e.admin)
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.store.GetPAT(ctx, au.TokenID)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tok, c, err := e.h.Issuer.MintAccessToken(ctx, tokens.AccessClaims{
		Subject: au.Principal.ID, Audience: tokens.Audience{testIssuer}, ClientID: "pat",
		IssuedAt: tokens.NewNumericDate(now), Expiry: tokens.NewNumericDate(now.Add(2 * time.Minute)),
		Scope: pat.ScopeFull + " " + pat.ScopeAdmin, OrgID: e.org.ID, Principal: string(au.Principal.Kind),
		PATID: p.ID, PATGeneration: tokens.PATGeneration(p.Digest),
	})
	if err != nil {
		t.Fatal(err)
	}
	return &provenanceFx{env: e, c: e.clients(e.srv.URL), adminID: au.Principal.ID, patID: p.ID, derived: tok, derivedC: c}
}

// newPoolProvenanceFx is newProvenanceFx whose source checker also
// judges pools, through a trust registry over the env's store (refreshed
// by the test after each change).
func newPoolProvenanceFx(t *testing.T) (*provenanceFx, *trust.Registry) {
	t.Helper()
	compiler, err := pools.NewCompiler()
	if err != nil {
		t.Fatal(err)
	}
	var reg *trust.Registry
	fx := newProvenanceFxWith(t, func(h *Handler) tokens.PoolRegistry {
		reg = &trust.Registry{Store: h.Store.(storage.TrustStore), Compiler: compiler, MinRefresh: time.Hour}
		return reg
	})
	return fx, reg
}

// exchangeToken creates an exchange token for target as cred, valid five
// minutes, and returns it unspent.
func (fx *provenanceFx) exchangeToken(t *testing.T, cred, target string) string {
	t.Helper()
	x, err := fx.c.principal.CreateExchangeToken(as(cred), &stsv1.CreateExchangeTokenRequest{
		PrincipalId: target, ValidFor: durationpb.New(5 * time.Minute)})
	if err != nil {
		t.Fatalf("CreateExchangeToken: %v", err)
	}
	return x.GetExchangeToken()
}

// buy creates an exchange token for target as cred and spends it.
func (fx *provenanceFx) buy(t *testing.T, cred, target string) (string, tokens.AccessClaims) {
	t.Helper()
	res, err := fx.c.identity.ExchangeToken(as(""), &gitpodv1.ExchangeTokenRequest{ExchangeToken: fx.exchangeToken(t, cred, target)})
	if err != nil {
		t.Fatalf("ExchangeToken: %v", err)
	}
	c, err := fx.h.Verifier.VerifyAccessToken(t.Context(), res.GetAccessToken(), testIssuer)
	if err != nil {
		t.Fatalf("the bought token does not verify: %v", err)
	}
	if _, err := fx.c.identity.GetAuthenticatedIdentity(as(res.GetAccessToken()), &gitpodv1.GetAuthenticatedIdentityRequest{}); err != nil {
		t.Fatalf("the bought token does not authenticate: %v", err)
	}
	return res.GetAccessToken(), *c
}

// adminClient stores a client_credentials client of the fixture's
// administrator with scopes.
func (fx *provenanceFx) adminClient(t *testing.T, scopes ...string) storage.Client {
	t.Helper()
	cl := storage.Client{ID: storage.NewID(), OrgID: fx.org.ID, PrincipalID: fx.adminID, Name: "ops", AuthMethod: "client_secret_basic",
		GrantTypes: []string{"client_credentials"}, Scopes: scopes, Audiences: []string{testIssuer}}
	if err := fx.store.CreateClient(t.Context(), cl); err != nil {
		t.Fatal(err)
	}
	return cl
}

// adminCredential mints an sts:admin access token of the fixture's
// administrator, valid five minutes, issued through what c names (its
// client, or its pool and provider).
func (fx *provenanceFx) adminCredential(t *testing.T, c tokens.AccessClaims) string {
	t.Helper()
	now := time.Now()
	c.Subject, c.Audience, c.Scope = fx.adminID, tokens.Audience{testIssuer}, pat.ScopeAdmin
	c.IssuedAt, c.Expiry = tokens.NewNumericDate(now), tokens.NewNumericDate(now.Add(5*time.Minute))
	c.OrgID, c.Principal = fx.org.ID, string(storage.PrincipalUser)
	cred, _, err := fx.h.Issuer.MintAccessToken(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

// updateClient changes the stored client id with change.
func (fx *provenanceFx) updateClient(t *testing.T, id string, change func(*storage.Client)) {
	t.Helper()
	if err := fx.store.UpdateClient(t.Context(), id, func(c storage.Client) (storage.Client, error) {
		change(&c)
		return c, nil
	}); err != nil {
		t.Fatal(err)
	}
}

func (fx *provenanceFx) deletePAT(t *testing.T) {
	t.Helper()
	if err := fx.pats.Delete(t.Context(), testCaller, fx.adminID, fx.patID); err != nil {
		t.Fatal(err)
	}
}

func (fx *provenanceFx) setDisabled(t *testing.T, id string, disabled bool) {
	t.Helper()
	if err := fx.store.UpdatePrincipal(t.Context(), id, func(p storage.Principal) (storage.Principal, error) {
		p.Disabled = disabled
		return p, nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestExchangeTokenKeepsItsCreatorsSources is docs/security.md A-50: an
// exchange token created with an sts:admin credential buys an access
// token that derives from what that credential derives from. It never
// outlives the credential, and ends when the PAT behind it is deleted or
// regenerated, when the credential is revoked, and when the administrator
// who created it is disabled (before or after the exchange token is
// spent), whoever the exchange token was for.
func TestExchangeTokenKeepsItsCreatorsSources(t *testing.T) {
	t.Parallel()
	ended := func(t *testing.T, fx *provenanceFx, tok, what string) {
		t.Helper()
		_, err := fx.c.identity.GetAuthenticatedIdentity(as(tok), &gitpodv1.GetAuthenticatedIdentityRequest{})
		wantCode(t, "the bought token after "+what, err, connect.CodeUnauthenticated)
	}

	t.Run("NeverOutlivesTheCreator", func(t *testing.T) {
		fx := newProvenanceFx(t)
		x, err := fx.c.principal.CreateExchangeToken(as(fx.derived), &stsv1.CreateExchangeTokenRequest{
			PrincipalId: fx.adminID, ValidFor: durationpb.New(5 * time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		if got := x.GetExpiresAt().AsTime(); got.After(fx.derivedC.Expiry.Time()) {
			t.Errorf("exchange token expires %s, after its creator's %s", got, fx.derivedC.Expiry.Time())
		}
		_, c := fx.buy(t, fx.derived, fx.adminID)
		if c.Expiry > fx.derivedC.Expiry {
			t.Errorf("bought token exp %d, after its creator's %d", c.Expiry, fx.derivedC.Expiry)
		}
		_, c = fx.buy(t, fx.derived, fx.user.ID)
		if c.Expiry > fx.derivedC.Expiry {
			t.Errorf("bought token (for another principal) exp %d, after its creator's %d", c.Expiry, fx.derivedC.Expiry)
		}
	})
	t.Run("PATDeleted", func(t *testing.T) {
		fx := newProvenanceFx(t)
		self, _ := fx.buy(t, fx.derived, fx.adminID)
		other, _ := fx.buy(t, fx.derived, fx.user.ID)
		direct, _ := fx.buy(t, fx.admin, fx.user.ID)
		fx.deletePAT(t)
		ended(t, fx, self, "deleting the PAT its creator derives from")
		ended(t, fx, other, "deleting the PAT its creator derives from (another principal's token)")
		ended(t, fx, direct, "deleting the PAT that created it (another principal's token)")
	})
	t.Run("PATRegenerated", func(t *testing.T) {
		fx := newProvenanceFx(t)
		self, _ := fx.buy(t, fx.admin, fx.adminID)
		other, _ := fx.buy(t, fx.derived, fx.user.ID)
		if _, _, err := fx.pats.Regenerate(t.Context(), testCaller, fx.adminID, fx.patID, time.Now().Add(30*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		ended(t, fx, self, "regenerating the PAT that created it")
		ended(t, fx, other, "regenerating the PAT its creator derives from")
	})
	t.Run("CreatorRevoked", func(t *testing.T) {
		fx := newProvenanceFx(t)
		self, c := fx.buy(t, fx.derived, fx.adminID)
		other, _ := fx.buy(t, fx.derived, fx.user.ID)
		if !slices.Contains(c.SourceJTIs, fx.derivedC.ID) {
			t.Errorf("src_jti = %v, want it to hold the creator's jti %s", c.SourceJTIs, fx.derivedC.ID)
		}
		now := time.Now()
		if err := fx.store.PutRevocation(t.Context(), storage.Revocation{ID: tokens.RevocationIDJTI(fx.derivedC.ID),
			Reason: "test", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		ended(t, fx, self, "revoking the token that created it")
		ended(t, fx, other, "revoking the token that created it (another principal's token)")
	})
	t.Run("PATNarrowed", func(t *testing.T) {
		// the PAT behind the credential that created an exchange
		// token loses sts:admin (UpdatePersonalAccessToken): the token is
		// no longer redeemed, and what it bought before ends, whether the
		// credential was the PAT or a token exchanged from it. Narrowing
		// that keeps sts:admin ends nothing the PAT itself created.
		fx := newProvenanceFx(t)
		unspent, err := fx.c.principal.CreateExchangeToken(as(fx.admin), &stsv1.CreateExchangeTokenRequest{PrincipalId: fx.user.ID})
		if err != nil {
			t.Fatal(err)
		}
		direct, _ := fx.buy(t, fx.admin, fx.user.ID)
		viaDerived, _ := fx.buy(t, fx.derived, fx.user.ID)
		narrow := func(scopes ...string) {
			t.Helper()
			if _, err := fx.c.user.UpdatePersonalAccessToken(as(fx.admin), &gitpodv1.UpdatePersonalAccessTokenRequest{
				PersonalAccessTokenId: fx.patID, Scopes: &gitpodv1.ScopeList{Scopes: scopes}}); err != nil {
				t.Fatalf("UpdatePersonalAccessToken(%v): %v", scopes, err)
			}
		}
		narrow(pat.ScopeTokensWrite, pat.ScopeAdmin) // drops *, keeps what CreateExchangeToken needs
		if _, err := fx.c.identity.GetAuthenticatedIdentity(as(direct), &gitpodv1.GetAuthenticatedIdentityRequest{}); err != nil {
			t.Errorf("the bought token after its creator's PAT kept sts:admin: %v", err)
		}
		ended(t, fx, viaDerived, "the PAT lost * its creator's token held")
		narrow(pat.ScopeTokensWrite) // drops sts:admin
		ended(t, fx, direct, "the PAT that created it lost sts:admin")
		_, err = fx.c.identity.ExchangeToken(as(""), &gitpodv1.ExchangeTokenRequest{ExchangeToken: unspent.GetExchangeToken()})
		wantCode(t, "ExchangeToken after its creator's PAT lost sts:admin", err, connect.CodeUnauthenticated)
	})
	t.Run("CreatorDisabledBeforeTheExchange", func(t *testing.T) {
		fx := newProvenanceFx(t)
		x, err := fx.c.principal.CreateExchangeToken(as(fx.admin), &stsv1.CreateExchangeTokenRequest{PrincipalId: fx.user.ID})
		if err != nil {
			t.Fatal(err)
		}
		fx.setDisabled(t, fx.adminID, true)
		_, err = fx.c.identity.ExchangeToken(as(""), &gitpodv1.ExchangeTokenRequest{ExchangeToken: x.GetExchangeToken()})
		wantCode(t, "ExchangeToken after its creator was disabled", err, connect.CodeUnauthenticated)
	})
	t.Run("CreatorDisabledAfterTheExchange", func(t *testing.T) {
		fx := newProvenanceFx(t)
		other, _ := fx.buy(t, fx.admin, fx.user.ID)
		fx.setDisabled(t, fx.adminID, true)
		ended(t, fx, other, "disabling the administrator who created it")
		// Re-enabling lets it work again, as for its own principal
		// (docs/design.md#lifetimes).
		fx.setDisabled(t, fx.adminID, false)
		if _, err := fx.c.identity.GetAuthenticatedIdentity(as(other), &gitpodv1.GetAuthenticatedIdentityRequest{}); err != nil {
			t.Errorf("the bought token after its creator was re-enabled: %v", err)
		}
	})
	t.Run("CreatorsClient", func(t *testing.T) {
		// A credential issued to a client: the bought token ends with the
		// client (src_client_id, A-33), but the client's scope list does
		// not bound it, for it holds its principal's access.
		fx := newProvenanceFx(t)
		cl := fx.adminClient(t, pat.ScopeAdmin)
		cred := fx.adminCredential(t, tokens.AccessClaims{ClientID: cl.ID})
		other, c := fx.buy(t, cred, fx.user.ID)
		if !slices.Contains(c.SourceClientIDs, cl.ID) {
			t.Errorf("src_client_id = %v, want it to hold the creator's client %s", c.SourceClientIDs, cl.ID)
		}
		fx.updateClient(t, cl.ID, func(c *storage.Client) { c.Disabled = true })
		ended(t, fx, other, "disabling the client its creator's credential was issued to")
	})
	t.Run("CreatorsClientNarrowed", func(t *testing.T) {
		// docs/security.md A-92: the creator's credential drew its scope
		// (sts:admin) from its client's list, as A-67's drew it from a
		// PAT. The bought token, and an exchange token not yet spent, end
		// once the client no longer lists it; a scope the credential did
		// not hold may go.
		fx := newProvenanceFx(t)
		cl := fx.adminClient(t, pat.ScopeAdmin, pat.ScopeIdentityRead)
		cred := fx.adminCredential(t, tokens.AccessClaims{ClientID: cl.ID})
		other, _ := fx.buy(t, cred, fx.user.ID)
		unspent := fx.exchangeToken(t, cred, fx.user.ID)
		setScopes := func(scopes ...string) {
			t.Helper()
			fx.updateClient(t, cl.ID, func(c *storage.Client) { c.Scopes = scopes })
		}
		setScopes(pat.ScopeAdmin)
		if _, err := fx.c.identity.GetAuthenticatedIdentity(as(other), &gitpodv1.GetAuthenticatedIdentityRequest{}); err != nil {
			t.Errorf("the bought token after its creator's client lost a scope the creator did not hold: %v", err)
		}
		setScopes(pat.ScopeIdentityRead)
		ended(t, fx, other, "its creator's client no longer listing sts:admin")
		_, err := fx.c.identity.ExchangeToken(as(""), &gitpodv1.ExchangeTokenRequest{ExchangeToken: unspent})
		wantCode(t, "ExchangeToken after the creator's client lost sts:admin", err, connect.CodeUnauthenticated)
	})
	t.Run("CreatorsClientLostAudience", func(t *testing.T) {
		// docs/security.md A-102: the creator's credential was issued
		// for an audience its client lists. Once the client no
		// longer lists it the credential ends, and so do the token it
		// bought and an exchange token not yet spent (a refusal spends
		// it); giving the audience back revives the bought token.
		fx := newProvenanceFx(t)
		cl := fx.adminClient(t, pat.ScopeAdmin)
		cred := fx.adminCredential(t, tokens.AccessClaims{ClientID: cl.ID})
		other, _ := fx.buy(t, cred, fx.user.ID)
		unspent := fx.exchangeToken(t, cred, fx.user.ID)
		setAudiences := func(auds ...string) {
			t.Helper()
			fx.updateClient(t, cl.ID, func(c *storage.Client) { c.Audiences = auds })
		}
		setAudiences("https://elsewhere.example")
		_, err := fx.c.identity.GetAuthenticatedIdentity(as(cred), &gitpodv1.GetAuthenticatedIdentityRequest{})
		wantCode(t, "the creator's credential after its client lost its audience", err, connect.CodeUnauthenticated)
		ended(t, fx, other, "its creator's client no longer listing the credential's audience")
		_, err = fx.c.identity.ExchangeToken(as(""), &gitpodv1.ExchangeTokenRequest{ExchangeToken: unspent})
		wantCode(t, "ExchangeToken after the creator's client lost the credential's audience", err, connect.CodeUnauthenticated)
		setAudiences(testIssuer)
		if _, err := fx.c.identity.GetAuthenticatedIdentity(as(other), &gitpodv1.GetAuthenticatedIdentityRequest{}); err != nil {
			t.Errorf("the bought token once its creator's client lists the audience again: %v", err)
		}
	})
	t.Run("CreatorsPoolNarrowed", func(t *testing.T) {
		// docs/security.md A-93: the creator's credential drew its scope
		// (sts:admin) from its pool's ceiling, as A-92's drew it from a
		// client's list. The bought token, and an exchange token not yet
		// spent, end once the pool no longer grants it; a scope the
		// credential did not hold may go.
		fx, reg := newPoolProvenanceFx(t)
		pl := storage.Pool{ID: "ci", OrgID: fx.org.ID, DisplayName: "ci", Condition: "true", PrincipalID: fx.adminID,
			Scopes: []string{pat.ScopeAdmin, pat.ScopeIdentityRead}}
		if err := fx.store.CreatePool(t.Context(), pl); err != nil {
			t.Fatal(err)
		}
		if err := fx.store.CreateProvider(t.Context(), storage.Provider{PoolID: pl.ID, ID: "gh", Issuer: poolIssuer,
			JWKS: []byte(`{"keys":[]}`), Audiences: []string{"sts"}}); err != nil {
			t.Fatal(err)
		}
		setScopes := func(scopes ...string) {
			t.Helper()
			if err := fx.store.UpdatePool(t.Context(), pl.ID, func(p storage.Pool) (storage.Pool, error) {
				p.Scopes = scopes
				return p, nil
			}); err != nil {
				t.Fatal(err)
			}
			if err := reg.Refresh(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		setScopes(pl.Scopes...)
		cred := fx.adminCredential(t, tokens.AccessClaims{ClientID: "pools/ci/providers/gh", Pool: pl.ID, Provider: "gh"})
		other, _ := fx.buy(t, cred, fx.user.ID)
		unspent := fx.exchangeToken(t, cred, fx.user.ID)
		setScopes(pat.ScopeAdmin)
		if _, err := fx.c.identity.GetAuthenticatedIdentity(as(other), &gitpodv1.GetAuthenticatedIdentityRequest{}); err != nil {
			t.Errorf("the bought token after its creator's pool lost a scope the creator did not hold: %v", err)
		}
		setScopes(pat.ScopeIdentityRead)
		// The credential itself ends: the fixture does judge pools.
		_, err := fx.c.identity.GetAuthenticatedIdentity(as(cred), &gitpodv1.GetAuthenticatedIdentityRequest{})
		wantCode(t, "the creator's credential after its pool lost sts:admin", err, connect.CodeUnauthenticated)
		ended(t, fx, other, "its creator's pool no longer granting sts:admin")
		_, err = fx.c.identity.ExchangeToken(as(""), &gitpodv1.ExchangeTokenRequest{ExchangeToken: unspent})
		wantCode(t, "ExchangeToken after the creator's pool lost sts:admin", err, connect.CodeUnauthenticated)
	})
	t.Run("OperatorMadeUnchanged", func(t *testing.T) {
		// An exchange token the operator makes (no credential: `sts
		// exchange-token create` in direct mode) stands for its principal
		// alone and buys the normal lifetime.
		fx := newProvenanceFx(t)
		_, x, err := fx.pats.CreateExchangeToken(t.Context(), testCaller, fx.user.ID, 0, pat.ExchangeSource{})
		if err != nil {
			t.Fatal(err)
		}
		res, err := fx.c.identity.ExchangeToken(as(""), &gitpodv1.ExchangeTokenRequest{ExchangeToken: x})
		if err != nil {
			t.Fatal(err)
		}
		c, err := fx.h.Verifier.VerifyAccessToken(t.Context(), res.GetAccessToken(), testIssuer)
		if err != nil {
			t.Fatal(err)
		}
		if life := time.Duration(c.Expiry-c.IssuedAt) * time.Second; life != DefaultAccessTokenLifetime {
			t.Errorf("lifetime %s, want %s", life, DefaultAccessTokenLifetime)
		}
		if c.PATID != "" || len(c.SourceJTIs) > 0 {
			t.Errorf("operator-made token carries sources: %+v", c)
		}
	})
}

// TestExchangeTokenEndsWithSubjectRevocation is docs/security.md A-73:
// `sts revoke subject` of an exchange token's creator, or of the
// principal it is for, refuses the unspent exchange token, although the
// token it would buy would be issued after the row (a refusal spends it).
// An exchange token created after the revocation, with a credential that
// still stands (the administrator's PAT, which a subject revocation does
// not end), is redeemed.
func TestExchangeTokenEndsWithSubjectRevocation(t *testing.T) {
	t.Parallel()
	redeem := func(fx *provenanceFx, x string) (*gitpodv1.ExchangeTokenResponse, error) {
		return fx.c.identity.ExchangeToken(as(""), &gitpodv1.ExchangeTokenRequest{ExchangeToken: x})
	}
	// revoke writes the sub: row of id, ending what was issued up to now,
	// and waits for the next second: iat is whole seconds, and a token of
	// the row's second counts as before it.
	revoke := func(t *testing.T, fx *provenanceFx, id string) {
		t.Helper()
		now := time.Now()
		if _, err := RevokeSubject(t.Context(), fx.store, id, now, time.Hour, now, "test"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Until(now.Truncate(time.Second).Add(time.Second + 10*time.Millisecond)))
	}
	for _, tc := range []struct {
		name string
		whom func(fx *provenanceFx) string
	}{
		{"Creator", func(fx *provenanceFx) string { return fx.adminID }},
		{"Principal", func(fx *provenanceFx) string { return fx.user.ID }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newProvenanceFx(t)
			x := fx.exchangeToken(t, fx.derived, fx.user.ID)
			revoke(t, fx, tc.whom(fx))
			res, err := redeem(fx, x)
			wantCode(t, "ExchangeToken after revoke subject of its "+tc.name, err, connect.CodeUnauthenticated)
			if res.GetAccessToken() != "" {
				t.Error("a token bought after the revocation")
			}
			_, err = redeem(fx, x)
			wantCode(t, "ExchangeToken of the refused exchange token, again", err, connect.CodeUnauthenticated)
			res, err = redeem(fx, fx.exchangeToken(t, fx.admin, fx.user.ID))
			if err != nil {
				t.Fatalf("an exchange token created after the revocation: %v", err)
			}
			if _, err := fx.c.identity.GetAuthenticatedIdentity(as(res.GetAccessToken()), &gitpodv1.GetAuthenticatedIdentityRequest{}); err != nil {
				t.Errorf("the token it bought does not authenticate: %v", err)
			}
		})
	}
}

// TestExchangeTokenJudgedByItsExactCreation: A-73 judges an exchange
// token against a subject revocation by its creation, which storage keeps
// to the microsecond, as it keeps the row's time: one created after the
// row, in the same second, is redeemed (its creation was rounded down to
// the second, so it was refused and spent); one created in the row's
// microsecond counts as before it and is refused (docs/security.md A-73).
// SQLite and PostgreSQL.
func TestExchangeTokenJudgedByItsExactCreation(t *testing.T) {
	t.Parallel()
	for name, store := range map[string]func(testing.TB) storage.Store{"SQLite": newSQLiteStore, "PostgreSQL": newPostgresStore} {
		t.Run(name, func(t *testing.T) {
			e := newEnvOn(t, store(t), nil)
			c := e.clients(e.srv.URL)
			const ttl = 5 * time.Minute
			// create makes an exchange token and returns it with its
			// stored creation (its expiry less its lifetime).
			create := func() (string, time.Time) {
				x, err := c.principal.CreateExchangeToken(as(e.admin), &stsv1.CreateExchangeTokenRequest{
					PrincipalId: e.user.ID, ValidFor: durationpb.New(ttl)})
				if err != nil {
					t.Fatal(err)
				}
				return x.GetExchangeToken(), x.GetExpiresAt().AsTime().Add(-ttl)
			}
			revoke := func(before time.Time) {
				if _, err := RevokeSubject(t.Context(), e.store, e.user.ID, before, time.Hour, time.Now(), "test"); err != nil {
					t.Fatal(err)
				}
			}
			redeem := func(x string) error {
				_, err := c.identity.ExchangeToken(as(""), &gitpodv1.ExchangeTokenRequest{ExchangeToken: x})
				return err
			}
			x, created := create()
			revoke(created.Add(-time.Microsecond)) // the same second, a microsecond before
			if err := redeem(x); err != nil {
				t.Errorf("an exchange token created a microsecond after `revoke subject` of its principal (%s): %v, want redeemed",
					created.Format(time.RFC3339Nano), err)
			}
			x, created = create()
			revoke(created)
			wantCode(t, "ExchangeToken created in the row's microsecond", redeem(x), connect.CodeUnauthenticated)
		})
	}
}
