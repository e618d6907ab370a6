package cli_test

import (
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2/clientcredentials"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
)

// algOf returns the alg in a compact JWS header.
func algOf(t *testing.T, jws string) string {
	t.Helper()
	h, _, _ := strings.Cut(jws, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	var hdr struct{ Alg string }
	if err := json.Unmarshal(b, &hdr); err != nil {
		t.Fatal(err)
	}
	return hdr.Alg
}

// TestServeRS256BesideES256: a default `sts serve` keeps an RS256 key
// active beside the ES256 one. Discovery lists both algorithms and the
// JWKS both algorithms' keys; an ID token for an audience of
// id_tokens.rs256_audiences (gitpod.v1 GetIDToken) is signed RS256 and a
// relying party that accepts only RS256 (go-oidc from our discovery)
// verifies it, while other ID tokens and access tokens stay ES256. A
// forced rotation through KeyService rotates both algorithms (two audit
// events), and tokens signed before it still verify and introspect.
func TestServeRS256BesideES256(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	conf := filepath.Join(dir, "sts.yaml")
	writeFile(t, conf, "id_tokens:\n  rs256_audiences: [rs256-only-rp]\n")
	r := serve(t, "--config", conf, "--data-dir", dir)
	checkServing(t, r)
	ctx := t.Context()

	_, body := r.waitFor(t, "/.well-known/openid-configuration", 200)
	var meta struct {
		Algs []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := json.Unmarshal(body, &meta); err != nil || !slices.Contains(meta.Algs, "RS256") || !slices.Contains(meta.Algs, "ES256") {
		t.Fatalf("id_token_signing_alg_values_supported = %v (%v), want RS256 and ES256", meta.Algs, err)
	}
	jwksAlgs := func() map[string]int {
		t.Helper()
		_, body := r.waitFor(t, "/.well-known/jwks.json", 200)
		var doc struct{ Keys []struct{ Alg, Kid string } }
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatal(err)
		}
		out := map[string]int{}
		for _, k := range doc.Keys {
			out[k.Alg]++
		}
		return out
	}
	if got := jwksAlgs(); got["ES256"] != 2 || got["RS256"] != 2 || len(got) != 2 {
		t.Fatalf("JWKS keys by alg = %v, want 2 ES256 and 2 RS256 (active and next)", got)
	}

	code, out, errOut := runCLI(t, "pat", "create", "--data-dir", dir, "--user", "admin", "--expires-in", "1d", "--scope", "*", "--scope", "sts:admin")
	admin := patRE.FindString(out)
	if code != 0 || admin == "" {
		t.Fatalf("pat create = %d, %q %q", code, out, errOut)
	}
	hc := h2cClient(admin)
	identity := gitpodv1connect.NewIdentityServiceClient(hc, r.base+"/api")
	idToken := func(aud ...string) string {
		t.Helper()
		res, err := identity.GetIDToken(ctx, &gitpodv1.GetIDTokenRequest{Audience: aud})
		if err != nil {
			t.Fatalf("GetIDToken(%v): %v", aud, err)
		}
		return res.GetToken()
	}
	provider, err := oidc.NewProvider(ctx, r.base)
	if err != nil {
		t.Fatalf("go-oidc discovery: %v", err)
	}
	rsOnly := provider.Verifier(&oidc.Config{ClientID: "rs256-only-rp", SupportedSigningAlgs: []string{oidc.RS256}})

	rsTok := idToken("rs256-only-rp", "other")
	if alg := algOf(t, rsTok); alg != "RS256" {
		t.Fatalf("ID token for an rs256_audiences audience signed %s, want RS256", alg)
	}
	if _, err := rsOnly.Verify(ctx, rsTok); err != nil {
		t.Fatalf("RS256-only go-oidc on our RS256 ID token: %v", err)
	}
	esTok := idToken("es-rp")
	if alg := algOf(t, esTok); alg != "ES256" {
		t.Errorf("ID token for another audience signed %s, want ES256 (keys.algorithm)", alg)
	}
	esOnly := provider.Verifier(&oidc.Config{ClientID: "es-rp", SupportedSigningAlgs: []string{oidc.ES256}})
	if _, err := esOnly.Verify(ctx, esTok); err != nil {
		t.Errorf("ES256 go-oidc on our ES256 ID token: %v", err)
	}
	if _, err := provider.Verifier(&oidc.Config{ClientID: "es-rp", SupportedSigningAlgs: []string{oidc.RS256}}).Verify(ctx, esTok); err == nil {
		t.Error("an RS256-only relying party accepted an ES256 ID token")
	}

	// Access tokens stay ES256 and verify (introspection, bearer auth).
	orgs, err := stsv1connect.NewOrganizationServiceClient(hc, r.base+"/api").ListOrganizations(ctx, &stsv1.ListOrganizationsRequest{})
	if err != nil || len(orgs.GetOrganizations()) != 1 {
		t.Fatalf("ListOrganizations = %v, %v", orgs, err)
	}
	orgID := orgs.GetOrganizations()[0].GetId()
	sa, err := stsv1connect.NewPrincipalServiceClient(hc, r.base+"/api").CreatePrincipal(ctx, &stsv1.CreatePrincipalRequest{
		OrganizationId: orgID, Kind: stsv1.PrincipalKind_PRINCIPAL_KIND_SERVICE_ACCOUNT, Name: "bot"})
	if err != nil {
		t.Fatal(err)
	}
	cr, err := stsv1connect.NewClientServiceClient(hc, r.base+"/api").CreateClient(ctx, &stsv1.CreateClientRequest{
		OrganizationId: orgID, PrincipalId: sa.GetPrincipal().GetId(), Name: "ci",
		GrantTypes: []string{"client_credentials"}, Scopes: []string{"read"}, Audiences: []string{r.base},
	})
	if err != nil {
		t.Fatal(err)
	}
	clientID, clientSecret := cr.GetClient().GetId(), cr.GetClientSecret()
	cc := clientcredentials.Config{ClientID: clientID, ClientSecret: clientSecret, TokenURL: r.base + "/oauth2/token", Scopes: []string{"read"}}
	tok, err := cc.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	oldAccess := tok.AccessToken
	if alg := algOf(t, oldAccess); alg != "ES256" {
		t.Errorf("access token signed %s, want ES256", alg)
	}

	// A forced rotation through the API rotates both algorithms.
	keys := stsv1connect.NewKeyServiceClient(hc, r.base+"/api")
	before, err := keys.ListSigningKeys(ctx, &stsv1.ListSigningKeysRequest{})
	if err != nil {
		t.Fatal(err)
	}
	activeOf := func(ks []*stsv1.SigningKey) map[string]string {
		out := map[string]string{}
		for _, k := range ks {
			if k.GetState() == stsv1.SigningKeyState_SIGNING_KEY_STATE_ACTIVE {
				out[k.GetAlgorithm()] = k.GetKid()
			}
		}
		return out
	}
	if _, err := keys.RotateSigningKey(ctx, &stsv1.RotateSigningKeyRequest{}); connect.CodeOf(err) != connect.CodeFailedPrecondition {
		t.Errorf("RotateSigningKey without force on brand-new next keys = %v, want failed_precondition", err)
	}
	rot, err := keys.RotateSigningKey(ctx, &stsv1.RotateSigningKeyRequest{Force: true})
	if err != nil {
		t.Fatalf("RotateSigningKey(force): %v", err)
	}
	was, now := activeOf(before.GetKeys()), activeOf(rot.GetKeys())
	for _, alg := range []string{"ES256", "RS256"} {
		if was[alg] == "" || now[alg] == "" || was[alg] == now[alg] {
			t.Errorf("%s active key %q -> %q, want a new one", alg, was[alg], now[alg])
		}
	}
	if rot.GetActivatedKid() != now["ES256"] || rot.GetRetiredKid() != was["ES256"] {
		t.Errorf("RotateSigningKey response kids = %v, want keys.algorithm's rotation", rot)
	}
	if got := jwksAlgs(); got["ES256"] != 3 || got["RS256"] != 3 {
		t.Errorf("JWKS after rotation = %v, want 3 keys (retired, active, next) of each", got)
	}
	// One event per algorithm for the API's rotation, and one per
	// algorithm for the first keys the server made at start.
	ev, err := stsv1connect.NewAuditServiceClient(hc, r.base+"/api").ListAuditEvents(ctx, &stsv1.ListAuditEventsRequest{Action: "signing_key.rotate"})
	byActor := map[bool]int{}
	for _, e := range ev.GetEvents() {
		byActor[e.GetActor() == "system:scheduler"]++
	}
	if err != nil || byActor[false] != 2 || byActor[true] != 2 {
		t.Errorf("signing_key.rotate audit events = %v, %v; want one per algorithm for the rotation and for the first keys", ev, err)
	}

	// Tokens from before still verify; new ones use the new keys.
	if _, err := rsOnly.Verify(ctx, rsTok); err != nil {
		t.Errorf("RS256 ID token from before the rotation: %v", err)
	}
	newRS := idToken("rs256-only-rp")
	if kidOf(t, newRS) != now["RS256"] {
		t.Errorf("new RS256 ID token signed by %s, want the new active RS256 key %s", kidOf(t, newRS), now["RS256"])
	}
	if _, err := rsOnly.Verify(ctx, newRS); err != nil {
		t.Errorf("RS256 ID token after the rotation: %v", err)
	}
	if !introspect(t, r, clientID, clientSecret, oldAccess) {
		t.Error("an access token from before the rotation introspects as inactive")
	}
	tok, err = cc.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if kidOf(t, tok.AccessToken) != now["ES256"] || !introspect(t, r, clientID, clientSecret, tok.AccessToken) {
		t.Errorf("access token after the rotation signed by %s (want %s) or inactive", kidOf(t, tok.AccessToken), now["ES256"])
	}
	r.stop(t)
}
