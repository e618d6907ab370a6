package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/opensts/sts/internal/api"
	"github.com/opensts/sts/internal/app"
	"github.com/opensts/sts/internal/config"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
)

// principalAdmin is what the principal commands do, remotely or in the
// database.
type principalAdmin interface {
	create(ctx context.Context, req *stsv1.CreatePrincipalRequest) (*stsv1.Principal, error)
	get(ctx context.Context, id string) (*stsv1.Principal, error)
	list(ctx context.Context, orgID string) ([]*stsv1.Principal, error)
	setDisabled(ctx context.Context, id string, disabled bool) (*stsv1.Principal, error)
	delete(ctx context.Context, id string) error
	exchangeToken(ctx context.Context, id string, validFor time.Duration) (string, time.Time, error)
}

func (a *admin) principals() principalAdmin {
	if a.remote != nil {
		return remotePrincipals{stsv1connect.NewPrincipalServiceClient(a.remote.http, a.remote.base, a.remote.opts()...)}
	}
	return &directPrincipals{a: a}
}

type remotePrincipals struct {
	c stsv1connect.PrincipalServiceClient
}

func (r remotePrincipals) create(ctx context.Context, req *stsv1.CreatePrincipalRequest) (*stsv1.Principal, error) {
	res, err := r.c.CreatePrincipal(ctx, req)
	return res.GetPrincipal(), err
}

func (r remotePrincipals) get(ctx context.Context, id string) (*stsv1.Principal, error) {
	res, err := r.c.GetPrincipal(ctx, &stsv1.GetPrincipalRequest{PrincipalId: id})
	return res.GetPrincipal(), err
}

func (r remotePrincipals) list(ctx context.Context, orgID string) ([]*stsv1.Principal, error) {
	res, err := r.c.ListPrincipals(ctx, &stsv1.ListPrincipalsRequest{OrganizationId: orgID})
	return res.GetPrincipals(), err
}

func (r remotePrincipals) setDisabled(ctx context.Context, id string, disabled bool) (*stsv1.Principal, error) {
	res, err := r.c.SetPrincipalDisabled(ctx, &stsv1.SetPrincipalDisabledRequest{PrincipalId: id, Disabled: disabled})
	return res.GetPrincipal(), err
}

func (r remotePrincipals) delete(ctx context.Context, id string) error {
	_, err := r.c.DeletePrincipal(ctx, &stsv1.DeletePrincipalRequest{PrincipalId: id})
	return err
}

func (r remotePrincipals) exchangeToken(ctx context.Context, id string, validFor time.Duration) (string, time.Time, error) {
	res, err := r.c.CreateExchangeToken(ctx, &stsv1.CreateExchangeTokenRequest{PrincipalId: id, ValidFor: durationpb.New(validFor)})
	return res.GetExchangeToken(), res.GetExpiresAt().AsTime(), err
}

type directPrincipals struct {
	a    *admin
	pats *pat.Service
}

// patService is the PAT service over the database (the pepper needs the
// master key), opened on first use.
func (a *admin) patService(ctx context.Context) (*pat.Service, error) {
	p, err := patPepper(ctx, a.cfg, a.store)
	if err != nil {
		return nil, err
	}
	defer clear(p)
	svc, err := pat.NewService(a.store, p)
	if err != nil {
		return nil, err
	}
	svc.Logger = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return svc, nil
}

func (d *directPrincipals) create(ctx context.Context, req *stsv1.CreatePrincipalRequest) (*stsv1.Principal, error) {
	k, ok := api.KindFromProto(req.GetKind())
	if !ok {
		return nil, usageError{errors.New("--kind required")}
	}
	p, err := api.CreatePrincipal(ctx, d.a.store, cliCaller, req.GetOrganizationId(), k, req.GetName(), req.GetEmail(), time.Now())
	if err != nil {
		return nil, err
	}
	if pub := req.GetRunnerPublicKey(); pub != nil {
		if _, err := setRunnerKey(ctx, d.a.store, p.ID, pub); err != nil {
			return nil, fmt.Errorf("runner %s created, but its key was not stored: %w", p.ID, err)
		}
	}
	return api.PrincipalToProto(p), nil
}

func (d *directPrincipals) get(ctx context.Context, id string) (*stsv1.Principal, error) {
	p, err := d.a.store.GetPrincipal(ctx, id)
	if err != nil {
		return nil, notFound(err, "principal")
	}
	return api.PrincipalToProto(p), nil
}

func (d *directPrincipals) list(ctx context.Context, orgID string) ([]*stsv1.Principal, error) {
	ps, err := d.a.store.ListPrincipals(ctx, orgID)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	out := make([]*stsv1.Principal, 0, len(ps))
	for _, p := range ps {
		out = append(out, api.PrincipalToProto(p))
	}
	return out, nil
}

func (d *directPrincipals) setDisabled(ctx context.Context, id string, disabled bool) (*stsv1.Principal, error) {
	now := time.Now()
	var out storage.Principal
	action := api.ActionPrincipalEnable
	if disabled {
		action = api.ActionPrincipalDisable
	}
	// The change commits with its audit event, or not at all
	// (docs/design.md#audit).
	var auditErr error
	err := d.a.store.WithTx(ctx, func(tx storage.Tx) error {
		err := tx.UpdatePrincipal(ctx, id, func(p storage.Principal) (storage.Principal, error) {
			p.Disabled, p.UpdatedAt = disabled, storage.Now(now)
			out = p
			return p, nil
		})
		if err != nil {
			return err
		}
		auditErr = tx.AppendAudit(ctx, cliCaller.Event(now, out.OrgID, action, "principal:"+out.ID, "success", ""))
		return auditErr
	})
	if auditErr != nil {
		return nil, fmt.Errorf("principal %s not changed: its audit event could not be stored: %w", id, auditErr)
	}
	if err != nil {
		return nil, notFound(err, "principal")
	}
	return api.PrincipalToProto(out), nil
}

func (d *directPrincipals) delete(ctx context.Context, id string) error {
	p, err := d.a.store.GetPrincipal(ctx, id)
	if err != nil {
		return notFound(err, "principal")
	}
	pats, err := d.a.patService(ctx)
	if err != nil {
		return err
	}
	return api.DeletePrincipal(ctx, d.a.store, pats, cliCaller, p, time.Now())
}

func (d *directPrincipals) exchangeToken(ctx context.Context, id string, validFor time.Duration) (string, time.Time, error) {
	pats, err := d.a.patService(ctx)
	if err != nil {
		return "", time.Time{}, err
	}
	// The operator's token: no credential made it, so it derives from
	// nothing but its principal (docs/security.md A-50).
	t, secret, err := pats.CreateExchangeToken(ctx, cliCaller, id, validFor, pat.ExchangeSource{})
	return secret, t.ExpiresAt, err
}

// resolvePrincipal returns the principal ref names: an ID, or a name
// unique across the organizations the caller sees (within org when set).
func resolvePrincipal(ctx context.Context, a *admin, ref, org string) (*stsv1.Principal, error) {
	if ref == "" {
		return nil, usageError{errors.New("a principal (ID or name) is required")}
	}
	ps := a.principals()
	if p, err := ps.get(ctx, ref); err == nil {
		return p, nil
	} else if !isNotFound(err) {
		return nil, err
	}
	var orgs []*stsv1.Organization
	if org != "" {
		o, err := resolveOrg(ctx, a.orgs(), org)
		if err != nil {
			return nil, err
		}
		orgs = []*stsv1.Organization{o}
	} else {
		var err error
		if orgs, err = a.orgs().list(ctx); err != nil {
			return nil, err
		}
	}
	var found []*stsv1.Principal
	for _, o := range orgs {
		list, err := ps.list(ctx, o.GetId())
		if err != nil {
			return nil, err
		}
		for _, p := range list {
			if p.GetName() == ref {
				found = append(found, p)
			}
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("no principal %q", ref)
	case 1:
		return found[0], nil
	}
	return nil, fmt.Errorf("%d principals are named %q; pass an ID or --org", len(found), ref)
}

// newPrincipalCmd is "sts principal"; "sts user" is the same command.
func newPrincipalCmd() *cobra.Command {
	cmd := adminNoun(&cobra.Command{Use: "principal", Aliases: []string{"user"}, Short: "Manage principals: users, service accounts, runners, …"})
	var org, kind, name, email, pubKey string
	create := &cobra.Command{
		Use:     "create --org ORG --name NAME [--kind KIND]",
		Short:   "Create a principal and print its ID",
		Example: `  sts principal create --org acme --kind user --name ada --email ada@example.com`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, ok := enumFromWord(stsv1.PrincipalKind(0).Descriptor(), kind)
			if !ok {
				return usageError{fmt.Errorf("--kind %q: want user, service-account, runner, environment, account or runner-manager", kind)}
			}
			req := &stsv1.CreatePrincipalRequest{Kind: stsv1.PrincipalKind(k), Name: name, Email: email}
			if pubKey != "" {
				if req.Kind != stsv1.PrincipalKind_PRINCIPAL_KIND_RUNNER {
					return usageError{errors.New("--public-key is only for --kind runner")}
				}
				var err error
				if req.RunnerPublicKey, err = decodePublicKey(pubKey); err != nil {
					return err
				}
			}
			return runAdmin(cmd, func(ctx context.Context, a *admin) error {
				o, err := resolveOrg(ctx, a.orgs(), org)
				if err != nil {
					return err
				}
				req.OrganizationId = o.GetId()
				p, err := a.principals().create(ctx, req)
				if err != nil {
					return err
				}
				return printPrincipals(cmd, []*stsv1.Principal{p}, true, true)
			})
		},
	}
	create.Flags().StringVar(&org, "org", "", "organization ID or name (required)")
	create.Flags().StringVar(&kind, "kind", "user", "user, service-account, runner, environment, account or runner-manager")
	create.Flags().StringVar(&name, "name", "", "name (required)")
	create.Flags().StringVar(&email, "email", "", "email")
	create.Flags().StringVar(&pubKey, "public-key", "", "runners: X25519 public key (base64) host-token values are sealed to (see sts runner)")
	_ = create.MarkFlagRequired("org")
	_ = create.MarkFlagRequired("name")
	var listOrg string
	list := &cobra.Command{
		Use:   "list --org ORG",
		Short: "List the principals of an organization",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAdmin(cmd, func(ctx context.Context, a *admin) error {
				o, err := resolveOrg(ctx, a.orgs(), listOrg)
				if err != nil {
					return err
				}
				ps, err := a.principals().list(ctx, o.GetId())
				if err != nil {
					return err
				}
				return printPrincipals(cmd, ps, false, false)
			})
		},
	}
	list.Flags().StringVar(&listOrg, "org", "", "organization ID or name (required)")
	_ = list.MarkFlagRequired("org")
	var showOrg string
	show := &cobra.Command{
		Use:   "show ID|NAME [--org ORG]",
		Short: "Show a principal",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAdmin(cmd, func(ctx context.Context, a *admin) error {
				p, err := resolvePrincipal(ctx, a, args[0], showOrg)
				if err != nil {
					return err
				}
				return printPrincipals(cmd, []*stsv1.Principal{p}, true, false)
			})
		},
	}
	show.Flags().StringVar(&showOrg, "org", "", "organization ID or name, to disambiguate a name")
	grant := &cobra.Command{
		Use:   "grant-instance-admin PRINCIPAL_ID",
		Short: "Make a principal an instance administrator (database only: no API call sets the role)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withDirectStore(cmd, func(ctx context.Context, store *sqlstore.Store) error {
				return app.SetInstanceAdmin(ctx, store, cliCaller, args[0], true)
			})
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke-instance-admin PRINCIPAL_ID",
		Short: "Take the instance administrator role from a principal (database only)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withDirectStore(cmd, func(ctx context.Context, store *sqlstore.Store) error {
				return app.SetInstanceAdmin(ctx, store, cliCaller, args[0], false)
			})
		},
	}
	cmd.AddCommand(create, list, show, principalStateCmd("disable"), principalStateCmd("enable"), principalStateCmd("delete"), grant, revoke)
	return cmd
}

// principalStateCmd is `sts principal disable|enable|delete ID|NAME`.
func principalStateCmd(verb string) *cobra.Command {
	short := map[string]string{
		"disable": "Disable a principal: its PATs and tokens stop authenticating, its browser sessions end",
		"enable":  "Re-enable a disabled principal",
		"delete":  "Delete a principal: disabled, its access tokens revoked, its PATs deleted",
	}[verb]
	var org string
	cmd := &cobra.Command{
		Use:   verb + " ID|NAME [--org ORG]",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAdmin(cmd, func(ctx context.Context, a *admin) error {
				p, err := resolvePrincipal(ctx, a, args[0], org)
				if err != nil {
					return err
				}
				if verb == "delete" {
					if err := a.principals().delete(ctx, p.GetId()); err != nil {
						return err
					}
					fmt.Fprintf(cmd.ErrOrStderr(), "deleted principal %s\n", printable(p.GetId()))
					return nil
				}
				if p, err = a.principals().setDisabled(ctx, p.GetId(), verb == "disable"); err != nil {
					return err
				}
				return printPrincipals(cmd, []*stsv1.Principal{p}, true, false)
			})
		},
	}
	cmd.Flags().StringVar(&org, "org", "", "organization ID or name, to disambiguate a name")
	return cmd
}

// withDirectStore runs fn on the database; these commands have no API
// call and refuse --server.
func withDirectStore(cmd *cobra.Command, fn func(ctx context.Context, store *sqlstore.Store) error) error {
	if cmd.Flags().Changed("server") { // STS_SERVER alone does not stop a database-only command
		return usageError{fmt.Errorf("%s works on the database only (no API call does it): run it without --server", cmd.CommandPath())}
	}
	return withStore(cmd, func(ctx context.Context, _ config.Config, store *sqlstore.Store) error { return fn(ctx, store) })
}

// printPrincipals prints principals: JSON, or a table (idOnly: the ID
// alone, the text output of create).
func printPrincipals(cmd *cobra.Command, list []*stsv1.Principal, one, idOnly bool) error {
	if j, _ := outputJSON(cmd); j {
		return printObjects(cmd.OutOrStdout(), list, one)
	}
	if idOnly {
		fmt.Fprintln(cmd.OutOrStdout(), printable(list[0].GetId()))
		return nil
	}
	w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tKIND\tNAME\tEMAIL\tDISABLED\tINSTANCE_ADMIN")
	for _, p := range list {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%t\t%t\n", printable(p.GetId()), enumWord(p.GetKind()), printable(p.GetName()), printable(p.GetEmail()), p.GetDisabled(), p.GetInstanceAdmin())
	}
	return w.Flush()
}
