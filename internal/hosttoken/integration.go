package hosttoken

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/opensts/sts/internal/storage"
)

// Integration is how sts refreshes the OAuth tokens of one SCM integration:
// the host's OAuth token endpoint and the OAuth app's client credentials.
// Tokens name their integration by integrationId.
type Integration struct {
	// TokenURL is the host's OAuth 2.0 token endpoint, for example
	// https://github.com/login/oauth/access_token.
	TokenURL string
	ClientID string
	// ClientSecret is sent with HTTP Basic authentication (RFC 6749
	// §2.3.1), falling back to the request body if the endpoint refuses.
	ClientSecret string
}

// IntegrationConfig is the configuration form of an Integration: the
// client secret is read from a file, never given inline (docs/configuration.md).
type IntegrationConfig struct {
	TokenURL         string `koanf:"token_url"`
	ClientID         string `koanf:"client_id"`
	ClientSecretFile string `koanf:"client_secret_file"`
}

// LoadIntegrations validates configs keyed by integration ID (a UUID) and
// reads their client secrets. Every problem is reported at once.
// checkURL is the refresh client's own rule (the wiring passes
// federation.ClientOptions.CheckURL of the options it builds the
// Refresher's client with): a token_url that client would not call (plain
// http outside loopback, or at all without federation.allow_loopback) is
// refused here, not at the first refresh (docs/security.md F-77).
func LoadIntegrations(configs map[string]IntegrationConfig, checkURL func(string) error) (map[string]Integration, error) {
	out := make(map[string]Integration, len(configs))
	var errs []error
	for id, c := range configs {
		if !storage.IsUUID(id) {
			errs = append(errs, fmt.Errorf("integration %q: the key must be the integration's UUID", id))
			continue
		}
		if err := checkURL(c.TokenURL); err != nil {
			errs = append(errs, fmt.Errorf("integration %s: token_url %q: %w (https; plain http only to a loopback address, with federation.allow_loopback; a private address only with federation.allow_private)",
				id, redactedURL(c.TokenURL), err))
		}
		if c.ClientID == "" {
			errs = append(errs, fmt.Errorf("integration %s: client_id is required", id))
		}
		var secret string
		if c.ClientSecretFile != "" {
			b, err := os.ReadFile(c.ClientSecretFile)
			if err != nil {
				errs = append(errs, fmt.Errorf("integration %s: client_secret_file: %w", id, err))
			}
			secret = strings.TrimSpace(string(b))
		}
		out[storage.CanonicalID(id)] = Integration{TokenURL: c.TokenURL, ClientID: c.ClientID, ClientSecret: secret}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// redactedURL is raw with any password in it replaced, for a message.
func redactedURL(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		return u.Redacted()
	}
	return raw
}
