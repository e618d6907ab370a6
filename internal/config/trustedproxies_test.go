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

func TestValidateClientIPHeader(t *testing.T) {
	c := DefaultConfig()
	c.Derive()
	if c.HTTP.ClientIPHeader != "x-forwarded-for" {
		t.Fatalf("default http.client_ip_header = %q, want x-forwarded-for", c.HTTP.ClientIPHeader)
	}
	for _, ok := range []string{"x-forwarded-for", "forwarded", "Forwarded"} {
		c.HTTP.ClientIPHeader = ok
		if err := c.Validate(); err != nil {
			t.Errorf("http.client_ip_header %q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "x-real-ip", "forwarded,x-forwarded-for"} {
		c.HTTP.ClientIPHeader = bad
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "http.client_ip_header") {
			t.Errorf("http.client_ip_header %q: got %v, want an error naming it", bad, err)
		}
	}
}
