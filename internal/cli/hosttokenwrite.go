package cli

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/nacl/box"
	"google.golang.org/protobuf/types/known/timestamppb"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
)

func newHostTokenUpdateCmd(client htClient) *cobra.Command {
	var tokenFile, refreshFile, expires string
	var scopes []string
	cmd := &cobra.Command{
		Use: "update ID", Short: "Replace a token's value, refresh token, expiry or scopes", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			if err := oneFromStdin(tokenFile, refreshFile); err != nil {
				return err
			}
			req := &gitpodv1.UpdateHostAuthenticationTokenRequest{Id: args[0], Scopes: scopes}
			if tokenFile != "" {
				v, err := readSecret(cmd, tokenFile, "token")
				if err != nil {
					return err
				}
				req.Token = &v
			}
			if refreshFile != "" {
				v, err := readSecret(cmd, refreshFile, "refresh token")
				if err != nil {
					return err
				}
				req.RefreshToken = &v
			}
			if expires != "" {
				t, err := time.Parse(time.RFC3339Nano, expires)
				if err != nil {
					return usageError{fmt.Errorf("--expires-at: %w", err)}
				}
				req.ExpiresAt = timestamppb.New(t)
			}
			if _, err := c.rpc.UpdateHostAuthenticationToken(c.ctx(cmd), req); err != nil {
				return rpcError(err)
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "updated", args[0])
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&tokenFile, "token-file", "", "file holding the new token (- for stdin)")
	f.StringVar(&refreshFile, "refresh-token-file", "", "file holding the new refresh token (an empty file removes it)")
	f.StringVar(&expires, "expires-at", "", "new expiry, RFC 3339")
	scopesVar(f, &scopes, "scope", "replace the scopes (repeatable or comma-separated)")
	return cmd
}

func newHostTokenDeleteCmd(client htClient) *cobra.Command {
	return &cobra.Command{
		Use: "delete ID", Short: "Delete a token", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			if _, err := c.rpc.DeleteHostAuthenticationToken(c.ctx(cmd), &gitpodv1.DeleteHostAuthenticationTokenRequest{Id: args[0]}); err != nil {
				return rpcError(err)
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "deleted", args[0])
			return nil
		},
	}
}

// newHostTokenValueCmd is what a runner runs: it asks
// RunnerInteractionService for principal's token on host, authenticated
// as the runner (STS_TOKEN), and opens the sealed value with the runner's
// private key (from `sts runner keygen`). The read is audited.
func newHostTokenValueCmd(client htClient) *cobra.Command {
	var refresh bool
	var runner, principal, host, privFile string
	cmd := &cobra.Command{
		Use:   "value",
		Short: "As a runner: fetch a token sealed to the runner's key and print it (audited)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pub, priv, err := readPrivateKey(privFile)
			if err != nil {
				return err
			}
			c, err := client(cmd)
			if err != nil {
				return err
			}
			res, err := c.ri.GetHostAuthenticationTokenValue(c.ctx(cmd), &gitpodv1.GetHostAuthenticationTokenValueRequest{
				RunnerId: runner, PrincipalId: principal, Host: host})
			if err != nil {
				return rpcError(err)
			}
			sealed := res.GetValue()
			if refresh {
				sealed = res.GetRefreshToken()
				if len(sealed) == 0 {
					return errors.New("the token has no refresh token")
				}
			}
			plain, ok := box.OpenAnonymous(nil, sealed, pub, priv)
			if !ok {
				return errors.New("the value does not open with this private key (was the runner's key rotated?)")
			}
			fmt.Fprintln(cmd.OutOrStdout(), string(plain))
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&refresh, "refresh-token", false, "print the refresh token instead")
	f.StringVar(&runner, "runner", "", "the runner's ID: the principal STS_TOKEN belongs to (required)")
	f.StringVar(&principal, "principal", "", "the subject's ID (required)")
	f.StringVar(&host, "host", "", "the SCM host, e.g. github.com (required)")
	f.StringVar(&privFile, "private-key-file", "", "the runner's private key, from sts runner keygen (required)")
	for _, n := range []string{"runner", "principal", "host", "private-key-file"} {
		_ = cmd.MarkFlagRequired(n)
	}
	return cmd
}

// readPrivateKey reads a base64 X25519 private key and derives its public key.
func readPrivateKey(path string) (pub, priv *[32]byte, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("--private-key-file: %w", err)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(raw) != 32 {
		return nil, nil, usageError{errors.New("--private-key-file must hold a base64 32-byte X25519 private key")}
	}
	priv, pub = new([32]byte), new([32]byte)
	copy(priv[:], raw)
	p, err := curve25519.X25519(priv[:], curve25519.Basepoint)
	if err != nil {
		return nil, nil, usageError{fmt.Errorf("--private-key-file: %w", err)}
	}
	copy(pub[:], p)
	return pub, priv, nil
}

func newHostTokenMetadataCmd(client htClient) *cobra.Command {
	var runner, external string
	cmd := &cobra.Command{
		Use: "set-metadata ID", Short: "As the token's runner: record the SCM account (external user ID) of a token", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			if _, err := c.rpc.UpdateHostAuthenticationTokenMetadata(c.ctx(cmd), &gitpodv1.UpdateHostAuthenticationTokenMetadataRequest{
				RunnerId: runner, Id: args[0], ExternalUserId: &external}); err != nil {
				return rpcError(err)
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "updated", args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&runner, "runner", "", "the token's runner ID (required)")
	cmd.Flags().StringVar(&external, "external-user-id", "", "the account at the SCM host (empty clears it)")
	_ = cmd.MarkFlagRequired("runner")
	return cmd
}
