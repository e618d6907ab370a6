package pools_test

import (
	"net"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/federation"
	"github.com/opensts/sts/internal/pools"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// TestLoopbackRuleIsOne: with federation.allow_loopback, a provider's
// plain-http issuer must name this machine's loopback interface. The
// pool check (ProviderProblems, the API, the CLI and the configuration
// file) and the client that would fetch the keys
// (federation.ClientOptions.CheckURL, the same rule its dialer applies)
// judge every host alike, by federation.LoopbackHost.
func TestLoopbackRuleIsOne(t *testing.T) {
	client := federation.ClientOptions{AllowHTTP: true, AllowLoopback: true}
	for _, tc := range []struct {
		host     string
		loopback bool
	}{
		{"localhost", true},
		{"LocalHost", true}, // host names are case-insensitive
		{"127.0.0.1", true},
		{"127.0.0.2", true},
		{"127.255.255.254", true},
		{"::1", true},
		{"0:0:0:0:0:0:0:1", true},
		{"::ffff:127.0.0.1", true}, // IPv4-mapped: the IPv4 address itself
		{"0.0.0.0", false},
		{"::", false},
		{"localhost.", false}, // a name resolved through DNS, not the loopback name
		{"127.1", false},      // not an address; a name
		{"localhost.example.com", false},
		{"127.0.0.1.nip.io", false},
		{"10.0.0.1", false},
		{"64:ff9b::7f00:1", false}, // NAT64 of 127.0.0.1: routed off this machine
		{"2002:7f00:1::1", false},  // 6to4 of 127.0.0.1: likewise
	} {
		if got := federation.LoopbackHost(tc.host); got != tc.loopback {
			t.Errorf("LoopbackHost(%q) = %v, want %v", tc.host, got, tc.loopback)
		}
		issuer := "http://" + net.JoinHostPort(tc.host, "8080") + "/"
		p := storage.Provider{PoolID: "ci", ID: "gh", Issuer: issuer, Audiences: []string{"sts"}}
		poolOK := len(pools.ProviderProblems(p, true, false)) == 0
		clientErr := client.CheckURL(issuer)
		if poolOK != tc.loopback || (clientErr == nil) != tc.loopback {
			t.Errorf("%s: pool check accepts %v, client accepts %v (%v); want both %v", issuer, poolOK, clientErr == nil, clientErr, tc.loopback)
		}
	}
}

// TestProviderURLsAreWhatTheClientCalls: an issuer or jwks_uri the key
// fetcher would refuse (federation.ProviderClient's CheckURL: an https
// loopback address without allow_loopback, an address embedding a
// loopback one, link-local, private, ...) is refused by the pool check
// (the API, the CLI, `sts config check`), naming the field, not at the
// first fetch (docs/security.md T-59). A URL that is never fetched
// (uploaded keys, an issuer with a jwks_uri) is a name and is not judged
// by address.
func TestProviderURLsAreWhatTheClientCalls(t *testing.T) {
	urls := []string{
		"https://127.0.0.1:8443/", "https://[::1]:8443/", "https://localhost:8443/",
		"https://[::ffff:127.0.0.1]:8443/", "https://[64:ff9b::7f00:1]/", "https://[2002:7f00:1::1]/",
		"https://169.254.169.254/", "https://[fe80::1%25eth0]/", "https://10.0.0.1/", "https://[fd00:ec2::254]/",
		"https://0.0.0.0/", "http://[::1%25lo]:8080/", "http://127.0.0.1:8080/", "https://issuer.example/",
	}
	for _, allow := range []struct{ loopback, private bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
		client := federation.ProviderClient(allow.loopback, allow.private)
		for _, u := range urls {
			clientErr := client.CheckURL(u)
			for _, tc := range []struct {
				field string
				p     storage.Provider
			}{
				{"issuer", storage.Provider{PoolID: "ci", ID: "gh", Issuer: u, Audiences: []string{"sts"}}},
				{"jwks_uri", storage.Provider{PoolID: "ci", ID: "gh", Issuer: "https://issuer.example", JWKSURI: u, Audiences: []string{"sts"}}},
			} {
				probs := pools.ProviderProblems(tc.p, allow.loopback, allow.private)
				if (len(probs) == 0) != (clientErr == nil) {
					t.Errorf("%+v %s %s: pool check %v, client %v", allow, tc.field, u, probs, clientErr)
				}
				for _, pb := range probs {
					if pb.Field != tc.field {
						t.Errorf("%+v %s %s: problem %q names field %q", allow, tc.field, u, pb, pb.Field)
					}
				}
			}
		}
		// federation.allow_private admits a private issuer, never the
		// metadata addresses.
		private := storage.Provider{PoolID: "ci", ID: "gh", Issuer: "https://10.0.0.1/", Audiences: []string{"sts"}}
		if probs := pools.ProviderProblems(private, allow.loopback, allow.private); (len(probs) == 0) != allow.private {
			t.Errorf("%+v: a private issuer: %v", allow, probs)
		}
		for _, u := range []string{"https://169.254.169.254/", "https://[fd00:ec2::254]/"} {
			p := storage.Provider{PoolID: "ci", ID: "gh", Issuer: u, Audiences: []string{"sts"}}
			if probs := pools.ProviderProblems(p, allow.loopback, allow.private); len(probs) == 0 {
				t.Errorf("%+v: the metadata issuer %s is accepted", allow, u)
			}
		}
	}
	// Never fetched: an issuer beside a jwks_uri, or beside uploaded keys,
	// may be any https URL; plain http still names a loopback host.
	jwks := jwksDoc(t)
	for _, p := range []storage.Provider{
		{PoolID: "ci", ID: "gh", Issuer: "https://10.0.0.1/", JWKSURI: "https://keys.example/jwks", Audiences: []string{"sts"}},
		{PoolID: "ci", ID: "gh", Issuer: "https://10.0.0.1/", JWKS: jwks, Audiences: []string{"sts"}},
		{PoolID: "ci", ID: "gh", Issuer: "https://127.0.0.1/", JWKSURI: "https://169.254.169.254/", JWKS: jwks, Audiences: []string{"sts"}},
	} {
		if probs := pools.ProviderProblems(p, false, false); len(probs) != 0 {
			t.Errorf("issuer %s, jwks_uri %q, %d bytes of jwks, never fetched: %v", p.Issuer, p.JWKSURI, len(p.JWKS), probs)
		}
	}
	p := storage.Provider{PoolID: "ci", ID: "gh", Issuer: "http://issuer.example/", JWKS: jwks, Audiences: []string{"sts"}}
	if probs := pools.ProviderProblems(p, true, false); len(probs) != 1 || probs[0].Field != "issuer" {
		t.Errorf("plain http to a non-loopback issuer beside uploaded keys: %v", probs)
	}
}

// TestCreateProviderRefusesWhatTheClientRefuses: the API says which field
// and why, and stores nothing.
func TestCreateProviderRefusesWhatTheClientRefuses(t *testing.T) {
	ctx := t.Context()
	svc, _ := acmeService(t, pools.Limits{})
	caller := pools.Caller{Actor: "test"}
	if _, err := svc.CreatePool(ctx, caller, storage.Pool{ID: "ci", OrgID: "acme", Condition: "true", Scopes: []string{"read"}}); err != nil {
		t.Fatal(err)
	}
	_, err := svc.CreateProvider(ctx, caller, storage.Provider{PoolID: "ci", ID: "p", Issuer: "https://169.254.169.254/", Audiences: []string{"sts"}})
	if sts.ErrorCode(err) != sts.Invalid || !strings.Contains(err.Error(), `issuer: "https://169.254.169.254/"`) || !strings.Contains(err.Error(), "link-local") {
		t.Errorf("CreateProvider with a link-local issuer = %v, want invalid naming the issuer and why", err)
	}
	if _, err := svc.GetProvider(ctx, "ci", "p"); sts.ErrorCode(err) != sts.NotFound {
		t.Errorf("after the refusal, GetProvider = %v, want not found", err)
	}
	if _, err := svc.CreateProvider(ctx, caller, storage.Provider{PoolID: "ci", ID: "p", Issuer: "https://issuer.example/", Audiences: []string{"sts"}}); err != nil {
		t.Fatalf("CreateProvider with a public issuer: %v", err)
	}
	bad := "https://[::1]:8443/"
	if _, err := svc.UpdateProvider(ctx, caller, "ci", "p", pools.ProviderUpdate{JWKSURI: &bad}); sts.ErrorCode(err) != sts.Invalid || !strings.Contains(err.Error(), "jwks_uri") {
		t.Errorf("UpdateProvider to a loopback jwks_uri without allow_loopback = %v, want invalid naming jwks_uri", err)
	}
}

// TestStoredProviderOutsideTheFetchRuleCanBeDisabled: a provider stored
// before the pool checks held key URLs to the fetcher's own rule (T-59),
// whose jwks_uri the fetcher refuses, must not block an update that leaves
// its keys' URLs alone: above all `sts provider disable`. An update that
// sets issuer, jwks_uri or jwks is held to the rule.
func TestStoredProviderOutsideTheFetchRuleCanBeDisabled(t *testing.T) {
	ctx := t.Context()
	svc, st := acmeService(t, pools.Limits{})
	caller := pools.Caller{Actor: "test"}
	if _, err := svc.CreatePool(ctx, caller, storage.Pool{ID: "ci", OrgID: "acme", Condition: "true", Scopes: []string{"read"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateProvider(ctx, caller, storage.Provider{PoolID: "ci", ID: "p", Issuer: "https://issuer.example/", Audiences: []string{"sts"}}); err != nil {
		t.Fatal(err)
	}
	// As an older version stored it.
	metadata := "https://169.254.169.254/jwks"
	if err := st.UpdateProvider(ctx, "ci", "p", func(p storage.Provider) (storage.Provider, error) {
		p.JWKSURI = metadata
		return p, nil
	}); err != nil {
		t.Fatal(err)
	}
	on := true
	if p, err := svc.UpdateProvider(ctx, caller, "ci", "p", pools.ProviderUpdate{Disabled: &on}); err != nil || !p.Disabled {
		t.Fatalf("disable a provider stored with a jwks_uri the fetcher refuses = disabled %v, %v; want disabled", p.Disabled, err)
	}
	if _, err := svc.UpdateProvider(ctx, caller, "ci", "p", pools.ProviderUpdate{JWKSURI: &metadata}); sts.ErrorCode(err) != sts.Invalid || !strings.Contains(err.Error(), "jwks_uri") {
		t.Errorf("set the same jwks_uri = %v, want invalid naming jwks_uri", err)
	}
	fine := "https://issuer.example/jwks"
	if p, err := svc.UpdateProvider(ctx, caller, "ci", "p", pools.ProviderUpdate{JWKSURI: &fine}); err != nil || p.JWKSURI != fine {
		t.Errorf("replace the jwks_uri = %q, %v; want %q", p.JWKSURI, err, fine)
	}
}
