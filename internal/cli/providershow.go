package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/opensts/sts/internal/storage"
)

func newProviderListCmd() *cobra.Command {
	var pool string
	cmd := &cobra.Command{
		Use:   "list [--pool POOL]",
		Short: "List providers, of one pool or of all",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withPoolAdmin(cmd, func(ctx context.Context, svc poolAdmin) error {
				providers, err := svc.ListProviders(ctx, pool)
				if err != nil {
					return err
				}
				if j, _ := outputJSON(cmd); j {
					return printProvidersJSON(cmd, providers, false)
				}
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "POOL\tID\tSTATE\tISSUER\tAUDIENCES\tKEYS")
				for _, p := range providers {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", printable(p.PoolID), printable(p.ID), state(p.Disabled), printable(p.Issuer),
						printable(strings.Join(p.Audiences, ",")), keySource(p))
				}
				return w.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&pool, "pool", "", "only this pool's providers")
	return cmd
}

func keySource(p storage.Provider) string {
	switch {
	case len(p.JWKS) > 0 && p.JWKSURI != "":
		return "uploaded+jwks_uri"
	case len(p.JWKS) > 0:
		return "uploaded"
	case p.JWKSURI != "":
		return "jwks_uri"
	}
	return "discovery"
}

func newProviderShowCmd() *cobra.Command {
	var f providerFlags
	cmd := &cobra.Command{
		Use:   "show ID --pool POOL",
		Short: "Show a provider as YAML",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withPoolAdmin(cmd, func(ctx context.Context, svc poolAdmin) error {
				p, err := svc.GetProvider(ctx, f.pool, args[0])
				if err != nil {
					return err
				}
				if j, _ := outputJSON(cmd); j {
					return printProvidersJSON(cmd, []storage.Provider{p}, true)
				}
				doc, body := newOrdered(), providerDoc(p)
				doc.set("pool", p.PoolID)
				for _, k := range body.keys {
					doc.set(k, body.vals[k])
				}
				return writeYAML(cmd, doc)
			})
		},
	}
	f.bindPool(cmd)
	return cmd
}
