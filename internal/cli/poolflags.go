package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/opensts/sts/internal/policy"
	"github.com/opensts/sts/internal/storage"
)

// poolFlags binds the flags that set pool fields.
type poolFlags struct {
	org, display, identity, condition, subject, groups, principal string
	attributes, scopes                                            []string
	lifetime                                                      time.Duration
	disabled, unauthenticated                                     bool
}

func (f *poolFlags) bind(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.org, "organization", "", "organization ID the pool belongs to")
	fs.StringVar(&f.display, "display-name", "", "human-readable name")
	fs.StringVar(&f.identity, "identity-claim", "", "CEL expression for the identity (default "+policy.DefaultIdentityClaim+")")
	fs.StringVar(&f.condition, "condition", "", `CEL condition over assertion and request, e.g. 'assertion.repository_owner == "acme"'`)
	fs.StringVar(&f.subject, "subject", "", "CEL mapping of the issued token's sub (default: the identity)")
	fs.StringVar(&f.groups, "groups", "", "CEL mapping of the issued token's groups (a list of strings)")
	fs.StringArrayVar(&f.attributes, "attribute", nil, "NAME=CEL mapping of an attribute (repeatable; NAME= removes it on update)")
	fs.StringSliceVar(&f.scopes, "scopes", nil, "comma-separated ceiling of the scopes an exchange may grant")
	fs.DurationVar(&f.lifetime, "max-token-lifetime", 0, "cap on issued tokens (0: keys.max_token_lifetime)")
	fs.StringVar(&f.principal, "principal", "", "principal ID exchanged tokens act as")
	fs.BoolVar(&f.unauthenticated, "allow-unauthenticated", false, "allow exchanges without client authentication")
	fs.BoolVar(&f.disabled, "disabled", false, "create or set the pool disabled")
}

// apply copies every flag the user set onto p.
func (f *poolFlags) apply(cmd *cobra.Command, p *storage.Pool) error {
	set := cmd.Flags().Changed
	str := map[string]*string{"organization": &p.OrgID, "display-name": &p.DisplayName, "identity-claim": &p.IdentityClaim,
		"condition": &p.Condition, "subject": &p.Mapping.Subject, "groups": &p.Mapping.Groups, "principal": &p.PrincipalID}
	val := map[string]string{"organization": f.org, "display-name": f.display, "identity-claim": f.identity,
		"condition": f.condition, "subject": f.subject, "groups": f.groups, "principal": f.principal}
	for name, dst := range str {
		if set(name) {
			*dst = val[name]
		}
	}
	for _, a := range f.attributes {
		name, expr, ok := strings.Cut(a, "=")
		if !ok || name == "" {
			return usageError{fmt.Errorf("--attribute %q: want NAME=CEL", a)}
		}
		if p.Mapping.Attributes == nil {
			p.Mapping.Attributes = map[string]string{}
		}
		if expr == "" {
			delete(p.Mapping.Attributes, name)
			continue
		}
		p.Mapping.Attributes[name] = expr
	}
	if set("scopes") {
		p.Scopes = f.scopes
	}
	if set("max-token-lifetime") {
		p.MaxTokenLifetime = f.lifetime
	}
	if set("allow-unauthenticated") {
		p.AllowUnauthenticated = f.unauthenticated
	}
	if set("disabled") {
		p.Disabled = f.disabled
	}
	return nil
}
