package config

import (
	"strings"
	"testing"
)

func TestValidateTrustedProxies(t *testing.T) {
	c := DefaultConfig()
	c.Derive()
	c.HTTP.TrustedProxies = []string{"10.0.0.0/8", "::1/128"}
	if err := c.Validate(); err != nil {
		t.Fatalf("valid CIDRs refused: %v", err)
	}
	c.HTTP.TrustedProxies = []string{"10.0.0.0/8", "10.0.0.1"}
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "http.trusted_proxies") || !strings.Contains(err.Error(), "10.0.0.1") {
		t.Fatalf("bare address: got %v, want an error naming http.trusted_proxies and the value", err)
	}
}
