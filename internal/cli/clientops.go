package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/opensts/sts/internal/clients"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/tokens"
)

func clientRotateCmd() *cobra.Command {
	return &cobra.Command{Use: "rotate-secret ID", Short: "Replace a client's secret; the new one is printed once", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClients(cmd, func(ctx context.Context, _ *sqlstore.Store, svc *clients.Service) error {
				// One update: the old secret stops working at the same
				// commit (docs/security.md D-03).
				_, sec, err := svc.RotateSecret(ctx, cliCaller, args[0])
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "client_secret: %s\n(shown once; the previous secret no longer works)\n", sec)
				return nil
			})
		}}
}

// clientEnableCmd is `sts client disable ID` or, with enable, `sts client
// enable ID`.
func clientEnableCmd(enable bool) *cobra.Command {
	use, short := "disable ID", "Disable a client (refused at once here; running servers refuse it within 5 s)"
	if enable {
		use, short = "enable ID", "Re-enable a disabled client"
	}
	return &cobra.Command{Use: use, Short: short, Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClients(cmd, func(ctx context.Context, _ *sqlstore.Store, svc *clients.Service) error {
				disabled := !enable
				_, err := svc.Update(ctx, cliCaller, args[0], clients.UpdateInput{Disabled: &disabled})
				return err
			})
		}}
}

// clientUpdateCmd is `sts client update ID`: the flags given replace the
// client's values (a list flag given empty, e.g. --scope=, clears it);
// the others stay.
func clientUpdateCmd() *cobra.Command {
	var name, jwksFile, jwksURI string
	var grants, pools, auds, scopes, redirects []string
	cmd := &cobra.Command{Use: "update ID", Short: "Change a client's name, grant types, pools, audiences, scopes, redirect URIs or keys", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			set := cmd.Flags().Changed
			var in clients.UpdateInput
			if set("name") {
				in.Name = &name
			}
			list := func(flag string, v *[]string) *[]string {
				if set(flag) {
					return v
				}
				return nil
			}
			in.GrantTypes, in.Pools, in.Audiences, in.Scopes = list("grant-type", &grants), list("pool", &pools), list("audience", &auds), list("scope", &scopes)
			in.RedirectURIs = list("redirect-uri", &redirects)
			return withClients(cmd, func(ctx context.Context, _ *sqlstore.Store, svc *clients.Service) error {
				if set("jwks-file") || set("jwks-uri") {
					in.Keys = &clients.Keys{JWKSURI: jwksURI}
					if jwksFile != "" {
						var err error
						if in.Keys.JWKS, err = readJWKSFile(jwksFile); err != nil {
							return err
						}
					}
				}
				c, err := svc.Update(ctx, cliCaller, args[0], in)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "updated client %s\n", c.ID)
				return nil
			})
		}}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "display name")
	f.StringVar(&jwksFile, "jwks-file", "", "new public JWKS (private_key_jwt; replaces the JWKS URI)")
	f.StringVar(&jwksURI, "jwks-uri", "", "new JWKS URI (private_key_jwt; replaces the JWKS)")
	f.StringSliceVar(&grants, "grant-type", nil, "grant types the client may use (replaces)")
	f.StringSliceVar(&pools, "pool", nil, "pools the client may exchange against (replaces)")
	f.StringSliceVar(&auds, "audience", nil, "audiences the client may obtain (replaces)")
	f.StringSliceVar(&scopes, "scope", nil, "scopes the client may obtain (replaces)")
	f.StringSliceVar(&redirects, "redirect-uri", nil, "exact redirect URIs of the authorization_code grant (replaces)")
	return cmd
}

func clientDeleteCmd() *cobra.Command {
	return &cobra.Command{Use: "delete ID", Short: "Delete a client", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClients(cmd, func(ctx context.Context, _ *sqlstore.Store, svc *clients.Service) error {
				return svc.Delete(ctx, cliCaller, args[0])
			})
		}}
}

// newRevokeCmd is `sts revoke subject --subject S --before T`: every token
// of S issued at or before T stops verifying at once (docs/security.md D-04, "revoke-all-issued-before-T").
func newRevokeCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "revoke", Short: "Revoke tokens"}
	var subject, before string
	var keep time.Duration
	sub := &cobra.Command{Use: "subject", Short: "Revoke every token of a subject issued before a time", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t := time.Now()
			if before != "" {
				var err error
				if t, err = time.Parse(time.RFC3339, before); err != nil {
					return fmt.Errorf("--before: %w", err)
				}
			}
			return withClientStore(cmd, func(ctx context.Context, store *sqlstore.Store, _ []byte) error {
				if err := revokeSubject(ctx, store, subject, t, keep, time.Now()); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "revoked tokens of %s issued at or before %s\n", subject, t.UTC().Format(time.RFC3339))
				return nil
			})
		}}
	sub.Flags().StringVar(&subject, "subject", "", "the sub of the tokens (required)")
	sub.Flags().StringVar(&before, "before", "", "RFC 3339 time; default now")
	sub.Flags().DurationVar(&keep, "keep", tokens.DefaultMaxLifetime+tokens.DefaultLeeway, "how long the revocation is kept (≥ the longest token lifetime)")
	cmd.AddCommand(sub)
	return cmd
}

// subjectRevoker is what revoking a subject writes: the "sub:" revocation
// of its access tokens and the end of its refresh-token families (a
// refresh token would otherwise mint new access tokens after the cut-off).
type subjectRevoker interface {
	storage.RevocationStore
	storage.RefreshTokenStore
}

func revokeSubject(ctx context.Context, store subjectRevoker, subject string, before time.Time, keep time.Duration, now time.Time) error {
	if subject == "" {
		return errors.New("--subject is required")
	}
	if _, err := store.RevokeRefreshSubject(ctx, subject, before); err != nil {
		return err
	}
	return store.PutRevocation(ctx, storage.Revocation{
		ID: tokens.RevocationIDSubject(subject), IssuedBefore: storage.Now(before), Reason: "cli revoke subject",
		CreatedAt: storage.Now(now), ExpiresAt: storage.Now(before.Add(keep)),
	})
}
