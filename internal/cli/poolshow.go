package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/opensts/sts/internal/api"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/storage"
)

func newPoolShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show a pool and its providers as YAML, in the configuration file's shape (--output json: the API's objects)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withPoolAdmin(cmd, func(ctx context.Context, svc poolAdmin) error {
				p, err := svc.GetPool(ctx, args[0])
				if err != nil {
					return err
				}
				providers, err := svc.ListProviders(ctx, p.ID)
				if err != nil {
					return err
				}
				if j, _ := outputJSON(cmd); j {
					// The API's GetPoolResponse: the pool and its providers.
					res := &stsv1.GetPoolResponse{Pool: api.PoolToProto(p)}
					for _, pr := range providers {
						res.Providers = append(res.Providers, api.ProviderToProto(pr))
					}
					return printObjects(cmd.OutOrStdout(), []*stsv1.GetPoolResponse{res}, true)
				}
				doc := poolDoc(p)
				list := make([]any, len(providers))
				for i, pr := range providers {
					list[i] = providerDoc(pr)
				}
				doc.set("providers", list)
				return writeYAML(cmd, doc)
			})
		},
	}
}

func writeYAML(cmd *cobra.Command, doc *ordered) error {
	enc := yaml.NewEncoder(cmd.OutOrStdout())
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return err
	}
	return enc.Close()
}

// ordered is a YAML mapping that keeps its keys in insertion order, so
// show prints fields in the order of the configuration file.
type ordered struct {
	keys []string
	vals map[string]any
	// comments are line comments after a key's value: what is shown but
	// is no configuration key (timestamps, an uploaded JWKS), so the
	// output still loads as sts.yaml.
	comments map[string]string
}

// note adds a line comment to key k (already set).
func (o *ordered) note(k, comment string) {
	if o.comments == nil {
		o.comments = map[string]string{}
	}
	if c := o.comments[k]; c != "" {
		comment = c + "; " + comment
	}
	o.comments[k] = comment
}

func newOrdered() *ordered { return &ordered{vals: map[string]any{}} }

func (o *ordered) set(k string, v any) {
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
}

// MarshalYAML implements yaml.Marshaler.
func (o *ordered) MarshalYAML() (any, error) { return o.node() }

// node builds the mapping node directly, so the line comments of nested
// documents (providers) survive: yaml.Node.Encode would re-parse them away.
func (o *ordered) node() (*yaml.Node, error) {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for _, k := range o.keys {
		v, err := toNode(o.vals[k])
		if err != nil {
			return nil, err
		}
		if c := o.comments[k]; c != "" {
			v.LineComment = "# " + c
		}
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k}, v)
	}
	return n, nil
}

func toNode(v any) (*yaml.Node, error) {
	switch x := v.(type) {
	case *ordered:
		return x.node()
	case []any:
		seq := &yaml.Node{Kind: yaml.SequenceNode}
		for _, e := range x {
			n, err := toNode(e)
			if err != nil {
				return nil, err
			}
			seq.Content = append(seq.Content, n)
		}
		return seq, nil
	}
	n := &yaml.Node{}
	if err := n.Encode(v); err != nil {
		return nil, err
	}
	return n, nil
}

// poolDoc is a pool under the keys of the configuration file (pools:),
// empty fields left out, plus its timestamps.
func poolDoc(p storage.Pool) *ordered {
	m := newOrdered()
	m.set("id", p.ID)
	m.set("organization", p.OrgID)
	put := func(k string, v any, set bool) {
		if set {
			m.set(k, v)
		}
	}
	put("display_name", p.DisplayName, p.DisplayName != "")
	put("disabled", true, p.Disabled)
	put("identity_claim", p.IdentityClaim, p.IdentityClaim != "")
	put("condition", p.Condition, p.Condition != "")
	mapping := newOrdered()
	if p.Mapping.Subject != "" {
		mapping.set("subject", p.Mapping.Subject)
	}
	if p.Mapping.Groups != "" {
		mapping.set("groups", p.Mapping.Groups)
	}
	if len(p.Mapping.Attributes) > 0 {
		mapping.set("attributes", p.Mapping.Attributes)
	}
	put("mapping", mapping, len(mapping.keys) > 0)
	put("scopes", p.Scopes, len(p.Scopes) > 0)
	put("max_token_lifetime", config.FormatDuration(p.MaxTokenLifetime), p.MaxTokenLifetime != 0)
	put("principal", p.PrincipalID, p.PrincipalID != "")
	put("allow_unauthenticated", true, p.AllowUnauthenticated)
	put("audiences", p.Audiences, len(p.Audiences) > 0)
	put("google_default_scopes", p.GoogleDefaultScopes, len(p.GoogleDefaultScopes) > 0)
	m.note("id", "created "+stamp(p.CreatedAt)+", updated "+stamp(p.UpdatedAt))
	return m
}

// providerDoc is a provider under the keys of the configuration file; an
// uploaded JWKS is summarised, not printed.
func providerDoc(p storage.Provider) *ordered {
	m := newOrdered()
	m.set("id", p.ID)
	m.set("issuer", p.Issuer)
	m.set("audiences", p.Audiences)
	if p.JWKSURI != "" {
		m.set("jwks_uri", p.JWKSURI)
	}
	if len(p.JWKS) > 0 {
		m.note("id", fmt.Sprintf("jwks uploaded, %d bytes: in sts.yaml set jwks_file to a file holding it", len(p.JWKS)))
	}
	if len(p.Algorithms) > 0 {
		m.set("algorithms", p.Algorithms)
	}
	if p.OneTimeUse {
		m.set("one_time_use", true)
	}
	if p.AllowMissingKID {
		m.set("allow_missing_kid", true)
	}
	if p.AllowMultipleAudiences {
		m.set("allow_multiple_audiences", true)
	}
	if p.Disabled {
		m.set("disabled", true)
	}
	m.note("id", "created "+stamp(p.CreatedAt)+", updated "+stamp(p.UpdatedAt))
	return m
}
