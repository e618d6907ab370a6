package loadgen

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// grantClientCredentials is the RFC 6749 §4.4.2 grant type.
const grantClientCredentials = "client_credentials"

// BasicAuth is the Authorization header value of HTTP Basic client
// authentication: RFC 6749 §2.3.1 form-urlencodes the client id and
// secret before they are joined and base64-encoded (RFC 7617).
func BasicAuth(clientID, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(clientID)+":"+url.QueryEscape(secret)))
}

// IntrospectBodies returns one RFC 7662 §2.1 introspection request body
// (token=…) per token.
func IntrospectBodies(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		out[i] = url.Values{"token": {t}}.Encode()
	}
	return out
}

// ClientCredentialsBody is the RFC 6749 §4.4.2 access token request for
// scope (the client authenticates in the Authorization header).
func ClientCredentialsBody(scope string) string {
	v := url.Values{"grant_type": {grantClientCredentials}}
	if scope != "" {
		v.Set("scope", scope)
	}
	return v.Encode()
}

var (
	activeTrue      = []byte(`"active":true`)
	activeTrueSpace = []byte(`"active": true`)
	accessTokenName = []byte(`"access_token"`)
)

// ExpectActive accepts an introspection answer that says the token is
// active (RFC 7662 §2.2). An answer of "active": false is a 200 too, but a
// benchmark that introspects valid tokens and hears "inactive" measured
// the wrong thing. The check is a substring test, not a JSON decode, so it
// costs the generator next to nothing.
func ExpectActive(body []byte) bool {
	return bytes.Contains(body, activeTrue) || bytes.Contains(body, activeTrueSpace)
}

// ExpectAccessToken accepts a token response that carries an access_token
// member (RFC 6749 §5.1).
func ExpectAccessToken(body []byte) bool {
	return bytes.Contains(body, accessTokenName)
}

// FetchTokens obtains n access tokens from the token endpoint tokenURL
// with client_credentials and HTTP Basic client authentication, one
// request each, and fails unless they are n distinct tokens. They are the
// tokens an introspection run sends; fetched before it, unmeasured.
func FetchTokens(ctx context.Context, tokenURL, clientID, secret, scope string, n int) ([]string, error) {
	if n <= 0 {
		return nil, fmt.Errorf("loadgen: need a positive number of tokens")
	}
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	authz, body := BasicAuth(clientID, secret), ClientCredentialsBody(scope)
	seen := make(map[string]bool, n)
	out := make([]string, 0, n)
	for range n {
		tok, err := fetchToken(ctx, client, tokenURL, authz, body)
		if err != nil {
			return nil, err
		}
		if seen[tok] {
			return nil, fmt.Errorf("%s returned the same access token twice; the run needs distinct tokens", tokenURL)
		}
		seen[tok] = true
		out = append(out, tok)
	}
	return out, nil
}

func fetchToken(ctx context.Context, c *http.Client, tokenURL, authz, body string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", authz)
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		// An error answer (RFC 6749 §5.2) carries no credential.
		return "", fmt.Errorf("%s: %s: %s", tokenURL, resp.Status, bytes.TrimSpace(data[:min(len(data), 512)]))
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(data, &tr); err != nil || tr.AccessToken == "" {
		return "", fmt.Errorf("%s: 200 without an access_token", tokenURL)
	}
	return tr.AccessToken, nil
}
