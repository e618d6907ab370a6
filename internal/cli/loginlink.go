package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/opensts/sts/internal/web"
)

func newLoginLinkCmd() *cobra.Command {
	var user, org, returnTo string
	var validFor time.Duration
	cmd := &cobra.Command{
		Use:   "login-link",
		Short: "Print a one-time link that signs a person in to the web pages (directly in storage)",
		Long: `Print a link that signs the user in to the sts web pages (/tokens, or the
local path --return-to names) once, within at most 5 minutes. Open it in a browser. The secret is in the link's
fragment (after #), which browsers never send to a server or proxy log.
Opened from another web site, or in a browser where someone else is signed
in, the page asks for a click before it signs in.`,
		Example: `  sts login-link --user admin`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Checked first: a refused path stores no link.
			if err := web.CheckLocalPath(returnTo); returnTo != "" && err != nil {
				return usageError{fmt.Errorf("--return-to %q: %w", returnTo, err)}
			}
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			store, err := openStore(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer store.Close()
			p, err := findPrincipal(cmd.Context(), store, user, org)
			if err != nil {
				return err
			}
			link, l, err := web.CreateLoginLink(cmd.Context(), store, cliCaller, cfg.Issuer, p, validFor, returnTo, time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "sign-in link for %s, usable once, expires %s:\n", p.Name, l.ExpiresAt.Format(time.RFC3339))
			fmt.Fprintln(cmd.OutOrStdout(), link)
			return nil
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "user ID or unique name (required)")
	cmd.Flags().StringVar(&org, "org", "", "organization ID or name, to disambiguate --user")
	cmd.Flags().DurationVar(&validFor, "valid-for", web.MaxLinkLifetime, "lifetime, at most 5m")
	cmd.Flags().StringVar(&returnTo, "return-to", "", "local path to land on after signing in (default /tokens); no //, backslash, dot segment, scheme or host")
	_ = cmd.MarkFlagRequired("user")
	return cmd
}
