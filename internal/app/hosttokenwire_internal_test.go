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
