package app

import (
	"testing"

	"github.com/opensts/sts/internal/config"
)

// TestClientJWKSFetchHonoursAllowPrivate (docs/security.md T-197): the
// client that fetches a private_key_jwt client's jwks_uri is the
// providers' client: a key set on the operator's network (federation.
// allow_private) is reachable as a provider's is, the metadata and
// link-local addresses never, and loopback only with
// federation.allow_loopback. Before, it ignored federation.allow_private,
// so such a client could never authenticate.
func TestClientJWKSFetchHonoursAllowPrivate(t *testing.T) {
	for _, allow := range []struct{ loopback, private bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
		cfg := config.Config{}
		cfg.Federation.AllowLoopback, cfg.Federation.AllowPrivate = allow.loopback, allow.private
		got := clientJWKSClient(cfg)
		if got != providerClient(cfg) {
			t.Errorf("%+v: jwks_uri client %+v, want the providers' %+v", allow, got, providerClient(cfg))
		}
		err := got.CheckURL("https://10.1.2.3/jwks.json")
		if allow.private != (err == nil) {
			t.Errorf("%+v: https://10.1.2.3/jwks.json: %v", allow, err)
		}
		for _, u := range []string{"https://169.254.169.254/jwks", "https://[fd00:ec2::254]/jwks", "https://[fe80::1]/jwks"} {
			if err := got.CheckURL(u); err == nil {
				t.Errorf("%+v: %s accepted, want refused whatever the options", allow, u)
			}
		}
	}
}
