package grants

import (
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// TestExchangeEndsWithItsSourceTokens: a token exchanged from one of ours,
// as the subject of a re-exchange or the actor of a delegation, names it
// and every token that one came from (src_jti); revoking any of them ends
// it, refuses its re-exchange and ends the refresh family begun from it,
// and leaves the tokens it came from and unrelated ones alone
// (docs/security.md A-36). A chain longer than maxSourceJTIs is refused.
func TestExchangeEndsWithItsSourceTokens(t *testing.T) {
	o := newOfflineEnv(t)
	o.verify.Revocations = tokens.StoreRevocations{Store: o.store}
	// A family begun from one of our tokens names its key (src_kid), which
	// the refresh grant checks through its source checker, as serve wires
	// it (docs/security.md T-192).
	o.grant.Refresh.Sources = &tokens.StoreSources{Store: o.store, Keys: o.verify.Keys}
	now := time.Now()
	external := func(sub string) url.Values {
		c := o.issuer.claims(now, sub)
		c["aud"] = "offline"
		return exchangeForm(o.issuer.mint(t, "RS256", c), "pool", "offline", "scope", "read")
	}
	own := func(tok string, kv ...string) url.Values {
		f := exchangeForm(tok, kv...)
		f.Set("subject_token_type", oauth2.TokenTypeAccessToken)
		if !f.Has("scope") {
			f.Set("scope", "read")
		}
		return f
	}
	issue := func(form url.Values, withClient bool) map[string]any {
		t.Helper()
		resp, body := o.post(form, withClient)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("exchange = %d %v", resp.StatusCode, body)
		}
		return body
	}
	token := func(form url.Values) string { return issue(form, false)["access_token"].(string) }
	reexchange := func(tok string) (int, string) {
		resp, body := o.post(own(tok), false)
		reason, _ := body["reason"].(string)
		return resp.StatusCode, reason
	}

	// root and child hold offline_access, so a family can be begun from
	// child; that takes the client.
	offline := func(f url.Values) url.Values { f.Set("scope", "read offline_access"); return f }
	root := issue(offline(external("u1")), true)["access_token"].(string)
	child := issue(own(root, "scope", "read offline_access"), true)["access_token"].(string)
	grandchild := token(own(child))
	other := token(external("u2"))
	delegated := token(own(other, "actor_token", child, "actor_token_type", oauth2.TokenTypeAccessToken))
	rt, _ := issue(own(child, "scope", "read offline_access"), true)["refresh_token"].(string)
	if rt == "" {
		t.Fatal("re-exchange with offline_access issued no refresh token")
	}

	if got, want := srcJTIOf(t, grandchild), []string{jti(t, root), jti(t, child)}; !slices.Equal(got, want) {
		t.Errorf("re-exchanged twice: src_jti = %q, want %q", got, want)
	}
	if got, want := srcJTIOf(t, delegated), []string{jti(t, other), jti(t, root), jti(t, child)}; !slices.Equal(got, want) {
		t.Errorf("delegated: src_jti = %q, want the subject's then the actor's with its source %q", got, want)
	}
	if got := srcJTIOf(t, root); got != nil {
		t.Errorf("exchanged from an external token: src_jti = %q, want none", got)
	}

	if err := o.store.PutRevocation(t.Context(), storage.Revocation{ID: tokens.RevocationIDJTI(jti(t, child)), Reason: "test",
		CreatedAt: storage.Now(now), ExpiresAt: storage.Now(now.Add(time.Hour))}); err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"re-exchanged from it": grandchild, "delegated to it": delegated} {
		if _, err := o.verify.VerifyAccessTokenAnyAudience(t.Context(), tok); tokens.Reason(err) != "token_revoked" {
			t.Errorf("token %s after it was revoked: err = %v, want token_revoked", name, err)
		}
		if code, reason := reexchange(tok); code != http.StatusBadRequest {
			t.Errorf("re-exchange of the token %s = %d %s, want 400", name, code, reason)
		}
	}
	for name, tok := range map[string]string{"its source": root, "another subject": other} {
		if _, err := o.verify.VerifyAccessTokenAnyAudience(t.Context(), tok); err != nil {
			t.Errorf("%s after a token derived from it was revoked: %v", name, err)
		}
	}
	resp, body := o.post(url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}}, true)
	if resp.StatusCode != http.StatusBadRequest || body["error"] != oauth2.ErrorInvalidGrant || body["access_token"] != nil {
		t.Errorf("refresh of a family begun from a revoked token = %d %v, want invalid_grant", resp.StatusCode, body)
	}

	// A family begun from a token of an earlier family ends with that
	// family: revoking root's family (it and child hold its grant_id)
	// ends one begun from root.
	rt3, _ := issue(own(root, "scope", "read offline_access"), true)["refresh_token"].(string)
	refresh := func(rt string) (int, map[string]any) {
		resp, body := o.post(url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}}, true)
		return resp.StatusCode, body
	}
	code, body := refresh(rt3)
	rt3, _ = body["refresh_token"].(string)
	if code != http.StatusOK || rt3 == "" {
		t.Fatalf("refresh of a family begun from a live token = %d %v", code, body)
	}
	if err := o.store.PutRevocation(t.Context(), tokens.GrantRevocation(grantID(t, root), "test", now, 0)); err != nil {
		t.Fatal(err)
	}
	if code, body := refresh(rt3); code != http.StatusBadRequest || body["error"] != oauth2.ErrorInvalidGrant {
		t.Errorf("refresh of a family begun from a token of a revoked family = %d %v, want invalid_grant", code, body)
	}

	// A chain at its bound is refused, not cut: a link dropped would be a
	// revocation that no longer reaches.
	c := tokens.AccessClaims{Subject: "u3", OrgID: "acme", Scope: "read", Audience: tokens.Audience{stsIssuer}, Pool: "offline", Provider: "p",
		IssuedAt: tokens.NewNumericDate(now), NotBefore: tokens.NewNumericDate(now), Expiry: tokens.NewNumericDate(now.Add(time.Hour))}
	for i := range maxSourceJTIs {
		c.SourceJTIs = append(c.SourceJTIs, "jti-"+string(rune('a'+i)))
	}
	long, _, err := o.grant.Issuer.MintAccessToken(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	if code, reason := reexchange(long); code != http.StatusBadRequest || reason != ReasonDerivationTooDeep {
		t.Errorf("re-exchange of a token with %d sources = %d %s, want 400 %s", maxSourceJTIs, code, reason, ReasonDerivationTooDeep)
	}
	c.SourceJTIs = c.SourceJTIs[1:]
	if short, _, err := o.grant.Issuer.MintAccessToken(t.Context(), c); err != nil {
		t.Fatal(err)
	} else if code, reason := reexchange(short); code != http.StatusOK {
		t.Errorf("re-exchange of a token with %d sources = %d %s, want 200", maxSourceJTIs-1, code, reason)
	}
}

// accessPayload decodes an access token's claims (unverified: the handler
// under test minted it).
func accessPayload(t *testing.T, tok string) tokens.AccessClaims {
	t.Helper()
	var c tokens.AccessClaims
	decodePayload(t, tok, &c)
	return c
}

func jti(t *testing.T, tok string) string        { return accessPayload(t, tok).ID }
func srcJTIOf(t *testing.T, tok string) []string { return accessPayload(t, tok).SourceJTIs }

// TestReExchangeEndsWithEveryClient: a token another client re-exchanged
// is issued to that client, and still ends with the client the first
// token was issued to (src_client_id; docs/security.md A-33): disabling
// either ends it, re-enabling brings it back.
func TestReExchangeEndsWithEveryClient(t *testing.T) {
	o := newReExchangeEnv(t)
	b := o.b
	first := o.first(t)
	form := exchangeForm(first, "scope", "read")
	form.Set("subject_token_type", oauth2.TokenTypeAccessToken)
	resp, body := o.postAs(t, PathToken, b.ID, o.bSecret, form)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("exchange by %s = %d %v", b.ID, resp.StatusCode, body)
	}
	second := body["access_token"].(string)
	// The first client bare, and what the first token drew from it (its
	// scope, pool and audiences) and from its pool.
	firstAud := []string(accessPayload(t, first).Audience)
	wantSrc := []string{o.client.ID, tokens.SourceClient(o.client.ID, "read", "offline", firstAud), tokens.SourceClient(tokens.PoolClientID("offline", "p"), "read", "", nil)}
	if p := accessPayload(t, second); p.ClientID != b.ID || !slices.Equal(p.SourceClientIDs, wantSrc) {
		t.Fatalf("re-exchanged by another client: client_id %q, src_client_id %q; want %q and %q", p.ClientID, p.SourceClientIDs, b.ID, wantSrc)
	}
	for _, id := range []string{o.client.ID, b.ID} {
		for _, disabled := range []bool{true, false} {
			if err := o.store.UpdateClient(t.Context(), id, func(cl storage.Client) (storage.Client, error) {
				cl.Disabled = disabled
				return cl, nil
			}); err != nil {
				t.Fatal(err)
			}
			_, err := o.verify.VerifyAccessTokenAnyAudience(t.Context(), second)
			if disabled && tokens.Reason(err) != "token_source_gone" {
				t.Errorf("client %s disabled: err = %v, want token_source_gone", id, err)
			}
			if !disabled && err != nil {
				t.Errorf("client %s enabled again: err = %v", id, err)
			}
		}
	}
}
