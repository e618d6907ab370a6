package config

import (
	"errors"
	"strings"
	"testing"
)

// TestLoadTokenExchange: token_exchange.max_delegation_depth, the longest
// act chain a token exchange issues and a refresh family mints
// (docs/security.md T-166), is 5 by default, set from the file or the
// environment, and refused outside 1 to 16, naming the key.
func TestLoadTokenExchange(t *testing.T) {
	got, err := Load(Options{File: writeFile(t, "listen: 127.0.0.1:8080\n"), Environ: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	if got.TokenExchange.MaxDelegationDepth != 5 {
		t.Errorf("token_exchange.max_delegation_depth = %d by default, want 5", got.TokenExchange.MaxDelegationDepth)
	}
	got, err = Load(Options{File: writeFile(t, "token_exchange: {max_delegation_depth: 2}\n"), Environ: noEnv})
	if err != nil || got.TokenExchange.MaxDelegationDepth != 2 {
		t.Errorf("from the file: %d, %v; want 2", got.TokenExchange.MaxDelegationDepth, err)
	}
	env := func() []string { return []string{"STS_TOKEN_EXCHANGE_MAX_DELEGATION_DEPTH=1"} }
	got, err = Load(Options{File: writeFile(t, "token_exchange: {max_delegation_depth: 2}\n"), Environ: env})
	if err != nil || got.TokenExchange.MaxDelegationDepth != 1 {
		t.Errorf("from the environment over the file: %d, %v; want 1", got.TokenExchange.MaxDelegationDepth, err)
	}
	for _, v := range []string{"0", "-1", "17"} {
		_, err := Load(Options{File: writeFile(t, "token_exchange: {max_delegation_depth: "+v+"}\n"), Environ: noEnv})
		var cerr *Error
		if !errors.As(err, &cerr) || !strings.Contains(err.Error(), "token_exchange.max_delegation_depth: must be between 1 and 16, got "+v) {
			t.Errorf("max_delegation_depth %s: Load = %v, want a problem naming the key", v, err)
		}
	}
}
