// The guides in this directory are tested: each test below reads the
// configuration, credential file and requests straight out of a guide's
// code blocks, runs them against a real sts, and judges the result with
// the client the guide names. A guide edited into something that does not
// work fails here.
package guides_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/oauth2/google"
	"golang.org/x/oauth2/google/downscope"

	"github.com/opensts/sts/internal/cli"
	"github.com/opensts/sts/internal/config"
	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
	"github.com/opensts/sts/internal/ststest"
	"github.com/opensts/sts/pkg/rs"
)

// block returns the body of the first fenced code block of guide whose
// first line is firstLine (for example "# sts.yaml"), or whose body
// contains it when firstLine is not a comment.
func block(t *testing.T, guide, firstLine string) string {
	t.Helper()
	data, err := os.ReadFile(guide)
	if err != nil {
		t.Fatal(err)
	}
	fence := regexp.MustCompile("(?ms)^```[a-z]*\n(.*?)^```")
	for _, m := range fence.FindAllStringSubmatch(string(data), -1) {
		body := m[1]
		if strings.HasPrefix(body, firstLine+"\n") || (!strings.HasPrefix(firstLine, "#") && strings.Contains(body, firstLine)) {
			return body
		}
	}
	t.Fatalf("%s has no code block with %q", guide, firstLine)
	return ""
}

// formOf collects the -d name=value arguments of the curl command in
// sh, replacing each "$(...)" or "$var" value by subject.
func formOf(sh, subject string) url.Values {
	v := url.Values{}
	arg := regexp.MustCompile(`-d ([a-z_]+)=("[^"]*"|\S+)`)
	for _, m := range arg.FindAllStringSubmatch(sh, -1) {
		val := m[2]
		if strings.HasPrefix(val, `"`) {
			val = subject
		}
		v.Add(m[1], val)
	}
	return v
}

// issuer is an external OpenID issuer of the test: an RSA key whose public
// half the guides' providers read from a jwks_file.
type issuer struct {
	iss      string
	key      *rsa.PrivateKey
	jwksFile string
}

func newIssuer(t *testing.T, iss string) *issuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "test-key", Algorithm: "RS256", Use: "sig"}}}
	b, _ := json.Marshal(set)
	file := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return &issuer{iss: iss, key: key, jwksFile: file}
}

func (i *issuer) mint(t *testing.T, claims map[string]any) string {
	t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: i.key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "test-key"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	std := jwt.Claims{Issuer: i.iss, IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
		Expiry: jwt.NewNumericDate(now.Add(15 * time.Minute)), ID: rand.Text()}
	tok, err := jwt.Signed(sig).Claims(std).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// serve starts sts with the configuration yaml (after edit), keeping
// the test's own listener and data directory.
func serve(t *testing.T, yaml string) *ststest.Server {
	t.Helper()
	file := filepath.Join(t.TempDir(), "sts.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	loaded, err := config.Load(config.Options{File: file, Environ: func() []string { return []string{"STS_DATA_DIR=" + dir} }})
	if err != nil {
		t.Fatalf("the guide's sts.yaml does not load: %v", err)
	}
	return ststest.NewTestServer(t, func(c *config.Config) {
		listen := c.Listen
		*c = loaded
		c.Listen = listen
	})
}

func post(t *testing.T, s *ststest.Server, path string, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := s.Client.PostForm(s.URL+path, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// verifier is the guides' resource server: pkg/rs for the issuer the
// guides configure, fetching the keys from the test server.
func verifier(s *ststest.Server, audience string) *rs.Verifier {
	return &rs.Verifier{Issuer: "https://sts.example.com", Audience: audience, JWKSURL: s.URL + "/.well-known/jwks.json"}
}

func TestGitHubActionsGuide(t *testing.T) {
	const guide = "github-actions.md"
	gh := newIssuer(t, "https://token.actions.githubusercontent.com")
	// The guide's configuration, with GitHub's key set read from a file
	// instead of fetched from GitHub.
	cfg := strings.Replace(block(t, guide, "# sts.yaml"), "        algorithms: [RS256]\n",
		"        algorithms: [RS256]\n        jwks_file: "+gh.jwksFile+"\n", 1)
	s := serve(t, cfg)
	workflow := block(t, guide, "# .github/workflows/deploy.yaml")

	claims := func(ref, environment string) map[string]any {
		return map[string]any{
			"aud": "https://sts.example.com", "sub": "repo:acme/app:environment:" + environment,
			"repository": "acme/app", "repository_owner": "acme", "ref": ref, "ref_type": "branch",
			"environment": environment, "sha": "3f1c0ffee", "actor": "ada", "run_id": "42",
		}
	}
	code, m := post(t, s, "/oauth2/token", formOf(workflow, gh.mint(t, claims("refs/heads/main", "production"))))
	tok, _ := m["access_token"].(string)
	if code != 200 || tok == "" {
		t.Fatalf("the workflow's exchange = %d %v", code, m)
	}
	got, err := verifier(s, "https://deploy.example.com").Verify(t.Context(), tok)
	if err != nil {
		t.Fatalf("pkg/rs refuses the token: %v", err)
	}
	if got.Subject != "github:acme/app:production" || got.Pool != "github-deploy" || !slices.Contains(strings.Fields(got.Scope), "deploy") {
		t.Errorf("token claims = sub %q pool %q scope %q", got.Subject, got.Pool, got.Scope)
	}
	// What the condition is for: another branch, or no environment. The
	// refusal is the answer the guide shows.
	refusal := map[string]any{}
	data, _ := os.ReadFile(guide)
	if m := regexp.MustCompile("answers `400` `([^`]+)`").FindSubmatch(data); m == nil || json.Unmarshal(m[1], &refusal) != nil {
		t.Fatalf("%s shows no refusal as answers `400` `{…}`", guide)
	}
	for _, c := range []map[string]any{claims("refs/heads/feature", "production"), claims("refs/heads/main", "staging")} {
		if code, m := post(t, s, "/oauth2/token", formOf(workflow, gh.mint(t, c))); code != http.StatusBadRequest || !reflect.DeepEqual(m, refusal) {
			t.Errorf("exchange for ref %v environment %v = %d %v, want 400 %v", c["ref"], c["environment"], code, m, refusal)
		}
	}
}

func kubernetesClaims(namespace, account string) map[string]any {
	return map[string]any{
		"aud": []string{"https://sts.example.com"}, "sub": "system:serviceaccount:" + namespace + ":" + account,
		"kubernetes.io": map[string]any{
			"namespace":      namespace,
			"serviceaccount": map[string]any{"name": account, "uid": "0b5e7a36-1c1f-4c1a-9d62-5a0d6a5a0001"},
			"pod":            map[string]any{"name": account + "-7d9c", "uid": "0b5e7a36-1c1f-4c1a-9d62-5a0d6a5a0002"},
		},
	}
}

func TestKubernetesGuide(t *testing.T) {
	const guide = "kubernetes.md"
	cluster := newIssuer(t, "https://kubernetes.default.svc.cluster.local")
	cfg := strings.Replace(block(t, guide, "# sts.yaml"), "/etc/sts/cluster-jwks.json", cluster.jwksFile, 1)
	s := serve(t, cfg)
	exchange := block(t, guide, "/oauth2/token")

	code, m := post(t, s, "/oauth2/token", formOf(exchange, cluster.mint(t, kubernetesClaims("payments", "api"))))
	tok, _ := m["access_token"].(string)
	if code != 200 || tok == "" {
		t.Fatalf("the pod's exchange = %d %v", code, m)
	}
	got, err := verifier(s, "https://sts.example.com").Verify(t.Context(), tok)
	if err != nil {
		t.Fatalf("pkg/rs refuses the token: %v", err)
	}
	if got.Subject != "system:serviceaccount:payments:api" || got.Scope != "payments:read" {
		t.Errorf("token claims = sub %q scope %q", got.Subject, got.Scope)
	}
	for _, c := range []map[string]any{kubernetesClaims("payments", "batch"), kubernetesClaims("default", "api")} {
		if code, m := post(t, s, "/oauth2/token", formOf(exchange, cluster.mint(t, c))); code != http.StatusBadRequest {
			t.Errorf("exchange for %v = %d %v, want 400", c["sub"], code, m)
		}
	}
}

func TestGoogleClientLibrariesGuide(t *testing.T) {
	const guide = "google-client-libraries.md"
	cluster := newIssuer(t, "https://kubernetes.default.svc.cluster.local")
	s := serve(t, strings.Replace(block(t, guide, "# sts.yaml"), "/etc/sts/cluster-jwks.json", cluster.jwksFile, 1))

	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(cluster.mint(t, kubernetesClaims("batch", "nightly"))), 0o600); err != nil {
		t.Fatal(err)
	}
	credFile := block(t, guide, `"type": "external_account"`)
	credFile = strings.Replace(credFile, "https://sts.example.com/v1/token", s.URL+"/v1/token", 1)
	credFile = strings.Replace(credFile, "/var/run/secrets/sts/token", tokenFile, 1)

	// The judge: Google's own loader and token source, as in the guide.
	creds, err := google.CredentialsFromJSON(t.Context(), []byte(credFile), "https://www.googleapis.com/auth/cloud-platform")
	if err != nil {
		t.Fatalf("google.CredentialsFromJSON: %v", err)
	}
	tok, err := creds.TokenSource.Token()
	if err != nil {
		t.Fatalf("the credential file's token source: %v", err)
	}
	got, err := verifier(s, "https://sts.example.com").Verify(t.Context(), tok.AccessToken)
	if err != nil {
		t.Fatalf("pkg/rs refuses the token: %v", err)
	}
	if got.Pool != "batch" || got.Scope != "warehouse.read" || got.Subject != "system:serviceaccount:batch:nightly" {
		t.Errorf("token claims = pool %q scope %q sub %q", got.Pool, got.Scope, got.Subject)
	}

	// Section 4: Google's downscope package, pointed at sts by its
	// UniverseDomain, narrows that token with the guide's boundary. Its
	// requests for sts.example.com, the host of the guide's issuer, reach
	// the test's server (what DNS does for a real deployment); any other
	// host is refused.
	down := block(t, guide, "downscope.DownscopingConfig{")
	domain := regexp.MustCompile(`UniverseDomain: *"([^"]+)"`).FindStringSubmatch(down)
	rule := regexp.MustCompile(`AvailableResource: *"([^"]+)", *AvailablePermissions: *\[\]string\{"([^"]+)"\}`).FindStringSubmatch(down)
	if domain == nil || rule == nil {
		t.Fatalf("the guide's downscope block has no UniverseDomain or rule: %s", down)
	}
	toServer := &http.Client{Transport: hostTo{host: "sts.example.com", url: s.URL}}
	dts, err := downscope.NewTokenSource(context.WithValue(t.Context(), oauth2.HTTPClient, toServer), downscope.DownscopingConfig{
		RootSource: creds.TokenSource, UniverseDomain: domain[1],
		Rules: []downscope.AccessBoundaryRule{{AvailableResource: rule[1], AvailablePermissions: []string{rule[2]}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	dtok, err := dts.Token()
	if err != nil {
		t.Fatalf("downscope: %v", err)
	}
	claims, err := verifier(s, "https://sts.example.com").Verify(t.Context(), dtok.AccessToken)
	if err != nil {
		t.Fatalf("pkg/rs refuses the downscoped token: %v", err)
	}
	if !claims.Allowed(rule[1]+"/objects/q3.csv", rule[2]) || claims.Allowed(rule[1]+"/objects/q3.csv", "storage.objects.delete") ||
		claims.Allowed("//storage.example/buckets/payroll/objects/2026.csv", rule[2]) || claims.Pool != "batch" {
		t.Errorf("downscoped token: pool %q, boundary %s, want the guide's rule alone", claims.Pool, claims.CAB)
	}
	if time.Until(dtok.Expiry) <= 0 || dtok.Expiry.After(tok.Expiry.Add(2*time.Second)) {
		t.Errorf("downscoped token expires %v, root token %v: want it to end no later", dtok.Expiry, tok.Expiry)
	}

	// The guide's warning: the same file with gcloud's
	// service_account_impersonation_url fails with the error it quotes
	// (the URL is a closed local port: nothing may leave the machine).
	want := regexp.MustCompile("reports `(.*?)…").FindStringSubmatch(strings.Join(strings.Fields(mustRead(t, guide)), " "))
	if want == nil {
		t.Fatal("the guide no longer quotes the impersonation error")
	}
	withImp := strings.Replace(credFile, `"token_url"`, `"service_account_impersonation_url": "http://127.0.0.1:9/v1/projects/-/serviceAccounts/sa@p.iam.gserviceaccount.com:generateAccessToken",
  "token_url"`, 1)
	creds, err = google.CredentialsFromJSON(t.Context(), []byte(withImp), "https://www.googleapis.com/auth/cloud-platform")
	if err != nil {
		t.Fatalf("google.CredentialsFromJSON with service_account_impersonation_url: %v", err)
	}
	if _, err := creds.TokenSource.Token(); err == nil || !strings.Contains(err.Error(), want[1]) {
		t.Errorf("with service_account_impersonation_url: Token() = %v, want the guide's %s", err, want[1])
	}
}

// hostTo sends the requests for host to the server at url, and refuses
// every other host: nothing leaves the machine.
type hostTo struct{ host, url string }

func (h hostTo) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host != h.host {
		return nil, fmt.Errorf("request for %s, want only %s", r.URL.Host, h.host)
	}
	u, err := url.Parse(h.url)
	if err != nil {
		return nil, err
	}
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host, r.Host = u.Scheme, u.Host, ""
	return http.DefaultTransport.RoundTrip(r)
}

func mustRead(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// stsCommands turns the `sts …` commands of a shell block into argument
// lists (continuation lines joined, quotes dropped, "$(sts …)" unwrapped,
// and what follows a "|" or "#" cut), substituting vars.
func stsCommands(sh string, vars map[string]string) [][]string {
	var out [][]string
	for line := range strings.SplitSeq(strings.ReplaceAll(sh, "\\\n", " "), "\n") {
		line, _, _ = strings.Cut(line, " #")
		line, _, _ = strings.Cut(line, "|")
		_, cmd, ok := strings.Cut(line, "sts ")
		if !ok || strings.Contains(line, "curl ") {
			continue
		}
		cmd = strings.TrimSuffix(strings.TrimSpace(cmd), ")")
		var args []string
		for f := range strings.FieldsSeq(cmd) {
			f = strings.Trim(f, `"'`)
			for k, v := range vars {
				f = strings.ReplaceAll(f, "$"+k, v)
			}
			args = append(args, f)
		}
		out = append(out, args)
	}
	return out
}

// runSTS runs one sts command on the server's data directory.
func runSTS(t *testing.T, s *ststest.Server, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	args = append(args, "--data-dir", s.Config.DataDir)
	if code := cli.Main(t.Context(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("sts %s = %d: %s", strings.Join(args, " "), code, stderr.String())
	}
	return stdout.String()
}

func TestServiceAccountsGuide(t *testing.T) {
	const guide = "service-accounts.md"
	s := serve(t, "issuer: https://sts.example.com\n")
	cmds := stsCommands(block(t, guide, "sts client create"), map[string]string{})
	if len(cmds) != 2 {
		t.Fatalf("expected the guide's two commands, got %q", cmds)
	}
	sa := strings.TrimSpace(runSTS(t, s, cmds[0]...))
	for i, a := range cmds[1] {
		cmds[1][i] = strings.ReplaceAll(a, "$SA", sa)
	}
	out := runSTS(t, s, cmds[1]...)
	id := regexp.MustCompile(`^(\S+)\n`).FindStringSubmatch(out) // the ID, then the secret
	secret := regexp.MustCompile(`\n(sts_cs_\S+)\n$`).FindStringSubmatch(out)
	if id == nil || secret == nil {
		t.Fatalf("client create printed %q", out)
	}

	// The guide's program, with the judge it names.
	cfg := clientcredentials.Config{
		ClientID: id[1], ClientSecret: secret[1], TokenURL: s.URL + "/oauth2/token",
		Scopes: []string{"invoices:read"}, EndpointParams: url.Values{"audience": {"https://billing.example.com"}},
	}
	tok, err := cfg.Token(t.Context())
	if err != nil {
		t.Fatalf("clientcredentials: %v", err)
	}
	got, err := verifier(s, "https://billing.example.com").Verify(t.Context(), tok.AccessToken)
	if err != nil {
		t.Fatalf("pkg/rs refuses the token: %v", err)
	}
	if got.Subject != sa || got.ClientID != id[1] || got.Scope != "invoices:read" {
		t.Errorf("token claims = sub %q client_id %q scope %q", got.Subject, got.ClientID, got.Scope)
	}
	// The ceilings the guide promises.
	over := cfg
	over.Scopes = []string{"invoices:write"}
	if _, err := over.Token(t.Context()); err == nil {
		t.Error("a scope beyond the registration was granted")
	}
}

func TestGitpodPATsGuide(t *testing.T) {
	const guide = "gitpod-pats.md"
	s := serve(t, "issuer: https://sts.example.com\n")
	runSTS(t, s, "principal", "create", "--org", "default", "--kind", "user", "--name", "ada")
	cmds := stsCommands(block(t, guide, "sts pat create"), nil)
	if len(cmds) != 1 {
		t.Fatalf("expected one command, got %q", cmds)
	}
	pat := regexp.MustCompile(`sts_pat_[0-9A-Za-z]+`).FindString(runSTS(t, s, cmds[0]...))
	if pat == "" {
		t.Fatal("pat create printed no token")
	}
	// The curl call: its path and body, with the PAT as bearer.
	curl := block(t, guide, "GetAuthenticatedIdentity \\")
	path := regexp.MustCompile(`https://sts\.example\.com(\S+)`).FindStringSubmatch(curl)[1]
	req, _ := http.NewRequest("POST", s.URL+path, strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+pat)
	resp, err := s.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	resp.Body.Close()
	if resp.StatusCode != 200 || m["subject"] == nil {
		t.Fatalf("the guide's curl = %d %v", resp.StatusCode, m)
	}
	// The generated client, as in the guide.
	httpClient := &http.Client{Transport: bearerTransport{token: pat}}
	identity := gitpodv1connect.NewIdentityServiceClient(httpClient, s.URL+"/api")
	got, err := identity.GetAuthenticatedIdentity(t.Context(), &gitpodv1.GetAuthenticatedIdentityRequest{})
	if err != nil || got.GetSubject().GetId() == "" {
		t.Fatalf("GetAuthenticatedIdentity = %v, %v", got, err)
	}
	// identity:read is all the token may do.
	users := gitpodv1connect.NewUserServiceClient(httpClient, s.URL+"/api")
	if _, err := users.ListPersonalAccessTokens(t.Context(), &gitpodv1.ListPersonalAccessTokensRequest{}); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("ListPersonalAccessTokens with identity:read = %v, want permission_denied", err)
	}
}

type bearerTransport struct{ token string }

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

func TestConfluentGuide(t *testing.T) {
	const guide = "confluent.md"
	cluster := newIssuer(t, "https://kubernetes.default.svc.cluster.local")
	s := serve(t, strings.Replace(block(t, guide, "# sts.yaml"), "/etc/sts/cluster-jwks.json", cluster.jwksFile, 1))
	exchange := block(t, guide, "/sts/v1/oauth2/token")
	code, m := post(t, s, "/sts/v1/oauth2/token", formOf(exchange, cluster.mint(t, kubernetesClaims("streaming", "producer"))))
	if code != 200 || m["access_token"] == nil || m["expires_in"] != float64(600) {
		t.Fatalf("the guide's exchange = %d %v", code, m)
	}
	// Another workload of the cluster is refused, in Confluent's error shape.
	code, m = post(t, s, "/sts/v1/oauth2/token", formOf(exchange, cluster.mint(t, kubernetesClaims("streaming", "consumer"))))
	if errs, _ := m["errors"].([]any); code == 200 || len(errs) != 1 {
		t.Errorf("exchange for another service account = %d %v, want one Confluent error", code, m)
	}
}

// TestResourceServerGuide: the guide's downscoped exchange (its curl
// command, at the pool the README declares) gives a token that pkg/rs
// verifies and whose boundary Allowed enforces as the guide's check says.
func TestResourceServerGuide(t *testing.T) {
	const guide = "resource-server.md"
	gh := newIssuer(t, "https://token.actions.githubusercontent.com")
	pool := block(t, "../../README.md", "organizations:")
	pool = strings.Replace(pool, "audiences: [sts]}", "audiences: [sts], jwks_file: "+gh.jwksFile+"}", 1)
	s := serve(t, "issuer: https://sts.example.com\n"+pool)

	sh := block(t, guide, "localhost:8080/v1/token")
	form := formOf(sh, gh.mint(t, map[string]any{"aud": "sts", "sub": "repo:acme/app:ref:refs/heads/main",
		"repository": "acme/app", "repository_owner": "acme"}))
	opt := regexp.MustCompile(`(?s)--data-urlencode '([a-z_]+)=(.*?)'`).FindStringSubmatch(sh)
	if opt == nil {
		t.Fatalf("%s's exchange has no --data-urlencode 'options=…': %s", guide, sh)
	}
	form.Set(opt[1], opt[2])
	code, m := post(t, s, "/v1/token", form)
	tok, _ := m["access_token"].(string)
	if code != http.StatusOK || tok == "" {
		t.Fatalf("the guide's exchange = %d %v", code, m)
	}
	claims, err := verifier(s, "https://sts.example.com").Verify(t.Context(), tok)
	if err != nil {
		t.Fatalf("pkg/rs refuses the downscoped token: %v", err)
	}
	check := regexp.MustCompile(`claims\.Allowed\("([^"]+)", "([^"]+)"\)`).FindStringSubmatch(block(t, guide, "claims.Allowed("))
	if check == nil {
		t.Fatalf("%s has no claims.Allowed(resource, permission) check", guide)
	}
	resource, permission := check[1], check[2]
	if !claims.Allowed(resource, permission) {
		t.Errorf("Allowed(%q, %q) = false for the guide's boundary %s", resource, permission, claims.CAB)
	}
	for _, c := range [][2]string{{resource, "storage.objects.delete"}, {"//storage.example/buckets/reports-old/x", permission}} {
		if claims.Allowed(c[0], c[1]) {
			t.Errorf("Allowed(%q, %q) = true; the guide's boundary names neither", c[0], c[1])
		}
	}
}
