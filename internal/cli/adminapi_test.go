package cli_test

import (
	"net/http"
	"testing"

	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
	"github.com/opensts/sts/internal/ststest"
)

// onBothBackends runs fn as subtests on SQLite and on PostgreSQL (the
// server reads STS_STORAGE_TYPE and STS_STORAGE_DSN).
func onBothBackends(t *testing.T, fn func(t *testing.T)) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			if backend == "postgres" {
				setenv(t, "STS_STORAGE_TYPE", "postgres")
				setenv(t, "STS_STORAGE_DSN", ststest.PostgresDSN(t))
			}
			fn(t)
		})
	}
}

// adminServer is a real `sts serve` in a fresh data directory, with the
// bootstrap admin's PATs for the admin API.
type adminServer struct {
	r   *run
	dir string
	api string // base URL of the Connect API (…/api)
	// admin holds sts:admin; notAdmin holds every other scope.
	admin, notAdmin string
	orgID           string // the bootstrap organization
}

func startAdminServer(t *testing.T) *adminServer {
	t.Helper()
	s := &adminServer{dir: t.TempDir()}
	s.r = serve(t, "--data-dir", s.dir)
	checkServing(t, s.r)
	s.api = s.r.base + "/api"
	s.admin, s.notAdmin = s.mintPAT(t, "*", "sts:admin"), s.mintPAT(t, "*")
	orgs, err := stsv1connect.NewOrganizationServiceClient(h2cClient(s.admin), s.api).ListOrganizations(t.Context(), &stsv1.ListOrganizationsRequest{})
	if err != nil || len(orgs.GetOrganizations()) != 1 {
		t.Fatalf("ListOrganizations = %v, %v", orgs, err)
	}
	s.orgID = orgs.GetOrganizations()[0].GetId()
	return s
}

// mintPAT creates a PAT for the bootstrap admin user with the CLI.
func (s *adminServer) mintPAT(t *testing.T, scopes ...string) string {
	t.Helper()
	args := []string{"pat", "create", "--data-dir", s.dir, "--user", "admin", "--expires-in", "1d"}
	for _, sc := range scopes {
		args = append(args, "--scope", sc)
	}
	code, out, errOut := runCLI(t, args...)
	secret := patRE.FindString(out)
	if code != 0 || secret == "" {
		t.Fatalf("pat create = %d, %q %q", code, out, errOut)
	}
	return secret
}

// h2cClient sends token as a bearer (none when empty) over cleartext
// HTTP/2, so one transport carries Connect and gRPC.
func h2cClient(token string) *http.Client {
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	if token == "" {
		return &http.Client{Transport: tr}
	}
	return &http.Client{Transport: bearer{token, tr}}
}
