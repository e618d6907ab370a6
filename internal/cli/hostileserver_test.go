package cli_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect"

	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
)

// hostileClients is a ClientService and KeyService of a hostile or
// compromised server: every string it answers carries terminal escapes
// and line breaks.
type hostileClients struct {
	stsv1connect.UnimplementedClientServiceHandler
	stsv1connect.UnimplementedKeyServiceHandler
}

const (
	osc52 = "\x1b]52;c;Y3VybCBldmlsLmV4YW1wbGV8c2g=\x07" // writes the clipboard
	clear = "\x1b[2J\x1b[H"                              // wipes the screen
)

func hostileClient() *stsv1.Client {
	return &stsv1.Client{Id: "c1" + clear, OrganizationId: "o1\u009b31m", PrincipalId: "p1" + osc52,
		Name: "ci\nc2  o1  forged", JwksUri: "https://x/" + osc52, RedirectUris: []string{"https://x/\x1b[8m"},
		Scopes: []string{"deploy\r"}, Audiences: []string{"a\u202e"}, GrantTypes: []string{"g\t"}}
}

func (hostileClients) ListClients(context.Context, *stsv1.ListClientsRequest) (*stsv1.ListClientsResponse, error) {
	return &stsv1.ListClientsResponse{Clients: []*stsv1.Client{hostileClient()}}, nil
}

func (hostileClients) GetClient(context.Context, *stsv1.GetClientRequest) (*stsv1.GetClientResponse, error) {
	return &stsv1.GetClientResponse{Client: hostileClient()}, nil
}

func (hostileClients) DeleteClient(context.Context, *stsv1.DeleteClientRequest) (*stsv1.DeleteClientResponse, error) {
	return nil, connect.NewError(connect.CodePermissionDenied, errorString("no"+clear+"\nsts: deleted client c1"+osc52))
}

func (hostileClients) ListSigningKeys(context.Context, *stsv1.ListSigningKeysRequest) (*stsv1.ListSigningKeysResponse, error) {
	return &stsv1.ListSigningKeysResponse{Keys: []*stsv1.SigningKey{{Kid: "k1" + osc52, Algorithm: "ES256" + clear}}}, nil
}

type errorString string

func (e errorString) Error() string { return string(e) }

// TestRemoteAnswersCannotDriveTheTerminal: a server the CLI talks to (a
// compromised one, or anything in the path of an http:// --server) writes
// every string the CLI prints from its answers: IDs, names, URIs, key IDs
// and error messages. None of them reaches the terminal as a control
// character (an ESC sequence that writes the clipboard or clears the
// screen, a C1 CSI, a line break that forges a row or a line of the CLI's
// own): each is printed escaped, and the JSON output keeps the values
// JSON-escaped (docs/security.md T-244).
func TestRemoteAnswersCannotDriveTheTerminal(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.Handle(stsv1connect.NewClientServiceHandler(hostileClients{}))
	mux.Handle(stsv1connect.NewKeyServiceHandler(hostileClients{}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	setenv(t, "STS_TOKEN", "sts_pat_x")
	setenv(t, "STS_SERVER", "")
	for _, tc := range []struct {
		args  []string
		lines int // on stdout
		ok    bool
	}{
		{[]string{"client", "list"}, 2, true},
		{[]string{"client", "show", "c1"}, 14, true},
		{[]string{"keys", "list"}, 2, true},
		{[]string{"client", "list", "-o", "json"}, -1, true},
		{[]string{"client", "delete", "c1"}, 0, false},
	} {
		code, out, errOut := runCLI(t, append(tc.args, "--server", srv.URL)...)
		if (code == 0) != tc.ok {
			t.Errorf("sts %v = %d, stderr %q", tc.args, code, errOut)
		}
		for _, s := range []string{out, errOut} {
			if i := strings.IndexFunc(s, func(r rune) bool {
				return r != '\n' && (r < 0x20 || r >= 0x7f && r < 0xa0 || r == '\u202e')
			}); i >= 0 {
				t.Errorf("sts %v printed a control character %q: %q", tc.args, s[i:min(i+4, len(s))], s)
			}
		}
		if tc.lines >= 0 && strings.Count(out, "\n") != tc.lines {
			t.Errorf("sts %v printed %d lines, want %d: %q", tc.args, strings.Count(out, "\n"), tc.lines, out)
		}
		if !tc.ok && strings.Count(errOut, "\n") != 1 {
			t.Errorf("sts %v: the server's error message took %d lines: %q", tc.args, strings.Count(errOut, "\n"), errOut)
		}
	}
}

// TestRemoteAnswerSizeIsBounded: a server that answers a call with an
// endless body, or with a small gzip body that inflates to a huge one,
// does not make the CLI read or hold it all: the call fails with a
// message naming the bound, after at most a few MiB (docs/security.md
// T-245).
func TestRemoteAnswerSizeIsBounded(t *testing.T) {
	t.Parallel()
	const huge = 64 << 20 // the CLI stops at 16 MiB
	// A gzip body of 24 members of 1 MiB each inflates to 24 MiB.
	var member bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&member, gzip.BestCompression)
	zw.Write(bytes.Repeat([]byte{' '}, 1<<20))
	zw.Close()
	bomb := bytes.NewBuffer(bytes.Repeat(member.Bytes(), 24))
	var written atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/proto")
		if strings.HasSuffix(r.URL.Path, "/GetClient") {
			w.Header().Set("Content-Encoding", "gzip")
			w.Write(bomb.Bytes())
			return
		}
		chunk := bytes.Repeat([]byte{' '}, 1<<20)
		for written.Load() < huge {
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	setenv(t, "STS_TOKEN", "sts_pat_x")
	setenv(t, "STS_SERVER", "")
	code, _, errOut := runCLI(t, "client", "list", "--server", srv.URL)
	if code != 1 || !strings.Contains(errOut, "MiB") {
		t.Errorf("an endless answer: exit %d, stderr %q; want 1 and the bound named", code, errOut)
	}
	srv.CloseClientConnections()
	if n := written.Load(); n >= huge/2 {
		t.Errorf("the CLI read %d MiB of an endless answer", n>>20)
	}
	code, _, errOut = runCLI(t, "client", "show", "c1", "--server", srv.URL)
	if code != 1 || !strings.Contains(errOut, "MiB") && !strings.Contains(errOut, "gzip") {
		t.Errorf("a gzip bomb of %d KiB: exit %d, stderr %q; want 1 and the bound named", bomb.Len()>>10, code, errOut)
	}
}
