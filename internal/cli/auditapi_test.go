package cli_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/oauth2/clientcredentials"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/opensts/sts/internal/cli"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
	"github.com/opensts/sts/pkg/rs"
)

// TestServeKeyAndAuditAPI drives sts.v1.KeyService and sts.v1.AuditService
// through the real server on SQLite and PostgreSQL. A forced rotation
// through the API takes effect on that server at once: its JWKS then
// publishes the retired, active and new next keys, a newly minted
// client_credentials token is signed by the new active kid, and a token
// from before the rotation still verifies (pkg/rs against the JWKS) and
// introspects as active. The audit trail of these actions (client create,
// PAT create, rotation) reads back through the API with filters and in
// pages of 2, and through `sts audit list` with the same filters.
func TestServeKeyAndAuditAPI(t *testing.T) {
	t.Parallel()
	onBothBackends(t, testServeKeyAndAuditAPI)
}

// kidOf returns the kid in a compact JWS header.
func kidOf(t *testing.T, jws string) string {
	t.Helper()
	h, _, _ := strings.Cut(jws, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	var hdr struct{ Kid string }
	if err := json.Unmarshal(b, &hdr); err != nil {
		t.Fatal(err)
	}
	return hdr.Kid
}

func testServeKeyAndAuditAPI(t *testing.T) {
	// One algorithm, so each rotation has one set of kids to follow; the
	// RS256 key kept beside ES256 by default is rotated in
	// TestServeRS256BesideES256.
	setenv(t, "STS_KEYS_EXTRA_ALGORITHMS", "none")
	dir := t.TempDir()
	r := serve(t, "--data-dir", dir)
	checkServing(t, r)
	code, out, errOut := runCLI(t, "pat", "create", "--data-dir", dir, "--user", "admin", "--expires-in", "1d", "--scope", "*", "--scope", "sts:admin")
	admin := patRE.FindString(out)
	if code != 0 || admin == "" {
		t.Fatalf("pat create = %d, %q %q", code, out, errOut)
	}
	hc := h2cClient(admin)
	api := r.base + "/api"
	ctx := t.Context()
	keys := stsv1connect.NewKeyServiceClient(hc, api)
	grpcKeys := stsv1connect.NewKeyServiceClient(hc, api, connect.WithGRPC())
	audits := stsv1connect.NewAuditServiceClient(hc, api)

	// A client whose tokens show which key signs.
	orgs, err := stsv1connect.NewOrganizationServiceClient(hc, api).ListOrganizations(ctx, &stsv1.ListOrganizationsRequest{})
	if err != nil || len(orgs.GetOrganizations()) != 1 {
		t.Fatalf("ListOrganizations = %v, %v", orgs, err)
	}
	orgID := orgs.GetOrganizations()[0].GetId()
	sa, err := stsv1connect.NewPrincipalServiceClient(hc, api).CreatePrincipal(ctx, &stsv1.CreatePrincipalRequest{
		OrganizationId: orgID, Kind: stsv1.PrincipalKind_PRINCIPAL_KIND_SERVICE_ACCOUNT, Name: "ci-bot"})
	if err != nil {
		t.Fatalf("CreatePrincipal: %v", err)
	}
	cr, err := stsv1connect.NewClientServiceClient(hc, api).CreateClient(ctx, &stsv1.CreateClientRequest{
		OrganizationId: orgID, PrincipalId: sa.GetPrincipal().GetId(), Name: "ci",
		GrantTypes: []string{"client_credentials"}, Scopes: []string{"read"}, Audiences: []string{r.base},
	})
	if err != nil {
		t.Fatalf("CreateClient: %v", err)
	}
	clientID, clientSecret := cr.GetClient().GetId(), cr.GetClientSecret()
	cc := clientcredentials.Config{ClientID: clientID, ClientSecret: clientSecret, TokenURL: r.base + "/oauth2/token", Scopes: []string{"read"}}
	mint := func() string {
		t.Helper()
		tok, err := cc.Token(ctx)
		if err != nil {
			t.Fatalf("client_credentials: %v", err)
		}
		return tok.AccessToken
	}

	l, err := grpcKeys.ListSigningKeys(ctx, &stsv1.ListSigningKeysRequest{})
	if err != nil || len(l.GetKeys()) != 2 {
		t.Fatalf("ListSigningKeys over gRPC = %v, %v", l, err)
	}
	if b, _ := protojson.Marshal(l); strings.Contains(string(b), "PRIVATE") || strings.Contains(strings.ToLower(string(b)), "sealed") {
		t.Errorf("ListSigningKeys carries private material: %s", b)
	}
	var oldActive, oldNext string
	for _, k := range l.GetKeys() {
		switch k.GetState() {
		case stsv1.SigningKeyState_SIGNING_KEY_STATE_ACTIVE:
			oldActive = k.GetKid()
		case stsv1.SigningKeyState_SIGNING_KEY_STATE_NEXT:
			oldNext = k.GetKid()
		}
	}
	if got := jwksKIDs(t, r); !sameSet(got, []string{oldActive, oldNext}) {
		t.Fatalf("JWKS kids = %v, want %s and %s", got, oldActive, oldNext)
	}
	oldToken := mint()
	if kidOf(t, oldToken) != oldActive {
		t.Fatalf("token signed by %s, want the active key %s", kidOf(t, oldToken), oldActive)
	}

	// Without force a just-published next key is not activated.
	_, err = keys.RotateSigningKey(ctx, &stsv1.RotateSigningKeyRequest{})
	if connect.CodeOf(err) != connect.CodeFailedPrecondition || !strings.Contains(err.Error(), "force") {
		t.Errorf("RotateSigningKey without force = %v, want failed_precondition naming force", err)
	}
	rot, err := grpcKeys.RotateSigningKey(ctx, &stsv1.RotateSigningKeyRequest{Force: true})
	if err != nil {
		t.Fatalf("RotateSigningKey force over gRPC: %v", err)
	}
	newNext := rot.GetNextKid()
	if rot.GetActivatedKid() != oldNext || rot.GetRetiredKid() != oldActive || newNext == "" {
		t.Fatalf("RotateSigningKey = %v, want %s active and %s retired", rot, oldNext, oldActive)
	}
	// At once on this server: the JWKS and the signing key.
	if got := jwksKIDs(t, r); !sameSet(got, []string{oldActive, oldNext, newNext}) {
		t.Errorf("JWKS kids after rotation = %v, want retired %s, active %s, next %s", got, oldActive, oldNext, newNext)
	}
	newToken := mint()
	if kidOf(t, newToken) != oldNext {
		t.Errorf("token after rotation signed by %s, want the new active key %s", kidOf(t, newToken), oldNext)
	}
	v := &rs.Verifier{Issuer: jwtClaims(t, oldToken)["iss"].(string), Audience: r.base, JWKSURL: r.base + "/.well-known/jwks.json"}
	for name, tok := range map[string]string{"old": oldToken, "new": newToken} {
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Errorf("%s token does not verify against the JWKS after rotation: %v", name, err)
		}
	}
	if active := introspect(t, r, clientID, clientSecret, oldToken); !active {
		t.Error("a token signed by the retired key introspects as inactive")
	}
	// The CLI reads the same stored state.
	_, out, _ = runCLI(t, "keys", "list", "--data-dir", dir)
	if !strings.Contains(out, oldActive+"  ") || strings.Count(out, " retired ") != 1 || !strings.Contains(out, newNext) {
		t.Errorf("keys list after the API rotation:\n%s", out)
	}

	// The audit trail of all this, through the API.
	// Newest first: the API's rotation, then the first keys the server
	// made at its first start, by the scheduler.
	rotEv, err := audits.ListAuditEvents(ctx, &stsv1.ListAuditEventsRequest{Action: "signing_key.rotate"})
	if err != nil || len(rotEv.GetEvents()) != 2 || rotEv.GetEvents()[1].GetActor() != "system:scheduler" ||
		rotEv.GetEvents()[1].GetTarget() != "signing_key:"+oldActive {
		t.Fatalf("ListAuditEvents(signing_key.rotate) = %v, %v; want the API's rotation and the first keys", rotEv, err)
	}
	ev := rotEv.GetEvents()[0]
	if ev.GetTarget() != "signing_key:"+oldNext || !strings.HasPrefix(ev.GetActor(), "principal:") || ev.GetRequestId() == "" {
		t.Errorf("rotation event = %v", ev)
	}
	byReq, err := audits.ListAuditEvents(ctx, &stsv1.ListAuditEventsRequest{RequestId: ev.GetRequestId()})
	if err != nil || len(byReq.GetEvents()) != 1 || byReq.GetEvents()[0].GetId() != ev.GetId() {
		t.Errorf("ListAuditEvents(request_id %s) = %v, %v", ev.GetRequestId(), byReq, err)
	}
	created, err := audits.ListAuditEvents(ctx, &stsv1.ListAuditEventsRequest{Action: "client.create", OrganizationId: orgID})
	if err != nil || len(created.GetEvents()) != 1 || created.GetEvents()[0].GetTarget() != "client:"+clientID {
		t.Errorf("ListAuditEvents(client.create) = %v, %v", created, err)
	}
	pats, err := audits.ListAuditEvents(ctx, &stsv1.ListAuditEventsRequest{Action: "pat.create", Actor: "cli", PageSize: 1})
	if err != nil || len(pats.GetEvents()) != 1 || pats.GetNextPageToken() != "" {
		t.Errorf("ListAuditEvents(pat.create by cli) = %v, %v", pats, err)
	}
	// A second PAT, and the two token requests, whose events the audit
	// writer flushes in the background (within a second): wait for them so
	// the listing below is complete.
	code, out, _ = runCLI(t, "pat", "create", "--data-dir", dir, "--user", "admin", "--expires-in", "1d", "--scope", "*")
	notAdmin := patRE.FindString(out)
	if code != 0 || notAdmin == "" {
		t.Fatal("pat create (not admin) failed")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ex, err := audits.ListAuditEvents(ctx, &stsv1.ListAuditEventsRequest{Action: "token.exchange"})
		if err == nil && len(ex.GetEvents()) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("token.exchange events = %v, %v; want 2 within 10s", ex, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	all, err := audits.ListAuditEvents(ctx, &stsv1.ListAuditEventsRequest{PageSize: 500})
	// The first keys, the bootstrap organization and admin (and its
	// instance role), the service account, 2 pat.create, client.create,
	// signing_key.rotate, 2 token.exchange.
	if err != nil || len(all.GetEvents()) != 11 {
		t.Fatalf("ListAuditEvents = %v, %v; want 11 events", all, err)
	}
	boot, err := audits.ListAuditEvents(ctx, &stsv1.ListAuditEventsRequest{Actor: "bootstrap"})
	if err != nil || actionsOf(boot.GetEvents()) != "organization.create principal.create principal.instance_admin.grant" {
		t.Errorf("bootstrap events = %v, %v; want organization.create and the admin's principal.create and instance role", boot, err)
	}
	var want, got []string
	for _, e := range all.GetEvents() {
		want = append(want, e.GetId())
	}
	grpcAudits := stsv1connect.NewAuditServiceClient(hc, api, connect.WithGRPC())
	req := &stsv1.ListAuditEventsRequest{PageSize: 2}
	for range len(want) + 1 {
		p, err := grpcAudits.ListAuditEvents(ctx, req)
		if err != nil {
			t.Fatalf("ListAuditEvents page: %v", err)
		}
		for _, e := range p.GetEvents() {
			got = append(got, e.GetId())
		}
		if req.PageToken = p.GetNextPageToken(); req.PageToken == "" {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("pages of 2 = %v, want %v (no duplicates, no gaps)", got, want)
	}
	for _, e := range all.GetEvents() {
		b, _ := protojson.Marshal(e)
		for _, s := range []string{clientSecret, admin, notAdmin, oldToken, newToken} {
			if strings.Contains(string(b), s) {
				t.Errorf("an audit event carries a secret or token: %s", b)
			}
		}
	}

	// `sts audit list`: the same filters and paging, over the same storage.
	code, out, errOut = runCLI(t, "audit", "list", "--data-dir", dir, "--action", "client.create", "--org", "default")
	if code != 0 || !strings.Contains(out, "client:"+clientID) || strings.Count(out, "client.create") != 1 {
		t.Errorf("audit list --action client.create = %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "audit", "list", "--data-dir", dir, "--request-id", ev.GetRequestId(), "--json")
	var line map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &line) != nil || line["id"] != ev.GetId() || line["action"] != "signing_key.rotate" {
		t.Errorf("audit list --request-id --json = %d %q %q", code, out, errOut)
	}
	var cliIDs []string
	args := []string{"audit", "list", "--data-dir", dir, "--limit", "2", "--json"}
	for range len(want) + 1 {
		code, out, errOut = runCLI(t, args...)
		if code != 0 {
			t.Fatalf("audit list page = %d %q", code, errOut)
		}
		for l := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("audit list --json line %q: %v", l, err)
			}
			cliIDs = append(cliIDs, m["id"].(string))
		}
		_, tok, ok := strings.Cut(strings.TrimSpace(errOut), "--page-token ")
		if !ok {
			break
		}
		args = []string{"audit", "list", "--data-dir", dir, "--limit", "2", "--json", "--page-token", tok}
	}
	if !slices.Equal(cliIDs, want) {
		t.Errorf("audit list in pages of 2 = %v, want %v", cliIDs, want)
	}
	for _, bad := range [][]string{{"--limit", "-1"}, {"--since", "last tuesday"}, {"--page-token", "nope"}, {"--since", "1h", "--until", "2h"}} {
		code, _, errOut = runCLI(t, append([]string{"audit", "list", "--data-dir", dir}, bad...)...)
		if code != cli.ExitUsage || errOut == "" {
			t.Errorf("audit list %v = %d %q, want a usage error", bad, code, errOut)
		}
	}

	// Authorization: sts:admin is required.
	_, err = stsv1connect.NewKeyServiceClient(h2cClient(notAdmin), api).RotateSigningKey(ctx, &stsv1.RotateSigningKeyRequest{Force: true})
	if connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("RotateSigningKey without sts:admin: %v", err)
	}
	_, err = stsv1connect.NewAuditServiceClient(h2cClient(""), api, connect.WithGRPC()).ListAuditEvents(ctx, &stsv1.ListAuditEventsRequest{})
	if connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Errorf("ListAuditEvents without a credential: %v", err)
	}

	// A CLI rotation is audited too (actor cli).
	if code, out, errOut = runCLI(t, "keys", "rotate", "--force", "--data-dir", dir); code != 0 {
		t.Fatalf("keys rotate --force = %d %q %q", code, out, errOut)
	}
	cliRot, err := audits.ListAuditEvents(ctx, &stsv1.ListAuditEventsRequest{Action: "signing_key.rotate", Actor: "cli"})
	if err != nil || len(cliRot.GetEvents()) != 1 || cliRot.GetEvents()[0].GetTarget() != "signing_key:"+newNext {
		t.Errorf("CLI rotation event = %v, %v", cliRot, err)
	}

	logs := r.stderr.String()
	for _, s := range []string{admin, notAdmin, clientSecret, oldToken, newToken} {
		if strings.Contains(logs, s) {
			t.Error("a secret or token reached the server log")
		}
	}
	r.stop(t)
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// introspect asks /oauth2/introspect (RFC 7662) about token as the client.
func introspect(t *testing.T, r *run, id, secret, token string) bool {
	t.Helper()
	req, _ := http.NewRequest("POST", r.base+"/oauth2/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Active bool }
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&body) != nil {
		t.Fatalf("introspect = %d", resp.StatusCode)
	}
	return body.Active
}

// actionsOf lists the events' actions, sorted (events of one instant
// have no order among themselves), space-separated.
func actionsOf(evs []*stsv1.AuditEvent) string {
	var out []string
	for _, e := range evs {
		out = append(out, e.GetAction())
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}
