package app

import (
	"strings"
	"testing"

	"github.com/opensts/sts/internal/config"
)

// TestIntegrationIDTwice (docs/configuration.md host_token_integrations):
// an integration ID given twice stops start-up, in any letter case (the
// vault compares IDs lower-cased, so one entry would silently replace the
// other), and every problem is named at once.
func TestIntegrationIDTwice(t *testing.T) {
	const id = "0190c0de-aaaa-7bbb-8ccc-0123456789ab"
	cfg := config.Config{HostTokenIntegrations: []config.HostTokenIntegrationConfig{
		{ID: id, TokenURL: "https://github.com/login/oauth/access_token", ClientID: "first"},
		{ID: strings.ToUpper(id), TokenURL: "https://other.example/token", ClientID: "second"},
		{ID: "not-a-uuid", TokenURL: "https://other.example/token", ClientID: "third"},
	}}
	got, err := hostTokenIntegrations(cfg)
	if err == nil {
		t.Fatalf("the same ID twice, letter case apart, accepted: %d integrations", len(got))
	}
	for _, want := range []string{"host_token_integrations[1]", "not-a-uuid"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

// TestIntegrationOnPrivateNetworkWithAllowPrivate (docs/security.md
// F-95): a self-hosted SCM on the operator's network (a GitLab on 10/8, a
// ULA) is an integration the refresh job may call once
// federation.allow_private says so, as the providers' fetches may; the
// link-local and metadata addresses stay refused with it, and a private
// address is refused without it. The refresh client and the start-up
// check are one rule, so what start-up accepts is what the job dials.
func TestIntegrationOnPrivateNetworkWithAllowPrivate(t *testing.T) {
	const id = "0190c0de-aaaa-7bbb-8ccc-0123456789ab"
	load := func(tokenURL string, allowPrivate bool) error {
		cfg := config.Config{HostTokenIntegrations: []config.HostTokenIntegrationConfig{
			{ID: id, TokenURL: tokenURL, ClientID: "gitlab-app"},
		}}
		cfg.Federation.AllowPrivate = allowPrivate
		_, err := hostTokenIntegrations(cfg)
		return err
	}
	private := []string{"https://10.0.0.5/oauth/token", "https://192.168.1.20:8443/oauth/token",
		"https://172.16.0.9/oauth/token", "https://[fd12:3456::1]/oauth/token", "https://100.64.0.7/oauth/token"}
	for _, u := range private {
		if err := load(u, true); err != nil {
			t.Errorf("token_url %s with federation.allow_private: refused: %v", u, err)
		}
		if err := load(u, false); err == nil || !strings.Contains(err.Error(), "private address") {
			t.Errorf("token_url %s without federation.allow_private: error %v, want a private address refused", u, err)
		}
	}
	for _, u := range []string{"https://169.254.169.254/latest/meta-data", "https://[fd00:ec2::254]/", "https://[fe80::1]/token"} {
		if err := load(u, true); err == nil {
			t.Errorf("token_url %s with federation.allow_private: accepted, want refused whatever the options", u)
		}
	}
	// The job's client is the one the check is built from.
	for _, allow := range []bool{false, true} {
		cfg := config.Config{}
		cfg.Federation.AllowPrivate = allow
		if got := refreshClient(cfg); got != providerClient(cfg) {
			t.Errorf("allow_private %v: refresh client %+v, want the providers' %+v", allow, got, providerClient(cfg))
		}
	}
}
