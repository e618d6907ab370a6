package cli_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
)

// hostileAdmin is an OrganizationService, PrincipalService, PoolService,
// ClientService, KeyService and AuditService of a hostile or compromised
// server: every ID, name and secret it answers carries terminal escapes
// and a line break, to reach the one-line confirmations and the ID-only
// output of the commands that change something.
type hostileAdmin struct {
	stsv1connect.UnimplementedOrganizationServiceHandler
	stsv1connect.UnimplementedPrincipalServiceHandler
	stsv1connect.UnimplementedPoolServiceHandler
	stsv1connect.UnimplementedClientServiceHandler
	stsv1connect.UnimplementedKeyServiceHandler
	stsv1connect.UnimplementedAuditServiceHandler
}

const forged = "\nsts: deleted organization acme"

func hostileOrg() *stsv1.Organization {
	return &stsv1.Organization{Id: "o1" + clear + forged, Name: "acme"}
}

func hostilePrincipal() *stsv1.Principal {
	return &stsv1.Principal{Id: "p1" + osc52, OrganizationId: "o1", Name: "ci" + clear + forged}
}

func (hostileAdmin) CreateOrganization(context.Context, *stsv1.CreateOrganizationRequest) (*stsv1.CreateOrganizationResponse, error) {
	return &stsv1.CreateOrganizationResponse{Organization: hostileOrg()}, nil
}

func (hostileAdmin) GetOrganization(context.Context, *stsv1.GetOrganizationRequest) (*stsv1.GetOrganizationResponse, error) {
	return &stsv1.GetOrganizationResponse{Organization: hostileOrg()}, nil
}

func (hostileAdmin) DeleteOrganization(context.Context, *stsv1.DeleteOrganizationRequest) (*stsv1.DeleteOrganizationResponse, error) {
	return &stsv1.DeleteOrganizationResponse{}, nil
}

func (hostileAdmin) GetPrincipal(context.Context, *stsv1.GetPrincipalRequest) (*stsv1.GetPrincipalResponse, error) {
	return &stsv1.GetPrincipalResponse{Principal: hostilePrincipal()}, nil
}

func (hostileAdmin) DeletePrincipal(context.Context, *stsv1.DeletePrincipalRequest) (*stsv1.DeletePrincipalResponse, error) {
	return &stsv1.DeletePrincipalResponse{}, nil
}

func (hostileAdmin) CreateExchangeToken(context.Context, *stsv1.CreateExchangeTokenRequest) (*stsv1.CreateExchangeTokenResponse, error) {
	return &stsv1.CreateExchangeTokenResponse{ExchangeToken: "sts_ex_" + osc52, ExpiresAt: timestamppb.New(time.Now().Add(time.Hour))}, nil
}

func (hostileAdmin) CreatePool(_ context.Context, req *stsv1.CreatePoolRequest) (*stsv1.CreatePoolResponse, error) {
	return &stsv1.CreatePoolResponse{Pool: &stsv1.Pool{Id: "ci" + clear + forged, OrganizationId: "o1" + osc52}}, nil
}

func (hostileAdmin) UpdateClient(context.Context, *stsv1.UpdateClientRequest) (*stsv1.UpdateClientResponse, error) {
	return &stsv1.UpdateClientResponse{Client: hostileClient()}, nil
}

func (hostileAdmin) RotateSigningKey(context.Context, *stsv1.RotateSigningKeyRequest) (*stsv1.RotateSigningKeyResponse, error) {
	return &stsv1.RotateSigningKeyResponse{RetiredKid: "k0" + osc52, ActivatedKid: "k1" + clear, NextKid: "k2" + forged}, nil
}

func (hostileAdmin) ListAuditEvents(context.Context, *stsv1.ListAuditEventsRequest) (*stsv1.ListAuditEventsResponse, error) {
	return &stsv1.ListAuditEventsResponse{NextPageToken: "t" + clear + forged}, nil
}

// TestRemoteConfirmationsCannotDriveTheTerminal: the one-line
// confirmations a command prints on stderr after a change ("deleted
// organization …", "created pool …"), the ID a create prints alone for
// scripts and a secret shown once all hold values of the server's answer;
// none reaches the terminal as a control character or a line break that
// forges a line of the CLI's own (docs/security.md T-253).
func TestRemoteConfirmationsCannotDriveTheTerminal(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	h := hostileAdmin{}
	mux.Handle(stsv1connect.NewOrganizationServiceHandler(h))
	mux.Handle(stsv1connect.NewPrincipalServiceHandler(h))
	mux.Handle(stsv1connect.NewPoolServiceHandler(h))
	mux.Handle(stsv1connect.NewClientServiceHandler(h))
	mux.Handle(stsv1connect.NewKeyServiceHandler(h))
	mux.Handle(stsv1connect.NewAuditServiceHandler(h))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	setenv(t, "STS_TOKEN", "sts_pat_x")
	setenv(t, "STS_SERVER", "")
	for _, tc := range []struct {
		args          []string
		outLines, err int // lines on stdout and stderr
	}{
		{[]string{"org", "create", "--name", "acme"}, 1, 0},
		{[]string{"org", "delete", "o1"}, 0, 1},
		{[]string{"principal", "delete", "p1"}, 0, 1},
		{[]string{"exchange-token", "create", "--principal", "p1"}, 1, 1},
		{[]string{"pool", "create", "ci", "--org", "o1"}, 0, 1},
		{[]string{"client", "update", "c1", "--name", "ci"}, 0, 1},
		{[]string{"keys", "rotate"}, 0, 1},
		{[]string{"audit", "list"}, -1, 1},
	} {
		code, out, errOut := runCLI(t, append(tc.args, "--server", srv.URL)...)
		if code != 0 {
			t.Errorf("sts %v = %d, stderr %q", tc.args, code, errOut)
			continue
		}
		for _, s := range []string{out, errOut} {
			if i := strings.IndexFunc(s, func(r rune) bool {
				return r != '\n' && r != '\t' && (r < 0x20 || r >= 0x7f && r < 0xa0)
			}); i >= 0 {
				t.Errorf("sts %v printed a control character %q: %q", tc.args, s[i:min(i+4, len(s))], s)
			}
		}
		if tc.outLines >= 0 && strings.Count(out, "\n") != tc.outLines {
			t.Errorf("sts %v printed %d lines on stdout, want %d: %q", tc.args, strings.Count(out, "\n"), tc.outLines, out)
		}
		if strings.Count(errOut, "\n") != tc.err {
			t.Errorf("sts %v printed %d lines on stderr, want %d: %q", tc.args, strings.Count(errOut, "\n"), tc.err, errOut)
		}
	}
}
