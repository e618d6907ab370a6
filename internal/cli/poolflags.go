package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/opensts/sts/internal/policy"
	"github.com/opensts/sts/internal/pools"
	"github.com/opensts/sts/internal/sts"
)

// poolFlags binds the flags that set pool fields.
type poolFlags struct {
	org, display, identity, condition, subject, groups, principal string
	attributes, scopes, audiences, googleScopes                   []string
	lifetime                                                      time.Duration
	disabled, unauthenticated                                     bool
}

func (f *poolFlags) bind(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.org, "org", "", "organization ID or name the pool belongs to")
	fs.StringVar(&f.display, "display-name", "", "human-readable name")
	fs.StringVar(&f.identity, "identity-claim", "", "CEL expression for the identity (default "+policy.DefaultIdentityClaim+")")
	fs.StringVar(&f.condition, "condition", "", `CEL condition over assertion and request, e.g. 'assertion.repository_owner == "acme"'`)
	fs.StringVar(&f.subject, "subject", "", "CEL mapping of the issued token's sub (default: the identity)")
	fs.StringVar(&f.groups, "groups", "", "CEL mapping of the issued token's groups (a list of strings)")
	fs.StringArrayVar(&f.attributes, "attribute", nil, "NAME=CEL mapping of an attribute (repeatable; NAME= removes it on update)")
	scopesVar(fs, &f.scopes, "scope", "ceiling of the scopes an exchange may grant (repeatable or comma-separated)")
	fs.StringSliceVar(&f.audiences, "audience", nil, "resource servers the pool's tokens may be minted for, audience or resource selects one (repeatable or comma-separated)")
	scopesVar(fs, &f.googleScopes, "google-default-scopes", "comma-separated scopes Google's default cloud-platform scope means here (default: every scope of the pool but offline_access, which it never holds)")
	durationVar(fs, &f.lifetime, "max-token-lifetime", 0, "cap on issued tokens (0: keys.max_token_lifetime)")
	fs.StringVar(&f.principal, "principal", "", "principal ID exchanged tokens act as")
	fs.BoolVar(&f.unauthenticated, "allow-unauthenticated", false, "allow exchanges without client authentication")
	fs.BoolVar(&f.disabled, "disabled", false, "create or set the pool disabled")
}

// update turns the flags the user set into a change of the shared pool
// lifecycle; the flags not set keep their field.
func (f *poolFlags) update(cmd *cobra.Command) (pools.PoolUpdate, error) {
	set := cmd.Flags().Changed
	var u pools.PoolUpdate
	str := func(name string, v *string) *string {
		if set(name) {
			return v
		}
		return nil
	}
	u.OrgID, u.DisplayName, u.IdentityClaim = str("org", &f.org), str("display-name", &f.display), str("identity-claim", &f.identity)
	u.Condition, u.Subject, u.Groups = str("condition", &f.condition), str("subject", &f.subject), str("groups", &f.groups)
	u.PrincipalID = str("principal", &f.principal)
	for _, a := range f.attributes {
		name, expr, ok := strings.Cut(a, "=")
		if !ok || name == "" {
			return u, usageError{fmt.Errorf("--attribute %q: want NAME=CEL", a)}
		}
		if u.AttributeEdits == nil {
			u.AttributeEdits = map[string]string{}
		}
		u.AttributeEdits[name] = expr
	}
	if set("scope") {
		u.Scopes = &f.scopes
	}
	if set("audience") {
		u.Audiences = &f.audiences
	}
	if set("google-default-scopes") {
		u.GoogleDefaultScopes = &f.googleScopes
	}
	if set("max-token-lifetime") {
		u.MaxTokenLifetime = &f.lifetime
	}
	if set("allow-unauthenticated") {
		u.AllowUnauthenticated = &f.unauthenticated
	}
	if set("disabled") {
		u.Disabled = &f.disabled
	}
	return u, nil
}

// poolFlagNames and providerFlagNames name the flag that sets a field the
// shared messages name (they use the API's field names).
var (
	poolFlagNames = map[string]string{
		"organization_id": "--org", "display_name": "--display-name", "scopes": "--scope",
		"max_token_lifetime": "--max-token-lifetime", "principal_id": "--principal",
		"audiences": "--audience", "google_default_scopes": "--google-default-scopes",
	}
	providerFlagNames = map[string]string{"pool_id": "--pool", "jwks": "--jwks-file"}
)

// withFlagHint adds the flag to set to a bad-input error whose message
// starts with a field a flag sets ("max_token_lifetime: …" gains
// "(flag --max-token-lifetime)").
func withFlagHint(err error, flags map[string]string) error {
	if sts.ErrorCode(err) != sts.Invalid {
		return err
	}
	msg := sts.ErrorMessage(err)
	if i := strings.IndexAny(msg, ":[ "); i > 0 {
		if flag, ok := flags[msg[:i]]; ok {
			return fmt.Errorf("%w (flag %s)", err, flag)
		}
	}
	return err
}
