package api

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"golang.org/x/crypto/nacl/box"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
	"github.com/opensts/sts/internal/storage"
)

// hostRunner is a host-token environment whose runner has a registered
// key: the generated Gitpod clients, the runner's PAT and its key pair.
type hostRunner struct {
	e             *env
	cfg           gitpodv1connect.RunnerConfigurationServiceClient
	ri            gitpodv1connect.RunnerInteractionServiceClient
	runnerID, pat string
	pub, priv     *[32]byte
}

func newHostRunner(t *testing.T) *hostRunner {
	t.Helper()
	e, runnerID, runnerPAT, _ := hostEnv(t)
	h := &hostRunner{e: e, runnerID: runnerID, pat: runnerPAT,
		cfg: gitpodv1connect.NewRunnerConfigurationServiceClient(e.srv.Client(), e.srv.URL),
		ri:  gitpodv1connect.NewRunnerInteractionServiceClient(e.srv.Client(), e.srv.URL)}
	var err error
	if h.pub, h.priv, err = box.GenerateKey(rand.Reader); err != nil {
		t.Fatal(err)
	}
	if _, err := stsv1connect.NewRunnerKeyServiceClient(e.srv.Client(), e.srv.URL).SetRunnerPublicKey(as(e.admin),
		&stsv1.SetRunnerPublicKeyRequest{RunnerId: runnerID, PublicKey: h.pub[:]}); err != nil {
		t.Fatal(err)
	}
	return h
}

// store stores value for host as the user, on the runner.
func (h *hostRunner) store(host, value string) (*gitpodv1.CreateHostAuthenticationTokenResponse, error) {
	return h.cfg.CreateHostAuthenticationToken(as(h.e.secret), &gitpodv1.CreateHostAuthenticationTokenRequest{
		RunnerId: h.runnerID, UserId: h.e.user.ID, Host: host, Token: value})
}

// value asks for the user's token for host as the runner and opens it.
func (h *hostRunner) value(t *testing.T, host string) (string, error) {
	t.Helper()
	v, err := h.ri.GetHostAuthenticationTokenValue(as(h.pat), &gitpodv1.GetHostAuthenticationTokenValueRequest{
		RunnerId: h.runnerID, PrincipalId: h.e.user.ID, Host: host})
	if err != nil {
		return "", err
	}
	plain, ok := box.OpenAnonymous(nil, v.GetValue(), h.pub, h.priv)
	if !ok {
		t.Fatalf("value for %q does not open", host)
	}
	return string(plain), nil
}

// count is how many host tokens the user's list holds.
func (h *hostRunner) count(t *testing.T) int {
	t.Helper()
	l, err := h.cfg.ListHostAuthenticationTokens(as(h.e.secret), &gitpodv1.ListHostAuthenticationTokensRequest{
		Pagination: &gitpodv1.PaginationRequest{PageSize: 100}})
	if err != nil {
		t.Fatal(err)
	}
	return len(l.GetTokens())
}

// TestHostMustBeAHostName: a host token's host is a host name (an
// internationalized one in either form), an IPv4 address or a bracketed
// IPv6 one, with an optional port. A URL's other parts in it (a user and
// password, a scheme, a path, a query) are refused, at creation (nothing
// stored, the value never echoed) and when a runner asks for a value;
// the server keeps serving (docs/security.md T-229).
func TestHostMustBeAHostName(t *testing.T) {
	t.Parallel()
	h := newHostRunner(t)
	bad := []string{
		"oauth2:glpat-userinfo-secret@gitlab.example.com", // userinfo: a credential in a field shown to all
		"user@github.com",
		"https:github.com",
		"github.com?x=1",
		"github.com#frag",
		`github.com\evil.example`,
		"github.com:",
		"github.com:0",
		"github.com:65536",
		"github.com:443:443",
		"::1",
		"[::1",
		"[github.com]:22",
		":443",
		"git%68ub.com",
		"github.com;evil",
		"gith*b.com",
		"xn--zz.example", // not punycode
		"a\u00a0b.example",
	}
	before := h.count(t)
	for _, host := range bad {
		_, err := h.store(host, "gho_bad_host")
		wantCode(t, "create with host "+host, err, connect.CodeInvalidArgument)
		if err != nil && (!strings.Contains(err.Error(), "host") || strings.Contains(err.Error(), "glpat-userinfo-secret")) {
			t.Errorf("create with host %q: %v: does not name host, or echoes it", host, err)
		}
		_, err = h.value(t, host)
		wantCode(t, "value for host "+host, err, connect.CodeInvalidArgument)
	}
	if n := h.count(t); n != before {
		t.Errorf("host tokens after the refused creates = %d, want %d", n, before)
	}
	for _, host := range []string{"github.com", "GitHub.com", "git.example.com:8443", "10.0.0.7:22", "[2001:db8::7]:2222",
		"[::1]", "bücher.example", "xn--bcher-kva.example", "my_git.corp.example", "git--lab.example", "github.com."} {
		if _, err := h.store(host, "v:"+host); err != nil {
			t.Errorf("create with host %q: %v", host, err)
			continue
		}
		if got, err := h.value(t, host); err != nil || got != "v:"+host && !strings.EqualFold(host, "github.com") {
			t.Errorf("value for %q = %q, %v", host, got, err)
		}
	}
}

// TestHostMatchedAsClientsResolveIt: a runner's host is matched to a
// stored one as an HTTP client resolves both (IDNA, Unicode TS 46
// nontransitional, as Go's net/http and curl do), not by Unicode case
// folding: "ς.example" (xn--3xa) is not "σ.example" (xn--4xa), nor
// "straẞe.example" (strasse) "straße.example" (xn--strae-oqa), though
// they fold alike, and a runner asking for one was sealed the token
// stored for the other domain. Names that do resolve alike (a case, the
// two forms of one IDN, U+212A KELVIN SIGN) still match
// (docs/security.md T-228).
func TestHostMatchedAsClientsResolveIt(t *testing.T) {
	t.Parallel()
	h := newHostRunner(t)
	for _, host := range []string{"σ.example", "straße.example", "bitbucket.org", "bücher.example"} {
		if _, err := h.store(host, "v:"+host); err != nil {
			t.Fatalf("create %q: %v", host, err)
		}
	}
	for ask, want := range map[string]string{
		"ς.example":             "", // another domain: xn--3xa.example
		"straẞe.example":        "", // another domain: strasse.example
		"strasse.example":       "",
		"Σ.EXAMPLE":             "v:σ.example",
		"xn--4xa.example":       "v:σ.example",
		"STRASSE.example":       "",
		"xn--strae-oqa.example": "v:straße.example",
		"BITBUCKET.ORG":         "v:bitbucket.org",
		"bitbuc\u212Aet.org":    "v:bitbucket.org", // resolves to bitbucket.org
		"xn--bcher-kva.EXAMPLE": "v:bücher.example",
		"BÜCHER.example":        "v:bücher.example",
	} {
		got, err := h.value(t, ask)
		if want == "" {
			wantCode(t, "value for "+ask, err, connect.CodeNotFound)
			if got != "" {
				t.Errorf("value for %q = %q, sealed the token of another domain", ask, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("value for %q = %q, %v; want %q", ask, got, err, want)
		}
	}
}

// TestOldRowHostShownWithoutItsSecret: a row stored before T-229 whose
// host holds a user and password or a query (pasted from a clone URL) is
// shown by Get and List, to the user, the runner and the administrators,
// without them: the name is kept so the row can be found and deleted
// (docs/security.md T-230).
func TestOldRowHostShownWithoutItsSecret(t *testing.T) {
	t.Parallel()
	h := newHostRunner(t)
	ctx := context.Background()
	for stored, shown := range map[string]string{
		"oauth2:glpat-old-secret-1@gitlab.example.com":  "[redacted]@gitlab.example.com",
		"gitlab.example.com?private_token=old-secret-2": "gitlab.example.com?[redacted]",
		"u:old-secret-3@git.example.com#old-secret-4":   "[redacted]@git.example.com#[redacted]",
		"GitHub.com": "GitHub.com",
	} {
		tok, err := h.store("git.example.com", "gho_old_row")
		if err != nil {
			t.Fatal(err)
		}
		id := tok.GetToken().GetId()
		if err := h.e.store.UpdateHostToken(ctx, id, func(old storage.HostToken) (storage.HostToken, error) {
			old.Host = stored // as stored before T-229
			return old, nil
		}); err != nil {
			t.Fatal(err)
		}
		for who, cred := range map[string]string{"user": h.e.secret, "runner": h.pat, "admin": h.e.admin} {
			g, err := h.cfg.GetHostAuthenticationToken(as(cred), &gitpodv1.GetHostAuthenticationTokenRequest{Id: id})
			if err != nil {
				t.Fatalf("get as %s: %v", who, err)
			}
			if got := g.GetToken().GetHost(); got != shown {
				t.Errorf("get as %s: host %q, want %q", who, got, shown)
			}
			l, err := h.cfg.ListHostAuthenticationTokens(as(cred), &gitpodv1.ListHostAuthenticationTokensRequest{
				Pagination: &gitpodv1.PaginationRequest{PageSize: 100}})
			if err != nil {
				t.Fatalf("list as %s: %v", who, err)
			}
			for _, lt := range l.GetTokens() {
				if strings.Contains(lt.GetHost(), "old-secret") {
					t.Errorf("list as %s: host %q", who, lt.GetHost())
				}
			}
		}
	}
}
