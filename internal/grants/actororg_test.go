package grants

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
)

// TestActorOfAnotherOrganizationIsRefused (docs/security.md A-89): an
// actor's pool is chosen by its token's issuer. Without a client that
// choice ran across every organization, so an administrator of another
// organization could create a pool claiming any issuer (GitHub's) with
// an uploaded JWKS of its own keys, mint an actor token with any sub,
// and have acme's token say act {iss: GitHub, sub: <anything>}: a forged
// actor that a may_act naming only a sub admits and acme's policies
// believe. An actor is of the subject's organization (its pool, or our
// token's organization), on every dialect's front door.
func TestActorOfAnotherOrganizationIsRefused(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	const github = "https://token.actions.githubusercontent.com"
	const forgedSub = "repo:acme/deploy:ref:refs/heads/main"

	// evil's administrator: a pool trusting "GitHub" with its own keys.
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "evil-1", Algorithm: "RS256", Use: "sig"}}})
	if err := e.store.CreateOrganization(ctx, storage.Organization{ID: "evil", Name: "Evil"}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreatePool(ctx, storage.Pool{ID: "forge", OrgID: "evil", Condition: "true", AllowUnauthenticated: true,
		Scopes: []string{"read"}, MaxTokenLifetime: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateProvider(ctx, storage.Provider{PoolID: "forge", ID: "gh", Issuer: github, Audiences: []string{"forge"}, JWKS: jwks}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "evil-1").WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(map[string]any{"iss": github, "sub": forgedSub, "aud": "forge", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	forged, _ := jws.CompactSerialize()

	// acme's subject, whose may_act names only a sub.
	sc := e.issuer.claims(now, "u1")
	sc["may_act"] = map[string]any{"sub": forgedSub}
	subject := e.issuer.mint(t, "RS256", sc)

	for _, path := range []string{PathToken, PathGoogleToken, PathConfluentToken} {
		t.Run("external actor "+path, func(t *testing.T) {
			form := exchangeForm(subject, "actor_token", forged, "actor_token_type", oauth2.TokenTypeJWT)
			form.Set("scope", "read")
			if path == PathConfluentToken {
				form.Set("identity_pool_id", "ci")
			} else {
				form.Set("pool", "ci")
			}
			resp, body := e.post(t, path, form)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("org acme's subject with evil's forged actor = %d %v, want 400", resp.StatusCode, body)
			}
		})
	}

	// The refusal is in acme's audit trail, with the reason.
	refused := 0
	for _, ev := range e.audit.all() {
		var d map[string]any
		if json.Unmarshal([]byte(ev.Detail), &d) == nil && ev.OrgID == "acme" && ev.Outcome == OutcomeRefused && d["reason"] == "issuer_unknown" {
			refused++
		}
	}
	if refused != 3 {
		t.Errorf("refused token.exchange events in acme's trail naming issuer_unknown = %d, want 3 (one a dialect): %+v", refused, e.audit.all())
	}

	// Our own token of evil as the actor: its organization is not acme's.
	resp, body := e.post(t, PathToken, exchangeForm(forged, "pool", "forge", "scope", "read"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("evil's own exchange = %d %v", resp.StatusCode, body)
	}
	evilToken := body["access_token"].(string)
	code, reason := e.exchangeStatus(t, subject, "pool", "ci", "scope", "read", "actor_token", evilToken, "actor_token_type", oauth2.TokenTypeAccessToken)
	if code != http.StatusBadRequest || reason != ReasonActorOrgMismatch {
		t.Errorf("evil's access token as acme's actor = %d %s, want 400 %s", code, reason, ReasonActorOrgMismatch)
	}

	// An actor of acme's own still acts, and evil's pool trusting the
	// same issuer and audience does not make its selection ambiguous.
	if err := e.store.CreatePool(ctx, storage.Pool{ID: "squat", OrgID: "evil", Condition: "false", AllowUnauthenticated: true}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateProvider(ctx, storage.Provider{PoolID: "squat", ID: "p", Issuer: e.issuer.URL, Audiences: []string{"sts"}}); err != nil {
		t.Fatal(err)
	}
	if err := e.grant.Trust.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	ac := e.issuer.claims(now, forgedSub)
	if code, reason := e.exchangeStatus(t, subject, "pool", "ci", "scope", "read", "actor_token", e.issuer.mint(t, "RS256", ac), "actor_token_type", oauth2.TokenTypeJWT); code != http.StatusOK {
		t.Errorf("acme's own actor = %d %s, want 200", code, reason)
	}
}
