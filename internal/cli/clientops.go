package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/tokens"
)

// rotateClientSecret replaces the secret's digest in one update: the old
// secret stops working at the same commit (SECURITY.md c.1 item 3).
func rotateClientSecret(ctx context.Context, store storage.ClientStore, pepper []byte, id string, now time.Time) (string, error) {
	sec := secret.PrefixClientSecret.Generate()
	err := store.UpdateClient(ctx, id, func(c storage.Client) (storage.Client, error) {
		if c.AuthMethod != oauth2.AuthMethodClientSecretBasic && c.AuthMethod != oauth2.AuthMethodClientSecretPost {
			return c, errors.New("client does not use a secret")
		}
		c.SecretDigest, c.UpdatedAt = secret.Digest(pepper, sec), storage.Now(now)
		return c, nil
	})
	if err != nil {
		return "", err
	}
	return sec, nil
}

func clientRotateCmd() *cobra.Command {
	return &cobra.Command{Use: "rotate-secret ID", Short: "Replace a client's secret; the new one is printed once", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClientStore(cmd, func(ctx context.Context, store *sqlstore.Store, pepper []byte) error {
				sec, err := rotateClientSecret(ctx, store, pepper, args[0], time.Now())
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "client_secret: %s\n(shown once; the previous secret no longer works)\n", sec)
				return nil
			})
		}}
}

func clientDisableCmd() *cobra.Command {
	return &cobra.Command{Use: "disable ID", Short: "Disable a client (refused at once here; running servers refuse it within 5 s)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClientStore(cmd, func(ctx context.Context, store *sqlstore.Store, _ []byte) error {
				return store.UpdateClient(ctx, args[0], func(c storage.Client) (storage.Client, error) {
					c.Disabled, c.UpdatedAt = true, storage.Now(time.Now())
					return c, nil
				})
			})
		}}
}

func clientDeleteCmd() *cobra.Command {
	return &cobra.Command{Use: "delete ID", Short: "Delete a client", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClientStore(cmd, func(ctx context.Context, store *sqlstore.Store, _ []byte) error {
				return store.DeleteClient(ctx, args[0])
			})
		}}
}

// newRevokeCmd is `sts revoke subject --subject S --before T`: every token
// of S issued at or before T stops verifying at once (SECURITY.md c.1
// item 4, "revoke-all-issued-before-T").
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

func revokeSubject(ctx context.Context, store storage.RevocationStore, subject string, before time.Time, keep time.Duration, now time.Time) error {
	if subject == "" {
		return errors.New("--subject is required")
	}
	return store.PutRevocation(ctx, storage.Revocation{
		ID: tokens.RevocationIDSubject(subject), IssuedBefore: storage.Now(before), Reason: "cli revoke subject",
		CreatedAt: storage.Now(now), ExpiresAt: storage.Now(before.Add(keep)),
	})
}
