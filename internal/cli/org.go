package cli

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	"github.com/opensts/sts/internal/api"
	"github.com/opensts/sts/internal/app"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/sts"
)

// orgAdmin is what the org commands do, remotely or in the database.
type orgAdmin interface {
	create(ctx context.Context, name, tier string) (*stsv1.Organization, error)
	get(ctx context.Context, id string) (*stsv1.Organization, error)
	list(ctx context.Context) ([]*stsv1.Organization, error)
	update(ctx context.Context, id string, name, tier *string) (*stsv1.Organization, error)
	delete(ctx context.Context, id string) error
}

func (a *admin) orgs() orgAdmin {
	if a.remote != nil {
		return remoteOrgs{stsv1connect.NewOrganizationServiceClient(a.remote.http, a.remote.base, a.remote.opts()...)}
	}
	return directOrgs{a.store, app.DeclaredOrganizations(a.cfg)}
}

type remoteOrgs struct {
	c stsv1connect.OrganizationServiceClient
}

func (r remoteOrgs) create(ctx context.Context, name, tier string) (*stsv1.Organization, error) {
	res, err := r.c.CreateOrganization(ctx, &stsv1.CreateOrganizationRequest{Name: name, Tier: tier})
	return res.GetOrganization(), err
}

func (r remoteOrgs) get(ctx context.Context, id string) (*stsv1.Organization, error) {
	res, err := r.c.GetOrganization(ctx, &stsv1.GetOrganizationRequest{OrganizationId: id})
	return res.GetOrganization(), err
}

func (r remoteOrgs) list(ctx context.Context) ([]*stsv1.Organization, error) {
	res, err := r.c.ListOrganizations(ctx, &stsv1.ListOrganizationsRequest{})
	return res.GetOrganizations(), err
}

func (r remoteOrgs) update(ctx context.Context, id string, name, tier *string) (*stsv1.Organization, error) {
	res, err := r.c.UpdateOrganization(ctx, &stsv1.UpdateOrganizationRequest{OrganizationId: id, Name: name, Tier: tier})
	return res.GetOrganization(), err
}

func (r remoteOrgs) delete(ctx context.Context, id string) error {
	_, err := r.c.DeleteOrganization(ctx, &stsv1.DeleteOrganizationRequest{OrganizationId: id})
	return err
}

// directOrgs is the database's organizations; declared are those of the
// file direct mode is given, which it does not delete (docs/security.md
//
type directOrgs struct {
	s        *sqlstore.Store
	declared map[string]bool
}

func (d directOrgs) create(ctx context.Context, name, tier string) (*stsv1.Organization, error) {
	o, err := api.CreateOrganization(ctx, d.s, cliCaller, name, tier, time.Now())
	if err != nil {
		return nil, err
	}
	return api.OrganizationToProto(o), nil
}

func (d directOrgs) get(ctx context.Context, id string) (*stsv1.Organization, error) {
	o, err := d.s.GetOrganization(ctx, id)
	if err != nil {
		return nil, notFound(err, "organization")
	}
	return api.OrganizationToProto(o), nil
}

func (d directOrgs) list(ctx context.Context) ([]*stsv1.Organization, error) {
	list, err := d.s.ListOrganizations(ctx)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	out := make([]*stsv1.Organization, 0, len(list))
	for _, o := range list {
		out = append(out, api.OrganizationToProto(o))
	}
	return out, nil
}

func (d directOrgs) update(ctx context.Context, id string, name, tier *string) (*stsv1.Organization, error) {
	o, err := api.UpdateOrganization(ctx, d.s, cliCaller, id, name, tier, time.Now())
	if err != nil {
		return nil, err
	}
	return api.OrganizationToProto(o), nil
}

func (d directOrgs) delete(ctx context.Context, id string) error {
	return api.DeleteOrganization(ctx, d.s, cliCaller, id, d.declared, time.Now())
}

// resolveOrg returns the organization ref names: an ID, or a unique name.
func resolveOrg(ctx context.Context, a orgAdmin, ref string) (*stsv1.Organization, error) {
	if ref == "" {
		return nil, usageError{fmt.Errorf("--org is required")}
	}
	if o, err := a.get(ctx, ref); err == nil {
		return o, nil
	} else if !isNotFound(err) {
		return nil, err
	}
	list, err := a.list(ctx)
	if err != nil {
		return nil, err
	}
	var found []*stsv1.Organization
	for _, o := range list {
		if o.GetName() == ref {
			found = append(found, o)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return nil, fmt.Errorf("no organization %q", ref)
	}
	return nil, fmt.Errorf("%d organizations are named %q; pass its ID", len(found), ref)
}

// isNotFound reports a not_found answer of either mode (a Connect error,
// an sts.Error, or an invalid ID the API refuses as invalid_argument).
func isNotFound(err error) bool {
	if ce, ok := errors.AsType[*connect.Error](err); ok {
		return ce.Code() == connect.CodeNotFound || ce.Code() == connect.CodeInvalidArgument
	}
	c := sts.ErrorCode(err)
	return c == sts.NotFound || c == sts.Invalid
}

// notFound turns a storage lookup error into the API's not_found.
func notFound(err error, what string) error {
	if errors.Is(err, storage.ErrNotFound) {
		return sts.Errorf(sts.NotFound, "%s not found", what)
	}
	return fmt.Errorf("storage: %w", err)
}

func newOrgCmd() *cobra.Command {
	cmd := adminNoun(&cobra.Command{Use: "org", Aliases: []string{"organization"}, Short: "Manage organizations"})
	var name, tier string
	create := &cobra.Command{
		Use:     "create --name NAME [--tier TIER]",
		Short:   "Create an organization and print its ID (instance administrators)",
		Example: `  sts org create --name acme --tier enterprise`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAdmin(cmd, func(ctx context.Context, a *admin) error {
				o, err := a.orgs().create(ctx, name, tier)
				if err != nil {
					return err
				}
				return printOrgs(cmd, []*stsv1.Organization{o}, true, true)
			})
		},
	}
	create.Flags().StringVar(&name, "name", "", "name (required)")
	create.Flags().StringVar(&tier, "tier", api.DefaultTier, "tier, reported as organizationTier")
	_ = create.MarkFlagRequired("name")
	list := &cobra.Command{
		Use:   "list",
		Short: "List organizations (an organization administrator sees its own)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAdmin(cmd, func(ctx context.Context, a *admin) error {
				list, err := a.orgs().list(ctx)
				if err != nil {
					return err
				}
				return printOrgs(cmd, list, false, false)
			})
		},
	}
	show := &cobra.Command{
		Use:   "show ID|NAME",
		Short: "Show an organization",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAdmin(cmd, func(ctx context.Context, a *admin) error {
				o, err := resolveOrg(ctx, a.orgs(), args[0])
				if err != nil {
					return err
				}
				return printOrgs(cmd, []*stsv1.Organization{o}, true, false)
			})
		},
	}
	var newName, newTier string
	update := &cobra.Command{
		Use:     "update ID|NAME [--name NAME] [--tier TIER]",
		Short:   "Rename an organization or change its tier (instance administrators)",
		Example: `  sts org update acme --tier enterprise`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var np, tp *string
			if cmd.Flags().Changed("name") {
				np = &newName
			}
			if cmd.Flags().Changed("tier") {
				tp = &newTier
			}
			if np == nil && tp == nil {
				return usageError{fmt.Errorf("nothing to change: give --name or --tier")}
			}
			return runAdmin(cmd, func(ctx context.Context, a *admin) error {
				orgs := a.orgs()
				o, err := resolveOrg(ctx, orgs, args[0])
				if err != nil {
					return err
				}
				if o, err = orgs.update(ctx, o.GetId(), np, tp); err != nil {
					return err
				}
				return printOrgs(cmd, []*stsv1.Organization{o}, true, false)
			})
		},
	}
	update.Flags().StringVar(&newName, "name", "", "new name")
	update.Flags().StringVar(&newTier, "tier", "", "new tier")
	del := &cobra.Command{
		Use:   "delete ID|NAME",
		Short: "Delete an empty organization: no principals, clients or pools (instance administrators)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAdmin(cmd, func(ctx context.Context, a *admin) error {
				orgs := a.orgs()
				o, err := resolveOrg(ctx, orgs, args[0])
				if err != nil {
					return err
				}
				if err := orgs.delete(ctx, o.GetId()); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "deleted organization %s\n", printable(o.GetId()))
				return nil
			})
		},
	}
	cmd.AddCommand(create, list, show, update, del)
	return cmd
}

// printOrgs prints organizations: JSON, or a table (idOnly: the ID alone,
// the text output of create, for scripts).
func printOrgs(cmd *cobra.Command, list []*stsv1.Organization, one, idOnly bool) error {
	if j, _ := outputJSON(cmd); j {
		return printObjects(cmd.OutOrStdout(), list, one)
	}
	if idOnly {
		fmt.Fprintln(cmd.OutOrStdout(), printable(list[0].GetId()))
		return nil
	}
	w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tNAME\tTIER\tCREATED")
	for _, o := range list {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", printable(o.GetId()), printable(o.GetName()), printable(o.GetTier()), stampPB(o.GetCreatedAt()))
	}
	return w.Flush()
}
