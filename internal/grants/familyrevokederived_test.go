package grants

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/tokens"
)

// TestRevokedFamilyEndsItsAccessTokensWhenBegunFromAnother is
// docs/security.md T-221: a family begun by re-exchanging an access token
// of another family (client b re-exchanges client a's token with
// offline_access) is a grant of its own, which b may revoke (RFC 7009
// §2.1) and a reuse of its refresh token ends. Its access tokens named
// only the first family (grant_id), so revoking the second ended its
// refresh tokens but not the access tokens issued with and from it, which
// kept working until they expired. They now name their own family
// (grant_id) and the first one (src_grant): either's revocation ends them,
// and revoking the second family leaves the first and its tokens alone.
func TestRevokedFamilyEndsItsAccessTokensWhenBegunFromAnother(t *testing.T) {
	o := newReExchangeEnv(t)
	o.verify.Revocations = tokens.StoreRevocations{Store: o.store}
	o.grant.Refresh.Sources = o.verify.Sources
	ctx := t.Context()
	c := o.issuer.claims(time.Now(), "u1")
	c["aud"] = "offline"
	resp, body := o.postAt(t, PathToken, exchangeForm(o.issuer.mint(t, "RS256", c), "pool", "offline", "scope", "read offline_access"))
	first, _ := body["access_token"].(string)
	if resp.StatusCode != http.StatusOK || first == "" || body["refresh_token"] == nil {
		t.Fatalf("exchange by a with offline_access = %d %v", resp.StatusCode, body)
	}
	// b begins a family from a's access token: its access token, and the
	// one its refresh token mints.
	begin := func() (family string, issued, refreshed string) {
		t.Helper()
		form := exchangeForm(first, "scope", "read offline_access")
		form.Set("subject_token_type", oauth2.TokenTypeAccessToken)
		resp, body := o.postAs(t, PathToken, o.b.ID, o.bSecret, form)
		issued, _ = body["access_token"].(string)
		rt, _ := body["refresh_token"].(string)
		if resp.StatusCode != http.StatusOK || issued == "" || rt == "" {
			t.Fatalf("re-exchange by b with offline_access = %d %v", resp.StatusCode, body)
		}
		row, err := o.store.GetRefreshTokenByDigest(ctx, secret.Digest(o.pepper, rt))
		if err != nil {
			t.Fatal(err)
		}
		resp, body = o.postAs(t, PathToken, o.b.ID, o.bSecret, url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}})
		refreshed, _ = body["access_token"].(string)
		if resp.StatusCode != http.StatusOK || refreshed == "" {
			t.Fatalf("refresh of b's family = %d %v", resp.StatusCode, body)
		}
		return row.FamilyID, issued, refreshed
	}
	live := func(what, tok string) {
		t.Helper()
		if _, err := o.verify.VerifyAccessTokenAnyAudience(ctx, tok); err != nil {
			t.Errorf("%s: refused: %v", what, err)
		}
	}
	ended := func(what, tok string) {
		t.Helper()
		if _, err := o.verify.VerifyAccessTokenAnyAudience(ctx, tok); !errors.Is(err, tokens.ErrRevoked) {
			t.Errorf("%s: err = %v, want revoked", what, err)
		}
	}
	end := func(family string) {
		t.Helper()
		now := time.Now()
		if _, err := tokens.EndFamily(ctx, o.store, family, "revoked by its client", now, now.Add(time.Hour), 0); err != nil {
			t.Fatal(err)
		}
	}
	familyA := grantID(t, first)
	familyB, issuedB, refreshedB := begin()
	familyC, issuedC, refreshedC := begin()
	if familyB == familyA || familyC == familyA {
		t.Fatalf("b's families %s, %s: want new ones, not a's %s", familyB, familyC, familyA)
	}

	// b revokes one of its families (RFC 7009 §2.1): the access tokens
	// issued with it and minted from it end; a's, and b's other family's,
	// live on.
	end(familyB)
	ended("the access token issued with b's family after b revoked it", issuedB)
	ended("the access token b's family minted after b revoked it", refreshedB)
	live("a's token after b revoked its own family", first)
	live("b's other family's access token after b revoked one", issuedC)

	// a's family revoked: what b's families were begun from ends them.
	end(familyA)
	ended("a's token after a's family was revoked", first)
	ended("the access token issued with b's other family after a's family was revoked", issuedC)
	ended("the access token b's other family minted after a's family was revoked", refreshedC)
}

// TestFamilyBegunPastTheSourceGrantBoundIsRefused is docs/security.md
// T-221 at its bound: a family begun from a token that already names
// maxSourceJTIs families besides its own would need one more src_grant
// entry. It is refused (derivation_too_deep), no family begun, not cut: a
// family dropped would be a revocation that no longer reaches. One entry
// fewer is begun, and names every family, the subject's own included.
// The Confluent dialect begins it the same way.
func TestFamilyBegunPastTheSourceGrantBoundIsRefused(t *testing.T) {
	o := newReExchangeEnv(t)
	o.verify.Revocations = tokens.StoreRevocations{Store: o.store}
	ctx := t.Context()
	c := o.issuer.claims(time.Now(), "u1")
	c["aud"] = "offline"
	resp, body := o.postAt(t, PathToken, exchangeForm(o.issuer.mint(t, "RS256", c), "pool", "offline", "scope", "read offline_access"))
	first, _ := body["access_token"].(string)
	if resp.StatusCode != http.StatusOK || first == "" {
		t.Fatalf("exchange by a with offline_access = %d %v", resp.StatusCode, body)
	}
	base, err := o.verify.VerifyAccessTokenAnyAudience(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	withGrants := func(n int) string {
		t.Helper()
		cl := *base
		cl.SourceGrants = nil
		for i := range n {
			cl.SourceGrants = append(cl.SourceGrants, fmt.Sprintf("family-%02d", i))
		}
		tok, _, err := o.grant.Issuer.MintAccessToken(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	begin := func(path, tok string) (int, map[string]any) {
		t.Helper()
		form := exchangeForm(tok, "scope", "read offline_access")
		form.Set("subject_token_type", oauth2.TokenTypeAccessToken)
		if path == PathConfluentToken {
			form.Set("identity_pool_id", "offline")
		}
		resp, body := o.postAs(t, path, o.b.ID, o.bSecret, form)
		if errs, _ := body["errors"].([]any); len(errs) > 0 { // Confluent's error document
			e, _ := errs[0].(map[string]any)
			body["reason"] = e["reason"]
		}
		return resp.StatusCode, body
	}
	for _, path := range []string{PathToken, PathConfluentToken} {
		code, body := begin(path, withGrants(maxSourceJTIs))
		if code != http.StatusBadRequest || body["reason"] != ReasonDerivationTooDeep || body["refresh_token"] != nil || body["access_token"] != nil {
			t.Errorf("%s: a family begun from a token naming %d other families = %d %v, want 400 %s", path, maxSourceJTIs, code, body, ReasonDerivationTooDeep)
		}
		code, body = begin(path, withGrants(maxSourceJTIs-1))
		tok, _ := body["access_token"].(string)
		if code != http.StatusOK || tok == "" || body["refresh_token"] == nil {
			t.Fatalf("%s: a family begun from a token naming %d other families = %d %v, want 200", path, maxSourceJTIs-1, code, body)
		}
		got := accessPayload(t, tok)
		if len(got.SourceGrants) != maxSourceJTIs || !slices.Contains(got.SourceGrants, base.GrantID) || got.GrantID == base.GrantID || got.GrantID == "" {
			t.Errorf("%s: the new family's token: grant_id %q, src_grant %v; want its own family, and all %d others with %q", path, got.GrantID, got.SourceGrants, maxSourceJTIs, base.GrantID)
		}
	}
}
