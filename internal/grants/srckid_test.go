package grants

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/tokens"
)

// keysWithStolen is the node's key set, the one that signs (cur), with a
// second key (stolen, whose private half a thief holds) published beside
// it until revoke: what signer.Manager.RevokeKey does to a retired or next
// key, which leaves the set and is refused from then on.
type keysWithStolen struct {
	cur, stolen signer.KeySet
	revoked     atomic.Bool
}

func (k *keysWithStolen) PublicKey(kid string) (signer.PublicKey, bool) {
	if p, ok := k.cur.PublicKey(kid); ok {
		return p, true
	}
	if k.revoked.Load() {
		return signer.PublicKey{}, false
	}
	return k.stolen.PublicKey(kid)
}

func (k *keysWithStolen) Algorithms() []string  { return k.cur.Algorithms() }
func (k *keysWithStolen) JWKS() ([]byte, error) { return k.cur.JWKS() }

// TestFamilyEndsWithItsSourceKey (docs/security.md T-192): a refresh
// family begun by re-exchanging a token its thief forged with a stolen
// signing key (one that does not sign: retired, next, or rotated away)
// stores no signature, and the access tokens its refreshes mint are
// signed by the key that signs; revoking the stolen key ends the family
// (the refresh grant answers invalid_grant) and the access tokens it
// minted, as it ends the forged token. A family begun from a token of the
// key that signs lives on.
func TestFamilyEndsWithItsSourceKey(t *testing.T) {
	o := newOfflineEnv(t)
	ctx := t.Context()
	stolen, err := signer.NewStatic(signer.ES256)
	if err != nil {
		t.Fatal(err)
	}
	keys := &keysWithStolen{cur: testKeys().out, stolen: stolen}
	sources := &tokens.StoreSources{Store: o.store, Pools: o.grant.Trust, Audiences: o.grant.ServerAudiences(), Keys: keys}
	o.verify.Keys, o.verify.Sources, o.grant.Refresh.Sources = keys, sources, sources

	c := o.issuer.claims(time.Now(), "u1")
	c["aud"] = "offline"
	ext := exchangeForm(o.issuer.mint(t, "RS256", c), "pool", "offline", "scope", "read offline_access")
	resp, body := o.post(ext, true)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("exchange = %d %v", resp.StatusCode, body)
	}
	genuine := body["access_token"].(string)
	// The forgery: the genuine token's claims under a new jti, signed
	// with the stolen key.
	fc := accessPayload(t, genuine)
	fc.ID = "forged-" + fc.ID
	forged, _, err := (&tokens.Issuer{Signer: stolen, IssuerURL: stsIssuer}).MintAccessToken(ctx, fc)
	if err != nil {
		t.Fatal(err)
	}

	begin := func(tok string) string {
		t.Helper()
		f := exchangeForm(tok, "scope", "read offline_access")
		f.Set("subject_token_type", oauth2.TokenTypeAccessToken)
		resp, body := o.post(f, true)
		rt, _ := body["refresh_token"].(string)
		if resp.StatusCode != http.StatusOK || rt == "" {
			t.Fatalf("re-exchange with offline_access = %d %v", resp.StatusCode, body)
		}
		if got := accessPayload(t, body["access_token"].(string)).SourceKeyIDs; !slices.Contains(got, jwtKID(t, tok)) {
			t.Errorf("re-exchanged: src_kid = %q, want the key of the token it came from", got)
		}
		return rt
	}
	refresh := func(rt *string) (int, string) {
		t.Helper()
		resp, body := o.post(url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {*rt}}, true)
		if next, ok := body["refresh_token"].(string); ok {
			*rt = next
		}
		at, _ := body["access_token"].(string)
		return resp.StatusCode, at
	}
	thief, owner := begin(forged), begin(genuine)
	code, minted := refresh(&thief)
	if code != http.StatusOK {
		t.Fatalf("refresh of the thief's family before the revocation = %d", code)
	}
	if _, err := o.verify.VerifyAccessTokenAnyAudience(ctx, minted); err != nil {
		t.Fatalf("an access token of the thief's family before the revocation: %v", err)
	}

	keys.revoked.Store(true)
	if _, err := o.verify.VerifyAccessTokenAnyAudience(ctx, forged); err == nil {
		t.Fatalf("the forged token after its key's revocation: %v", err)
	}
	if code, _ := refresh(&thief); code != http.StatusBadRequest {
		t.Errorf("refresh of a family begun from a token of a revoked key = %d, want 400 invalid_grant", code)
	}
	if _, err := o.verify.VerifyAccessTokenAnyAudience(ctx, minted); tokens.Reason(err) != "token_source_gone" {
		t.Errorf("an access token the family minted, its source's key revoked: reason %q, want token_source_gone", tokens.Reason(err))
	}
	if code, at := refresh(&owner); code != http.StatusOK {
		t.Errorf("refresh of a family begun from a token of the key that signs = %d", code)
	} else if _, err := o.verify.VerifyAccessTokenAnyAudience(ctx, at); err != nil {
		t.Errorf("an access token of that family: %v", err)
	}
}

// jwtKID is the kid in the protected header of a compact JWS.
func jwtKID(t *testing.T, tok string) string {
	t.Helper()
	var h struct {
		KID string `json:"kid"`
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.SplitN(tok, ".", 2)[0])
	if err != nil || json.Unmarshal(b, &h) != nil {
		t.Fatalf("header of %q: %v", tok, err)
	}
	return h.KID
}

// TestGrandchildEndsWithItsSourceKey (docs/security.md T-192): src_kid is
// carried on through every re-exchange, not only the first: a token
// re-exchanged from a re-exchange of a forged token (both signed by the
// key that signs) still names the stolen key and ends with it.
func TestGrandchildEndsWithItsSourceKey(t *testing.T) {
	o := newOfflineEnv(t)
	ctx := t.Context()
	stolen, err := signer.NewStatic(signer.ES256)
	if err != nil {
		t.Fatal(err)
	}
	keys := &keysWithStolen{cur: testKeys().out, stolen: stolen}
	sources := &tokens.StoreSources{Store: o.store, Pools: o.grant.Trust, Audiences: o.grant.ServerAudiences(), Keys: keys}
	o.verify.Keys, o.verify.Sources = keys, sources

	c := o.issuer.claims(time.Now(), "u1")
	c["aud"] = "offline"
	resp, body := o.post(exchangeForm(o.issuer.mint(t, "RS256", c), "pool", "offline", "scope", "read"), true)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("exchange = %d %v", resp.StatusCode, body)
	}
	fc := accessPayload(t, body["access_token"].(string))
	fc.ID = "forged-" + fc.ID
	forged, _, err := (&tokens.Issuer{Signer: stolen, IssuerURL: stsIssuer}).MintAccessToken(ctx, fc)
	if err != nil {
		t.Fatal(err)
	}
	reexchange := func(tok string) string {
		t.Helper()
		f := exchangeForm(tok, "scope", "read")
		f.Set("subject_token_type", oauth2.TokenTypeAccessToken)
		resp, body := o.post(f, true)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("re-exchange = %d %v", resp.StatusCode, body)
		}
		return body["access_token"].(string)
	}
	child := reexchange(forged)
	grandchild := reexchange(child)
	if jwtKID(t, child) == jwtKID(t, forged) {
		t.Fatalf("setup: the child is signed by the stolen key")
	}
	if got := accessPayload(t, grandchild).SourceKeyIDs; !slices.Contains(got, jwtKID(t, forged)) {
		t.Errorf("grandchild src_kid = %q, want it to name the forged token's key %s", got, jwtKID(t, forged))
	}
	keys.revoked.Store(true)
	if _, err := o.verify.VerifyAccessTokenAnyAudience(ctx, grandchild); tokens.Reason(err) != "token_source_gone" {
		t.Errorf("grandchild of a token of a revoked key: reason %q, want token_source_gone", tokens.Reason(err))
	}
}
