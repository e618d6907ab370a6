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

// TestValidateTrustedProxiesMapped is docs/security.md F-83 at the
// configuration: an IPv4-mapped CIDR that would read as wider than an
// IPv4 /8 (::ffff:0:0/96 is 0.0.0.0/0, every IPv4 client a trusted proxy)
// or that is shorter than /96 (never matching an IPv4 proxy) fails
// validation under its key, so sts serve and sts config check refuse it;
// ::ffff:10.0.0.0/104 (10.0.0.0/8) is valid.
func TestValidateTrustedProxiesMapped(t *testing.T) {
	c := DefaultConfig()
	c.Derive()
	c.HTTP.TrustedProxies = []string{"::ffff:10.0.0.0/104", "::ffff:192.0.2.5/128"}
	if err := c.Validate(); err != nil {
		t.Fatalf("mapped /104 and /128 refused: %v", err)
	}
	for cidr, want := range map[string]string{
		"::ffff:0:0/96":  "means 0.0.0.0/0",
		"::ffff:0:0/95":  "shorter than /96",
		"::ffff:0:0/88":  "shorter than /96",
		"::ffff:0:0/100": "means 0.0.0.0/4",
	} {
		c.HTTP.TrustedProxies = []string{"10.0.0.0/8", cidr}
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "http.trusted_proxies") || !strings.Contains(err.Error(), cidr) || !strings.Contains(err.Error(), want) {
			t.Errorf("http.trusted_proxies [10.0.0.0/8 %s]: got %v, want an error naming the key, the value and %q", cidr, err, want)
		}
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
