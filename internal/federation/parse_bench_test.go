package federation

import (
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// BenchmarkParse measures the strict decode of a typical RS256 subject
// token (GitHub Actions claims): shape, base64url, header and claims.
func BenchmarkParse(b *testing.B) {
	k := testKeys()
	tok := sign(b, jose.RS256, k.rsa, kidRSA, map[string]any{
		"iss": "https://token.actions.githubusercontent.com", "sub": "repo:acme/app:ref:refs/heads/main", "aud": "sts",
		"iat": 1700000000, "nbf": 1700000000, "exp": 1700000300,
		"jti": "5f1a", "repository": "acme/app", "repository_owner": "acme", "repository_owner_id": "1234",
		"ref": "refs/heads/main", "workflow": "deploy", "event_name": "push", "runner_environment": "github-hosted",
	}, nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(tok); err != nil {
			b.Fatal(err)
		}
	}
}
