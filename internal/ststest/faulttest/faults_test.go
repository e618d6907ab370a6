package faulttest

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite" // integrity_check on the data file

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
	"github.com/opensts/sts/internal/ststest/faultproxy"
	"github.com/opensts/sts/internal/ststest/pgtest"
	"github.com/opensts/sts/internal/ststest/redistest"
)

// buildOnce builds cmd/sts once per test binary.
var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// TestMain removes the built binary's directory once every test is done
// (each run of the package built one, and they piled up in the temporary
// directory).
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

func stsBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sts-faults-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "sts")
		// Built as the release image builds it (.ko.yaml, checked by
		// deploy's TestStaticBuild): the harness faults the binary that
		// ships, and the two builds share the build cache.
		build := exec.Command("go", "build", "-trimpath", "-o", binPath, "github.com/opensts/sts/cmd/sts")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := build.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// long reports whether the long run was asked for.
func long() bool { return os.Getenv("STS_FAULTS_LONG") == "1" }

// node is one `sts serve` process and the environment its CLI commands
// share (data_dir, storage).
type node struct {
	t       *testing.T
	bin     string
	dataDir string
	listen  string
	env     []string
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has exited
	logs    *bytes.Buffer
	reaper  bool // a cleanup kills a process still running when the test ends
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func (n *node) base() string { return "http://" + n.listen }

// run runs a CLI command against the node's storage and returns stdout.
func (n *node) run(args ...string) string {
	n.t.Helper()
	cmd := exec.Command(n.bin, append(args, "--data-dir", n.dataDir)...)
	cmd.Env = append(os.Environ(), n.env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		n.t.Fatalf("sts %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

// start starts sts serve and waits until /readyz answers 200.
func (n *node) start() {
	n.t.Helper()
	n.cmd = exec.Command(n.bin, "serve", "--listen", n.listen, "--data-dir", n.dataDir)
	n.cmd.Env = append(os.Environ(), append(n.env, "STS_LOG_FORMAT=json", "STS_HTTP_SHUTDOWN_TIMEOUT=2s",
		"STS_AUDIT_MODE=required")...)
	n.logs = &bytes.Buffer{}
	n.cmd.Stdout, n.cmd.Stderr = io.Discard, n.logs
	if err := n.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	exited := make(chan struct{})
	n.exited = exited
	cmd := n.cmd
	go func() { _ = cmd.Wait(); close(exited) }()
	if !n.reaper {
		// A test that fails midway leaves no process behind (nor, with
		// it, files open on a file system the test mounted).
		n.reaper = true
		n.t.Cleanup(func() {
			_ = n.cmd.Process.Kill()
			<-n.exited
		})
	}
	n.waitReady(30 * time.Second)
}

func (n *node) waitReady(within time.Duration) {
	n.t.Helper()
	if !n.ready(within) {
		n.t.Fatalf("sts serve not ready within %s; log:\n%s", within, n.logs.String())
	}
}

// ready reports whether /readyz answered 200 within the given time.
func (n *node) ready(within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		resp, err := http.Get(n.base() + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// kill ends the process with SIGKILL, as a crash would.
func (n *node) kill() {
	_ = n.cmd.Process.Kill()
	<-n.exited
}

// stop sends SIGTERM and returns the exit code and how long it took.
func (n *node) stop() (int, time.Duration) {
	start := time.Now()
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(time.Minute):
		_ = n.cmd.Process.Kill()
		<-n.exited
	}
	return n.cmd.ProcessState.ExitCode(), time.Since(start)
}

// ledger records every write the server acknowledged.
type ledger struct {
	mu      sync.Mutex
	clients []string // client IDs whose CreateClient answered OK
	// deleted are the clients whose DeleteClient answered OK; deleting,
	// every client a DeleteClient was sent for, answered or not.
	deleted  []string
	deleting []string
	pats     []string // PAT IDs whose CreatePersonalAccessToken answered OK
	// patsDeleted are the PATs whose DeletePersonalAccessToken answered OK;
	// patsDeleting, every PAT a deletion was sent for, and patSecrets
	// their secrets (to show a deleted PAT no longer authenticates).
	patsDeleted  []string
	patsDeleting []string
	patSecrets   map[string]string
	hosts        []string // host token IDs whose CreateHostAuthenticationToken answered OK
	people       []string // principal IDs whose CreatePrincipal answered OK
	// disabled are the principals whose SetPrincipalDisabled answered OK;
	// disabling, every one it was sent for.
	disabled  []string
	disabling []string
	orgs      []string // organization IDs whose CreateOrganization answered OK
	// updated are the organizations whose UpdateOrganization (the tier to
	// ledgerTier) answered OK; updating, every one an update was sent for.
	updated  []string
	updating []string
	revoked  []string // access tokens whose revocation answered 200
	tokens   int      // tokens issued (client_credentials)
	jtis     []string // jti of every token the server answered 200
	refused  int      // writes not acknowledged (crash, outage, shed)
	maxHang  time.Duration

	// The refresh family: rt is the newest refresh token the server
	// handed out; a rotation whose answer was lost is retried with the
	// same token (docs/design.md#refresh-rotation).
	rt          string
	rotations   int    // rotations answered 200
	retries     int    // rotations retried after a lost or refused answer
	familyError string // a definite refusal (invalid_grant): the family ended

	kids []string // kids activated by acknowledged forced signing-key rotations
}

func (l *ledger) hang(d time.Duration) {
	l.mu.Lock()
	l.maxHang = max(l.maxHang, d)
	l.mu.Unlock()
}

// writer drives mixed writes against the node until ctx ends: an admin
// CreateClient, CreatePersonalAccessToken and CreateHostAuthenticationToken,
// a client_credentials token, the token's revocation, and every fourth
// round a CreatePrincipal, a CreateOrganization and an UpdateOrganization
// of it, one round later a DeletePersonalAccessToken of the round's new PAT,
// two rounds later a DeleteClient of the round's new client, and three
// rounds later a SetPrincipalDisabled of the principal.
type writer struct {
	n              *node
	org, principal string
	runner         string // a runner principal, for host tokens
	adminPAT       string
	clientID, sec  string
	l              *ledger
	http           *http.Client
}

func (w *writer) loop(ctx context.Context) {
	var principal string // the principal of this cycle of four rounds
	for i := 0; ctx.Err() == nil; i++ {
		id := w.createClient(ctx, i)
		if id == "" {
			time.Sleep(10 * time.Millisecond) // the server is down: do not spin
		}
		patID, patSecret := w.createPAT(ctx, i)
		w.createHostToken(ctx, i)
		w.tokenAndRevoke(ctx)
		if i%4 == 0 {
			principal = w.createPrincipal(ctx, i)
			if org := w.createOrganization(ctx, i); org != "" {
				w.updateOrganization(ctx, org)
			}
		}
		if i%4 == 1 && patID != "" {
			w.deletePAT(ctx, patID, patSecret)
		}
		if i%4 == 2 && id != "" {
			w.deleteClient(ctx, id)
		}
		if i%4 == 3 && principal != "" {
			w.disablePrincipal(ctx, principal)
		}
	}
}

// refreshLoop rotates the ledger's refresh family until ctx ends, each
// rotation at the next of ws (one writer per replica: the family moves
// between replicas). An answer lost to a kill or an outage leaves rt as it
// was: the next attempt sends the same old token, and the server must hand
// back the same successor rather than revoke the family as reuse.
func refreshLoop(ctx context.Context, ws ...*writer) {
	for i := 0; ctx.Err() == nil && ws[i%len(ws)].rotate(ctx); i++ {
		time.Sleep(20 * time.Millisecond)
	}
}

// rotate makes one rotation and reports whether the family may go on.
func (w *writer) rotate(ctx context.Context) bool {
	w.l.mu.Lock()
	rt := w.l.rt
	w.l.mu.Unlock()
	status, body, err := w.post(ctx, "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	w.l.mu.Lock()
	defer w.l.mu.Unlock()
	if err != nil || status >= 500 || status == http.StatusTooManyRequests {
		w.l.retries++ // nothing promised: retry with the same token
		time.Sleep(10 * time.Millisecond)
		return true
	}
	var resp struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		Error        string `json:"error"`
	}
	_ = json.Unmarshal(body, &resp)
	if status != 200 || resp.RefreshToken == "" {
		w.l.familyError = fmt.Sprintf("%d %s", status, resp.Error) // never the token
		return false
	}
	jti, err := tokenJTI(resp.AccessToken)
	if err != nil {
		w.l.familyError = err.Error()
		return false
	}
	w.l.rt = resp.RefreshToken
	w.l.rotations++
	w.l.jtis = append(w.l.jtis, jti)
	return true
}

func tail(s string, n int) string { return s[max(0, len(s)-n):] }

// write times one admin call and records it in the ledger: a failure
// counts as refused, a success appends the ID the call returns to *acked.
// It returns that ID, "" when the write was not acknowledged.
func (w *writer) write(acked *[]string, call func() (string, error)) string {
	start := time.Now()
	id, err := call()
	w.l.hang(time.Since(start))
	w.l.mu.Lock()
	defer w.l.mu.Unlock()
	if err != nil {
		if os.Getenv("STS_FAULTS_DEBUG") != "" {
			fmt.Fprintf(os.Stderr, "write: %v\n", err)
		}
		w.l.refused++
		return ""
	}
	*acked = append(*acked, id)
	return id
}

// change is write for a change of record id: id goes into *sent first,
// answered or not, for the checks of a change the answer did not confirm.
func (w *writer) change(sent, acked *[]string, id string, call func() error) {
	w.l.mu.Lock()
	*sent = append(*sent, id)
	w.l.mu.Unlock()
	w.write(acked, func() (string, error) { return id, call() })
}

// createClient returns the new client's ID, "" when the create was not
// acknowledged.
func (w *writer) createClient(ctx context.Context, i int) string {
	return w.write(&w.l.clients, func() (string, error) {
		resp, err := stsv1connect.NewClientServiceClient(w.api(), w.n.base()).CreateClient(ctx, &stsv1.CreateClientRequest{
			OrganizationId: w.org, PrincipalId: w.principal, Name: "ledger-" + strconv.Itoa(i), GrantTypes: []string{"client_credentials"}})
		return resp.GetClient().GetId(), err
	})
}

// deleteClient deletes client id through the admin API.
func (w *writer) deleteClient(ctx context.Context, id string) {
	w.change(&w.l.deleting, &w.l.deleted, id, func() error {
		_, err := stsv1connect.NewClientServiceClient(w.api(), w.n.base()).DeleteClient(ctx, &stsv1.DeleteClientRequest{ClientId: id})
		return err
	})
}

// createPAT creates a PAT for the admin (the caller) through the API. It
// returns the PAT's ID and secret, "" when the create was not
// acknowledged.
func (w *writer) createPAT(ctx context.Context, i int) (id, secret string) {
	id = w.write(&w.l.pats, func() (string, error) {
		resp, err := gitpodv1connect.NewUserServiceClient(w.api(), w.n.base()).CreatePersonalAccessToken(ctx,
			&gitpodv1.CreatePersonalAccessTokenRequest{Description: "ledger-" + strconv.Itoa(i), ValidFor: durationpb.New(24 * time.Hour), ReadOnly: true})
		secret = resp.GetToken()
		return resp.GetPersonalAccessToken().GetId(), err
	})
	return id, secret
}

// deletePAT deletes PAT id, whose secret is secret, through the admin API
// (the admin owns it).
func (w *writer) deletePAT(ctx context.Context, id, secret string) {
	w.l.mu.Lock()
	w.l.patSecrets[id] = secret
	w.l.mu.Unlock()
	w.change(&w.l.patsDeleting, &w.l.patsDeleted, id, func() error {
		_, err := gitpodv1connect.NewUserServiceClient(w.api(), w.n.base()).
			DeletePersonalAccessToken(ctx, &gitpodv1.DeletePersonalAccessTokenRequest{PersonalAccessTokenId: id})
		return err
	})
}

// createHostToken stores a host token (an SCM secret) of the admin for the
// ledger's runner through the API.
func (w *writer) createHostToken(ctx context.Context, i int) {
	w.write(&w.l.hosts, func() (string, error) {
		resp, err := gitpodv1connect.NewRunnerConfigurationServiceClient(w.api(), w.n.base()).CreateHostAuthenticationToken(ctx,
			&gitpodv1.CreateHostAuthenticationTokenRequest{RunnerId: w.runner, Host: "github.com", Token: "ghp_ledger" + strconv.Itoa(i),
				Source: gitpodv1.HostAuthenticationTokenSource_HOST_AUTHENTICATION_TOKEN_SOURCE_PAT})
		return resp.GetToken().GetId(), err
	})
}

// The names of the principals and organizations the ledger creates: the
// audit check finds every one stored, acknowledged or not, by its name.
const (
	ledgerPrincipal = "ledger-p-"
	ledgerOrg       = "ledger-o-"
	ledgerTier      = "ledger-updated" // the tier UpdateOrganization sets
)

// createPrincipal creates a service-account principal in the ledger's
// organization through the admin API and returns its ID, "" when the
// create was not acknowledged.
func (w *writer) createPrincipal(ctx context.Context, i int) string {
	return w.write(&w.l.people, func() (string, error) {
		resp, err := stsv1connect.NewPrincipalServiceClient(w.api(), w.n.base()).CreatePrincipal(ctx, &stsv1.CreatePrincipalRequest{
			OrganizationId: w.org, Kind: stsv1.PrincipalKind_PRINCIPAL_KIND_SERVICE_ACCOUNT, Name: ledgerPrincipal + strconv.Itoa(i)})
		return resp.GetPrincipal().GetId(), err
	})
}

// disablePrincipal disables principal id through the admin API.
func (w *writer) disablePrincipal(ctx context.Context, id string) {
	w.change(&w.l.disabling, &w.l.disabled, id, func() error {
		_, err := stsv1connect.NewPrincipalServiceClient(w.api(), w.n.base()).
			SetPrincipalDisabled(ctx, &stsv1.SetPrincipalDisabledRequest{PrincipalId: id, Disabled: true})
		return err
	})
}

// createOrganization creates an organization through the admin API and
// returns its ID, "" when the create was not acknowledged.
func (w *writer) createOrganization(ctx context.Context, i int) string {
	return w.write(&w.l.orgs, func() (string, error) {
		resp, err := stsv1connect.NewOrganizationServiceClient(w.api(), w.n.base()).
			CreateOrganization(ctx, &stsv1.CreateOrganizationRequest{Name: ledgerOrg + strconv.Itoa(i)})
		return resp.GetOrganization().GetId(), err
	})
}

// updateOrganization sets organization id's tier to ledgerTier through the
// admin API.
func (w *writer) updateOrganization(ctx context.Context, id string) {
	w.change(&w.l.updating, &w.l.updated, id, func() error {
		tier := ledgerTier
		_, err := stsv1connect.NewOrganizationServiceClient(w.api(), w.n.base()).
			UpdateOrganization(ctx, &stsv1.UpdateOrganizationRequest{OrganizationId: id, Tier: &tier})
		return err
	})
}

// storedPrincipals lists the principals of the ledger's organization that
// the ledger created (by name), through the API: ID → disabled.
func (w *writer) storedPrincipals(ctx context.Context) (map[string]bool, error) {
	res, err := stsv1connect.NewPrincipalServiceClient(w.api(), w.n.base()).
		ListPrincipals(ctx, &stsv1.ListPrincipalsRequest{OrganizationId: w.org})
	if err != nil {
		return nil, err
	}
	stored := map[string]bool{}
	for _, p := range res.GetPrincipals() {
		if strings.HasPrefix(p.GetName(), ledgerPrincipal) {
			stored[p.GetId()] = p.GetDisabled()
		}
	}
	return stored, nil
}

// storedOrganizations lists the organizations the ledger created (by
// name), through the API: ID → tier.
func (w *writer) storedOrganizations(ctx context.Context) (map[string]string, error) {
	res, err := stsv1connect.NewOrganizationServiceClient(w.api(), w.n.base()).
		ListOrganizations(ctx, &stsv1.ListOrganizationsRequest{})
	if err != nil {
		return nil, err
	}
	stored := map[string]string{}
	for _, o := range res.GetOrganizations() {
		if strings.HasPrefix(o.GetName(), ledgerOrg) {
			stored[o.GetId()] = o.GetTier()
		}
	}
	return stored, nil
}

// storedSets is what the node holds of each kind of record the ledger
// writes.
type storedSets struct {
	pats, hosts map[string]bool
	people      map[string]bool   // ID → disabled
	orgs        map[string]string // ID → tier
}

// stored reads storedSets from the running node.
func (w *writer) stored(t *testing.T) storedSets {
	t.Helper()
	st := storedSets{pats: w.storedPATs()}
	var err error
	if st.hosts, err = w.storedHostTokens(t.Context()); err != nil {
		t.Fatalf("list host tokens: %v", err)
	}
	if st.people, err = w.storedPrincipals(t.Context()); err != nil {
		t.Fatalf("list principals: %v", err)
	}
	if st.orgs, err = w.storedOrganizations(t.Context()); err != nil {
		t.Fatalf("list organizations: %v", err)
	}
	return st
}

// storedPATs lists the admin's PATs (direct mode: the node's storage).
func (w *writer) storedPATs() map[string]bool {
	stored := map[string]bool{}
	for _, line := range strings.Split(w.n.run("pat", "list", "--user", "admin"), "\n")[1:] {
		if f := strings.Fields(line); len(f) > 0 {
			stored[f[0]] = true
		}
	}
	return stored
}

// storedHostTokens lists the host tokens of the ledger's runner through the
// API.
func (w *writer) storedHostTokens(ctx context.Context) (map[string]bool, error) {
	rs := gitpodv1connect.NewRunnerConfigurationServiceClient(w.api(), w.n.base())
	stored := map[string]bool{}
	for page := ""; ; {
		res, err := rs.ListHostAuthenticationTokens(ctx, &gitpodv1.ListHostAuthenticationTokensRequest{
			Filter:     &gitpodv1.ListHostAuthenticationTokensRequest_Filter{RunnerId: &w.runner},
			Pagination: &gitpodv1.PaginationRequest{Token: page, PageSize: 100}})
		if err != nil {
			return nil, err
		}
		for _, t := range res.GetTokens() {
			stored[t.GetId()] = true
		}
		if page = res.GetPagination().GetNextToken(); page == "" {
			return stored, nil
		}
	}
}

// bearer adds the admin PAT to every request.
type bearer struct {
	tok  string
	next http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.tok)
	return b.next.RoundTrip(r)
}

// api is the admin API's HTTP client.
func (w *writer) api() *http.Client {
	return &http.Client{Timeout: w.http.Timeout, Transport: bearer{tok: w.adminPAT, next: http.DefaultTransport}}
}

func (w *writer) post(ctx context.Context, path string, form url.Values) (int, []byte, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, w.n.base()+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(w.clientID, w.sec)
	start := time.Now()
	resp, err := w.http.Do(req)
	w.l.hang(time.Since(start))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// mint gets a client_credentials token and records its jti in the ledger
// (its token.exchange event is checked); "" when none was issued.
func (w *writer) mint(ctx context.Context) string {
	status, body, err := w.post(ctx, "/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}})
	if err != nil || status != 200 {
		if os.Getenv("STS_FAULTS_DEBUG") != "" {
			fmt.Fprintf(os.Stderr, "token: %d %s %v\n", status, body, err)
		}
		w.l.mu.Lock()
		w.l.refused++
		w.l.mu.Unlock()
		return ""
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if json.Unmarshal(body, &tok) != nil || tok.AccessToken == "" {
		return ""
	}
	jti, err := tokenJTI(tok.AccessToken)
	if err != nil {
		w.n.t.Errorf("issued token: %v", err)
		return ""
	}
	w.l.mu.Lock()
	w.l.tokens++
	w.l.jtis = append(w.l.jtis, jti)
	w.l.mu.Unlock()
	return tok.AccessToken
}

func (w *writer) tokenAndRevoke(ctx context.Context) {
	tok := w.mint(ctx)
	if tok == "" {
		return
	}
	status, _, err := w.post(ctx, "/oauth2/revoke", url.Values{"token": {tok}})
	w.l.mu.Lock()
	defer w.l.mu.Unlock()
	if err != nil || status != 200 {
		w.l.refused++
		return
	}
	w.l.revoked = append(w.l.revoked, tok)
}

// tokenJTI reads the jti of one of our JWT access tokens (the payload
// only: the signature is the server's business, not the ledger's).
func tokenJTI(tok string) (string, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "", fmt.Errorf("access token is not a JWT (%d parts)", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", err
	}
	var c struct {
		JTI string `json:"jti"`
	}
	if err := json.Unmarshal(payload, &c); err != nil || c.JTI == "" {
		return "", fmt.Errorf("access token without jti: %v", err)
	}
	return c.JTI, nil
}

// setup starts the node the first time and creates what the writer needs:
// a service account, a client for it, an sts:admin PAT.
func setup(t *testing.T, n *node) *writer {
	n.start()
	var org string
	for _, line := range strings.Split(n.run("org", "list"), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[1] == "default" {
			org = f[0]
		}
	}
	if org == "" {
		t.Fatal("no default organization")
	}
	principal := strings.TrimSpace(n.run("principal", "create", "--org", org, "--kind", "service-account", "--name", "ledger"))
	out := n.run("client", "create", "--org", org, "--principal", principal, "--audience", "https://ledger.example",
		"--scope", "read", "--scope", "offline_access", "--grant-type", "client_credentials", "--grant-type", "refresh_token",
		"--grant-type", "urn:ietf:params:oauth:grant-type:token-exchange")
	runner := strings.TrimSpace(n.run("principal", "create", "--org", org, "--kind", "runner", "--name", "ledger-runner"))
	w := &writer{n: n, org: org, principal: principal, runner: runner, l: &ledger{patSecrets: map[string]string{}}, http: &http.Client{Timeout: 30 * time.Second}}
	if f := strings.Fields(out); len(f) == 2 { // the ID, then the secret (docs/cli.md "Output")
		w.clientID, w.sec = f[0], f[1]
	}
	w.adminPAT = strings.TrimSpace(n.run("pat", "create", "--user", "admin", "--expires-in", "1d", "--scope", "*", "--scope", "sts:admin"))
	if w.clientID == "" || w.sec == "" || w.adminPAT == "" {
		t.Fatalf("setup incomplete: client %q", w.clientID)
	}
	w.l.rt = startFamily(t, w)
	return w
}

// startFamily begins the ledger's refresh family without a browser: a
// client_credentials token carrying offline_access, exchanged (RFC 8693,
// an own-token subject) for an access token and a refresh token. The
// family ends with the subject token (15 min), longer than a run.
func startFamily(t *testing.T, w *writer) string {
	t.Helper()
	status, body, err := w.post(t.Context(), "/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"read offline_access"}})
	var subj struct {
		AccessToken string `json:"access_token"`
	}
	if err != nil || status != 200 || json.Unmarshal(body, &subj) != nil {
		t.Fatalf("client_credentials with offline_access: %d %v", status, err)
	}
	status, body, err = w.post(t.Context(), "/oauth2/token", url.Values{
		"grant_type":         {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
		"subject_token":      {subj.AccessToken}, "scope": {"read offline_access"}, "audience": {"https://ledger.example"}})
	var ex struct {
		RefreshToken string `json:"refresh_token"`
		Error        string `json:"error"`
	}
	if err != nil || status != 200 || json.Unmarshal(body, &ex) != nil || ex.RefreshToken == "" {
		t.Fatalf("token exchange for a refresh token: %d %s %v", status, ex.Error, err)
	}
	return ex.RefreshToken
}

// check verifies the ledger against the running node: every acknowledged
// client exists, every acknowledged revocation holds.
func check(t *testing.T, w *writer) (lost int) {
	t.Helper()
	cs := stsv1connect.NewClientServiceClient(w.api(), w.n.base())
	deleted, deleting := idSet(w.l.deleted), idSet(w.l.deleting)
	for _, id := range w.l.clients {
		_, err := cs.GetClient(t.Context(), &stsv1.GetClientRequest{ClientId: id})
		switch {
		case deleted[id] && connect.CodeOf(err) != connect.CodeNotFound:
			t.Errorf("acknowledged deletion of client %s came undone: %v", id, err)
			lost++
		case !deleting[id] && err != nil:
			t.Errorf("acknowledged client %s: %v", id, err)
			lost++
		}
	}
	st := w.stored(t)
	pats, hosts, people, orgs := st.pats, st.hosts, st.people, st.orgs
	patsDeleting := idSet(w.l.patsDeleting)
	for _, id := range w.l.pats {
		if !pats[id] && !patsDeleting[id] {
			t.Errorf("acknowledged PAT %s is missing", id)
			lost++
		}
	}
	// An acknowledged deletion holds: the PAT is gone and its secret no
	// longer authenticates (never the secret in a message, only the ID).
	for _, id := range w.l.patsDeleted {
		as := &http.Client{Timeout: w.http.Timeout, Transport: bearer{tok: w.l.patSecrets[id], next: http.DefaultTransport}}
		_, err := gitpodv1connect.NewIdentityServiceClient(as, w.n.base()).
			GetAuthenticatedIdentity(t.Context(), &gitpodv1.GetAuthenticatedIdentityRequest{})
		if pats[id] || connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Errorf("acknowledged deletion of PAT %s came undone: stored %v, GetAuthenticatedIdentity answered %v (nil: it authenticated)",
				id, pats[id], err)
			lost++
		}
	}
	for _, id := range w.l.hosts {
		if !hosts[id] {
			t.Errorf("acknowledged host token %s is missing", id)
			lost++
		}
	}
	for kind, c := range map[string]struct {
		acked  []string
		stored map[string]bool
	}{"principal": {w.l.people, keys(people)}, "organization": {w.l.orgs, keys(orgs)}} {
		for _, id := range c.acked {
			if !c.stored[id] {
				t.Errorf("acknowledged %s %s is missing", kind, id)
				lost++
			}
		}
	}
	for _, id := range w.l.disabled {
		if disabled, ok := people[id]; ok && !disabled {
			t.Errorf("acknowledged disabling of principal %s came undone", id)
			lost++
		}
	}
	for _, id := range w.l.updated {
		if tier, ok := orgs[id]; ok && tier != ledgerTier {
			t.Errorf("acknowledged update of organization %s came undone: tier %q", id, tier)
			lost++
		}
	}
	for _, tok := range w.l.revoked {
		status, body, err := w.post(t.Context(), "/oauth2/introspect", url.Values{"token": {tok}})
		if err != nil || status != 200 || !strings.Contains(string(body), `"active":false`) {
			t.Errorf("revoked token came back: %d %s %v", status, body, err)
			lost++
		}
	}
	return lost
}

// keys is the set of m's keys.
func keys[V any](m map[string]V) map[string]bool {
	s := make(map[string]bool, len(m))
	for k := range m {
		s[k] = true
	}
	return s
}

// idSet is ids as a set.
func idSet(ids []string) map[string]bool {
	m := make(map[string]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m
}

// auditEvent is one line of `sts audit export`.
type auditEvent struct {
	Action, Target, Outcome, Detail string
}

// checkAudit reads the whole audit trail in direct mode (`sts audit
// export`, the node's storage) and verifies the ledger against it: every
// acknowledged client has exactly one client.create event (the row and its
// event commit together, docs/design.md#audit), and every acknowledged
// token exactly one issued token.exchange event carrying its jti (audit.mode
// required: the answer waits for the event). It returns the events missing
// or duplicated. The client check reads every stored client, acknowledged
// or not: with the event appended after the create's commit (and a 20 ms
// gap to widen the window), each of the short run's three kills left a
// client row without its event, and this check failed; with audit.mode
// best_effort, the kills lost the buffered token.exchange events of the
// last second before each, and the jti check failed.
func checkAudit(t *testing.T, w *writer) (checked, lostEvents int) {
	t.Helper()
	out := w.n.run("audit", "export", "--since", "24h")
	creates := map[string]int{} // client ID → client.create events
	deletes := map[string]int{} // client ID → client.delete events
	patCreates := map[string]int{}
	patDeletes := map[string]int{}
	hostCreates := map[string]int{}
	principalCreates := map[string]int{}
	orgCreates := map[string]int{}
	orgUpdates := map[string]int{}
	principalDisables := map[string]int{}
	issued := map[string]int{}
	rotations := map[string]int{} // activated kid → signing_key.rotate events
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var e auditEvent
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("audit export: %v", err)
		}
		switch e.Action {
		case "client.create":
			creates[strings.TrimPrefix(e.Target, "client:")]++
		case "client.delete":
			deletes[strings.TrimPrefix(e.Target, "client:")]++
		case "pat.create":
			patCreates[strings.TrimPrefix(e.Target, "pat:")]++
		case "pat.delete":
			patDeletes[strings.TrimPrefix(e.Target, "pat:")]++
		case "host_token.create":
			hostCreates[strings.TrimPrefix(e.Target, "host_token:")]++
		case "principal.create":
			principalCreates[strings.TrimPrefix(e.Target, "principal:")]++
		case "organization.create":
			orgCreates[strings.TrimPrefix(e.Target, "organization:")]++
		case "principal.disable":
			principalDisables[strings.TrimPrefix(e.Target, "principal:")]++
		case "organization.update":
			orgUpdates[strings.TrimPrefix(e.Target, "organization:")]++
		case "signing_key.rotate":
			rotations[strings.TrimPrefix(e.Target, "signing_key:")]++
		case "token.exchange":
			var d struct {
				JTI string `json:"jti"`
			}
			if e.Outcome == "issued" && json.Unmarshal([]byte(e.Detail), &d) == nil && d.JTI != "" {
				issued[d.JTI]++
			}
		}
	}
	// Every stored client, acknowledged or not: a create the kill cut off
	// after its commit promised nothing to the ledger, but its row must
	// still have its event.
	stored := map[string]bool{}
	for _, line := range strings.Split(w.n.run("client", "list"), "\n")[1:] {
		if f := strings.Fields(line); len(f) > 0 {
			stored[f[0]] = true
		}
	}
	// A client a deletion was sent for keeps its create event, gone or
	// not (its delete event is checked with the other changes below).
	clientStored := maps.Clone(stored)
	for _, id := range w.l.deleting {
		if n := creates[id]; n != 1 {
			t.Errorf("client %s (stored %v) has %d client.create events, want 1", id, stored[id], n)
			lostEvents++
		}
	}
	for _, id := range w.l.clients {
		if !stored[id] {
			continue // check reports the lost client itself
		}
		if n := creates[id]; n != 1 {
			t.Errorf("acknowledged client %s has %d client.create events, want 1", id, n)
			lostEvents++
		}
		checked++
		delete(stored, id)
	}
	for id := range stored {
		checked++
		if n := creates[id]; n != 1 {
			t.Errorf("stored (unacknowledged) client %s has %d client.create events, want 1", id, n)
			lostEvents++
		}
	}
	// Every stored PAT and host token too, acknowledged or not (the setup's
	// admin PAT included: the CLI creates it through the same service),
	// and every principal and organization the ledger created.
	st := w.stored(t)
	pats, hosts, people, orgs := st.pats, st.hosts, st.people, st.orgs
	for kind, set := range map[string]struct {
		stored map[string]bool
		events map[string]int
		action string
	}{"PAT": {pats, patCreates, "pat.create"}, "host token": {hosts, hostCreates, "host_token.create"},
		"principal": {keys(people), principalCreates, "principal.create"}, "organization": {keys(orgs), orgCreates, "organization.create"}} {
		for id := range set.stored {
			checked++
			if n := set.events[id]; n != 1 {
				t.Errorf("stored %s %s has %d %s events, want 1", kind, id, n, set.action)
				lostEvents++
			}
		}
	}
	// Every change sent, answered or not, has exactly one event when the
	// change is stored and none when it is not: the change and its event
	// commit together, both ways. stored reports whether id's change is
	// stored; gone, that the record is missing for another reason (check
	// reports a lost record itself).
	for _, c := range []struct {
		action string
		sent   []string
		events map[string]int
		stored func(id string) (stored, gone bool)
	}{
		{"client.delete", w.l.deleting, deletes, func(id string) (bool, bool) { return !clientStored[id], false }},
		{"pat.delete", w.l.patsDeleting, patDeletes, func(id string) (bool, bool) { return !pats[id], false }},
		{"principal.disable", w.l.disabling, principalDisables, func(id string) (bool, bool) {
			disabled, ok := people[id]
			return disabled, !ok
		}},
		{"organization.update", w.l.updating, orgUpdates, func(id string) (bool, bool) {
			tier, ok := orgs[id]
			return tier == ledgerTier, !ok
		}},
	} {
		for _, id := range c.sent {
			done, gone := c.stored(id)
			if gone {
				continue
			}
			checked++
			if n := c.events[id]; n != btoi(done) {
				t.Errorf("%s sent for %s (change stored: %v) has %d events, want %d", c.action, id, done, n, btoi(done))
				lostEvents++
			}
		}
	}
	checked += len(w.l.jtis)
	for _, jti := range w.l.jtis {
		if n := issued[jti]; n != 1 {
			t.Errorf("acknowledged token jti %s has %d issued token.exchange events, want 1", jti, n)
			lostEvents++
		}
	}
	// Every acknowledged forced rotation has its event (written before the
	// answer, after the rotation's commit: not yet one transaction).
	checked += len(w.l.kids)
	for _, kid := range w.l.kids {
		if n := rotations[kid]; n != 1 {
			t.Errorf("acknowledged rotation to %s has %d signing_key.rotate events, want 1", kid, n)
			lostEvents++
		}
	}
	return checked, lostEvents
}

// integrity runs PRAGMA integrity_check on a stopped node's SQLite file.
func integrity(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var res string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&res); err != nil || res != "ok" {
		t.Errorf("integrity_check = %q, %v", res, err)
	}
}

// phase is a fault applied under the load of one kill cycle (its cycle-th),
// in a subtest of its own (which skips when the machine cannot make the
// fault). run returns the phase's own figures for the FAULTS line and, when
// the fault needs the server down to be undone (a file system to repair),
// a repair that runs after the cycle's kill and before the restart.
type phase struct {
	name  string
	cycle int
	run   func(t *testing.T, w *writer) (figures string, repair func())
}

// scenario drives writes through kills (and, for each proxy in front of a
// backend, one outage of each kind; then each phase in its cycle, under the
// same load) and reports the figures of docs/reliability.md (the phases'
// own among them).
func scenario(t *testing.T, n *node, phases []phase, proxies ...*faultproxy.Proxy) {
	w := setup(t, n)
	kills, every := 3, 700*time.Millisecond
	if long() {
		kills, every = 20, 2*time.Second
	}
	survived, extra := 0, ""
	for i := range kills {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { w.loop(ctx) })
		wg.Go(func() { refreshLoop(ctx, w) })
		time.Sleep(every)
		if i == 0 {
			outages(proxies, 1500*time.Millisecond)
		}
		var repairs []func()
		for _, p := range phases {
			if p.cycle != i {
				continue
			}
			t.Run(p.name, func(t *testing.T) {
				figures, repair := p.run(t, w)
				extra += figures
				if repair != nil {
					repairs = append(repairs, repair)
				}
			})
		}
		if i == kills-1 {
			// The last kill cuts writes of every kind (report checks
			// each kind was acknowledged at least once).
			awaitCoverage(w.covered)
		}
		n.kill()
		cancel()
		wg.Wait()
		for _, repair := range repairs {
			repair()
		}
		n.start()
		survived++
	}
	lost := check(t, w)
	checkFamily(t, w)
	checkedEvents, lostEvents := checkAudit(t, w)
	// SIGTERM while requests wait on a black-holed database (F-41): exit 0
	// within http.shutdown_timeout (2 s here) and a little slack.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	if len(proxies) > 0 {
		proxies[0].Set(faultproxy.BlackHole)
		wg.Go(func() { w.loop(ctx) })
		time.Sleep(300 * time.Millisecond)
	}
	code, took := n.stop()
	cancel()
	wg.Wait()
	if code != 0 {
		t.Errorf("sts serve exited %d after SIGTERM, want 0", code)
	}
	if took > 5*time.Second {
		t.Errorf("sts serve took %s to stop after SIGTERM, want within http.shutdown_timeout (2s) + slack; log tail:\n%s", took, tail(n.logs.String(), 3000))
	}
	report(t, w, kills, survived, lost, checkedEvents, lostEvents, took, extra)
}

// checkFamily checks that the ledger's refresh family survived every kill
// and outage: it was never refused, and one more rotation works (F-44).
func checkFamily(t *testing.T, w *writer) {
	t.Helper()
	if w.l.familyError == "" && !w.rotate(t.Context()) {
		t.Errorf("refresh family refused after the kills: %s", w.l.familyError)
	}
	if w.l.familyError != "" {
		t.Errorf("refresh family ended during the kills: %s (rotations %d, retries %d)", w.l.familyError, w.l.rotations, w.l.retries)
	}
}

// report logs the FAULTS line (the figures of docs/reliability.md's fault
// table; extra adds a scenario's own), and fails the test when the run
// acknowledged nothing to check or a request waited past the storage bound.
func report(t *testing.T, w *writer, kills, survived, lost, checkedEvents, lostEvents int, shutdown time.Duration, extra string) {
	t.Helper()
	w.l.mu.Lock()
	defer w.l.mu.Unlock()
	t.Logf("FAULTS runs=%d survived=%d acknowledged_clients=%d client_deletes=%d pats=%d pat_deletes=%d host_tokens=%d principals=%d principal_disables=%d organizations=%d organization_updates=%d revocations=%d tokens=%d refused=%d lost=%d audit_events_checked=%d audit_events_lost=%d rotations=%d rotation_retries=%d families_revoked=%d max_hang=%s shutdown=%s%s",
		kills, survived, len(w.l.clients), len(w.l.deleted), len(w.l.pats), len(w.l.patsDeleted), len(w.l.hosts), len(w.l.people), len(w.l.disabled), len(w.l.orgs), len(w.l.updated), len(w.l.revoked), w.l.tokens, w.l.refused, lost, checkedEvents, lostEvents,
		w.l.rotations, w.l.retries, btoi(w.l.familyError != ""),
		w.l.maxHang.Round(time.Millisecond), shutdown.Round(time.Millisecond), extra)
	for _, kind := range w.l.uncovered() {
		t.Errorf("no %s was acknowledged: the harness checked nothing of that kind", kind)
	}
	if bound := 5*time.Second + 2*time.Second; w.l.maxHang > bound {
		t.Errorf("a request waited %s, want at most storage.call_timeout + slack (%s)", w.l.maxHang, bound)
	}
}

// uncovered lists the kinds of write the ledger holds no acknowledged one
// of (l.mu held).
func (l *ledger) uncovered() []string {
	var kinds []string
	for kind, n := range map[string]int{"client": len(l.clients), "client deletion": len(l.deleted), "PAT": len(l.pats),
		"PAT deletion": len(l.patsDeleted), "host token": len(l.hosts), "principal": len(l.people),
		"principal disabling": len(l.disabled), "organization": len(l.orgs), "organization update": len(l.updated),
		"revocation": len(l.revoked), "token": len(l.jtis), "refresh rotation": l.rotations} {
		if n == 0 {
			kinds = append(kinds, kind)
		}
	}
	slices.Sort(kinds)
	return kinds
}

// coverWithin bounds how long the last cycle goes on, past its time, for
// a kind of write the ledger has not yet seen acknowledged.
const coverWithin = 30 * time.Second

// covered reports whether the ledger holds an acknowledged write of every
// kind.
func (w *writer) covered() bool {
	w.l.mu.Lock()
	defer w.l.mu.Unlock()
	return len(w.l.uncovered()) == 0
}

// awaitCoverage lets the load run until covered holds, or coverWithin has
// passed (the checks then name what is missing). The writer's rarer kinds
// come once in four rounds of a cycle: on a loaded machine a cycle's fixed
// time, cut short by a phase's refused writes, held too few rounds for
// some of them, and the run failed its coverage check though the server
// lost nothing.
func awaitCoverage(covered func() bool) {
	for deadline := time.Now().Add(coverWithin); !covered() && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
}

// outages refuses, then black-holes each backend behind proxies for d
// each, one after the other.
func outages(proxies []*faultproxy.Proxy, d time.Duration) {
	for _, p := range proxies {
		for _, m := range []faultproxy.Mode{faultproxy.Refuse, faultproxy.BlackHole} {
			p.Set(m)
			time.Sleep(d)
			p.Set(faultproxy.Pass)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestFaultsSQLite: kill -9 under mixed writes on SQLite, with the data
// directory on a small file system of its own (sqliteFS) that fills up
// once and turns read-only once under the same load.
func TestFaultsSQLite(t *testing.T) {
	t.Parallel() // with TestFaultsReplicas: SQLite and PostgreSQL share nothing
	fs, why := newSQLiteFS(t)
	dataDir := t.TempDir()
	if fs != nil {
		dataDir = fs.dir
	}
	n := &node{t: t, bin: stsBinary(t), dataDir: dataDir, listen: freeAddr(t)}
	scenario(t, n, []phase{
		{name: "disk_full", cycle: 0, run: func(t *testing.T, w *writer) (string, func()) { return diskFull(t, n, w, fs, why), nil }},
		{name: "read_only", cycle: 1, run: func(t *testing.T, w *writer) (string, func()) { return readOnly(t, n, w, fs, why) }},
	})
	integrity(t, filepath.Join(n.dataDir, "sts.db"))
}

// TestFaultsPostgres: kill -9 under mixed writes, and the database
// refused and then black-holed, on PostgreSQL behind a fault proxy; with
// STS_TEST_REDIS_URL set, the rate limits live in Redis behind a second
// proxy, which is refused and black-holed too.
//
// With root and PostgreSQL on this machine, the run uses a database of its
// own in a tablespace on a small tmpfs (pgDisk), which fills up once under
// the same load (SQLSTATE 53100).
func TestFaultsPostgres(t *testing.T) {
	// Not in parallel with TestFaultsReplicas: their servers share Redis's
	// per-address rate limit buckets (127.0.0.1), and in the long run the
	// replicas' load left this run's setup a 429 (docs/reliability.md).
	dsn := pgtest.DSN(t)
	disk, why := newPGDisk(t, dsn)
	if disk != nil {
		dsn = disk.dsn
	}
	env, proxies := postgres(t, dsn)
	listen := freeAddr(t)
	n := &node{t: t, bin: stsBinary(t), dataDir: t.TempDir(), listen: listen,
		env: append(env, "STS_ISSUER=http://"+listen)}
	scenario(t, n, []phase{
		{name: "disk_full", cycle: 1, run: func(t *testing.T, w *writer) (string, func()) { return pgDiskFull(t, n, w, disk, why), nil }},
	}, proxies...)
}

// postgres puts a fault proxy in front of the PostgreSQL database of dsn
// (pgtest.DSN's fresh schema, or a database of the test's own) and, with
// STS_TEST_REDIS_URL set, a second one in front of Redis for the rate
// limits. It returns the environment of an `sts serve` that uses them
// through the proxies, and the proxies (PostgreSQL's first).
func postgres(t *testing.T, dsn string) ([]string, []*faultproxy.Proxy) {
	proxy, proxied := faultproxy.PostgresDSN(t, dsn)
	env := []string{"STS_STORAGE_TYPE=postgres", "STS_STORAGE_DSN=" + proxied}
	proxies := []*faultproxy.Proxy{proxy}
	if ru := os.Getenv("STS_TEST_REDIS_URL"); ru != "" {
		r, err := url.Parse(redistest.URL(t))
		if err != nil {
			t.Fatal(err)
		}
		rp := faultproxy.New(t, r.Host)
		r.Host = rp.Addr()
		env = append(env, "STS_RATE_LIMITS_REDIS_URL="+r.String())
		proxies = append(proxies, rp)
	}
	return env, proxies
}
