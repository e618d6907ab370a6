package pools_test

import (
	"net"
	"testing"

	"github.com/opensts/sts/internal/federation"
	"github.com/opensts/sts/internal/pools"
	"github.com/opensts/sts/internal/storage"
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
		poolOK := len(pools.ProviderProblems(p, true)) == 0
		clientErr := client.CheckURL(issuer)
		if poolOK != tc.loopback || (clientErr == nil) != tc.loopback {
			t.Errorf("%s: pool check accepts %v, client accepts %v (%v); want both %v", issuer, poolOK, clientErr == nil, clientErr, tc.loopback)
		}
	}
}
