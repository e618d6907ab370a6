package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
)

func newHostTokenUpdateCmd(client htClient) *cobra.Command {
	var tokenFile, refreshFile, expires string
	var scopes []string
	cmd := &cobra.Command{
		Use: "update ID", Short: "Replace a token's value, refresh token, expiry or scopes", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
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
			fmt.Fprintln(cmd.OutOrStdout(), "updated", args[0])
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&tokenFile, "token-file", "", "file holding the new token (- for stdin)")
	f.StringVar(&refreshFile, "refresh-token-file", "", "file holding the new refresh token (an empty file removes it)")
	f.StringVar(&expires, "expires-at", "", "new expiry, RFC 3339")
	f.StringArrayVar(&scopes, "scope", nil, "replace the scopes (repeatable)")
	return cmd
}

func newHostTokenDeleteCmd(client htClient) *cobra.Command {
	return &cobra.Command{
		Use: "delete ID", Short: "Delete a token", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			if _, err := c.rpc.DeleteHostAuthenticationToken(c.ctx(cmd), &gitpodv1.DeleteHostAuthenticationTokenRequest{Id: args[0]}); err != nil {
				return rpcError(err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "deleted", args[0])
			return nil
		},
	}
}

func newHostTokenValueCmd(client htClient) *cobra.Command {
	var refresh bool
	cmd := &cobra.Command{
		Use: "value ID", Short: "Print a token's value (audited)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			res, err := c.rpc.GetHostAuthenticationTokenValue(c.ctx(cmd), &gitpodv1.GetHostAuthenticationTokenValueRequest{Id: args[0]})
			if err != nil {
				return rpcError(err)
			}
			v := res.GetValue()
			if refresh {
				v = res.GetRefreshToken()
			}
			fmt.Fprintln(cmd.OutOrStdout(), v)
			return nil
		},
	}
	cmd.Flags().BoolVar(&refresh, "refresh-token", false, "print the refresh token instead")
	return cmd
}
