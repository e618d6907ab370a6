package policy

// sharedIssuers are issuers that sign tokens for every tenant of a public
// service with the same key and issuer URL: a pool that trusts one of them
// without a condition pinning the tenant (repository owner, project, …)
// admits tokens minted for anybody's workloads (docs/security.md T-46, Google WIF
// guidance). The list is exact-match on purpose, like issuer comparison.
var sharedIssuers = map[string]struct{}{
	"https://token.actions.githubusercontent.com": {}, // GitHub Actions
	"https://gitlab.com":                          {}, // GitLab.com CI/CD
	"https://accounts.google.com":                 {}, // Google ID tokens
	"accounts.google.com":                         {}, // Google ID tokens, legacy iss form
	"https://app.terraform.io":                    {}, // HCP Terraform workload identity
	"https://agent.buildkite.com":                 {}, // Buildkite pipelines
}

// IsSharedIssuer reports whether iss is a known multi-tenant issuer for which
// a pool must have a condition (docs/design.md#the-model: "deny if unset for shared
// issuers"). Evaluate enforces it for pools without a condition; config
// validation should also refuse such a pool up front.
func IsSharedIssuer(iss string) bool {
	_, ok := sharedIssuers[iss]
	return ok
}
