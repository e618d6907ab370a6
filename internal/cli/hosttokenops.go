package cli

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
)

type htClient = func(cmd *cobra.Command) (*hostTokenClient, error)

func newHostTokenCreateCmd(client htClient) *cobra.Command {
	var runner, subject, host, tokenFile, refreshFile, source, integration, expires string
	var scopes []string
	cmd := &cobra.Command{
		Use:   "create --runner ID --subject ID --host HOST --token-file FILE|-",
		Short: "Store a token for a runner and a subject",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			if tokenFile == "" {
				return usageError{errors.New("--token-file is required (use - for stdin)")}
			}
			if err := oneFromStdin(tokenFile, refreshFile); err != nil {
				return err
			}
			req := &gitpodv1.CreateHostAuthenticationTokenRequest{RunnerId: runner, Host: host, IntegrationId: integration,
				Scopes: scopes, Subject: &gitpodv1.Subject{Id: subject}}
			if req.Token, err = readSecret(cmd, tokenFile, "token"); err != nil {
				return err
			}
			if refreshFile != "" {
				if req.RefreshToken, err = readSecret(cmd, refreshFile, "refresh token"); err != nil {
					return err
				}
			}
			v, ok := gitpodv1.HostAuthenticationTokenSource_value["HOST_AUTHENTICATION_TOKEN_SOURCE_"+strings.ToUpper(source)]
			if !ok {
				return usageError{fmt.Errorf("--source %q: want oauth or pat", source)}
			}
			req.Source = gitpodv1.HostAuthenticationTokenSource(v)
			if expires != "" {
				t, err := time.Parse(time.RFC3339Nano, expires)
				if err != nil {
					return usageError{fmt.Errorf("--expires-at: %w", err)}
				}
				req.ExpiresAt = timestamppb.New(t)
			}
			res, err := c.rpc.CreateHostAuthenticationToken(c.ctx(cmd), req)
			if err != nil {
				return rpcError(err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), printable(res.GetToken().GetId()))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&runner, "runner", "", "runner principal ID")
	f.StringVar(&subject, "subject", "", "subject principal ID (default: the caller)")
	f.StringVar(&host, "host", "", "SCM host, e.g. github.com")
	f.StringVar(&tokenFile, "token-file", "", "file holding the token (- for stdin)")
	f.StringVar(&refreshFile, "refresh-token-file", "", "file holding the refresh token")
	f.StringVar(&source, "source", "oauth", "oauth or pat")
	f.StringVar(&integration, "integration", "", "integration ID (UUID) that refreshes the token")
	f.StringVar(&expires, "expires-at", "", "expiry, RFC 3339")
	scopesVar(f, &scopes, "scope", "token scope (repeatable or comma-separated)")
	return cmd
}

func newHostTokenGetCmd(client htClient) *cobra.Command {
	return &cobra.Command{
		Use: "get ID", Short: "Show a token's metadata (never its value)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			res, err := c.rpc.GetHostAuthenticationToken(c.ctx(cmd), &gitpodv1.GetHostAuthenticationTokenRequest{Id: args[0]})
			if err != nil {
				return rpcError(err)
			}
			if j, err := outputJSON(cmd); err != nil || j {
				if err != nil {
					return err
				}
				return printObjects(cmd.OutOrStdout(), []*gitpodv1.HostAuthenticationToken{res.GetToken()}, true)
			}
			printHostTokens(cmd, res.GetToken())
			return nil
		},
	}
}

func newHostTokenListCmd(client htClient) *cobra.Command {
	var runner, subject string
	cmd := &cobra.Command{
		Use: "list", Short: "List the tokens the caller may act on", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			f := &gitpodv1.ListHostAuthenticationTokensRequest_Filter{}
			if runner != "" {
				f.RunnerId = &runner
			}
			if subject != "" {
				f.SubjectId = &subject
			}
			var all []*gitpodv1.HostAuthenticationToken
			for page := ""; ; {
				res, err := c.rpc.ListHostAuthenticationTokens(c.ctx(cmd), &gitpodv1.ListHostAuthenticationTokensRequest{
					Filter: f, Pagination: &gitpodv1.PaginationRequest{Token: page, PageSize: 100}})
				if err != nil {
					return rpcError(err)
				}
				all = append(all, res.GetTokens()...)
				if page = res.GetPagination().GetNextToken(); page == "" {
					break
				}
			}
			if j, err := outputJSON(cmd); err != nil || j {
				if err != nil {
					return err
				}
				return printObjects(cmd.OutOrStdout(), all, false)
			}
			printHostTokens(cmd, all...)
			return nil
		},
	}
	cmd.Flags().StringVar(&runner, "runner", "", "only this runner's tokens")
	cmd.Flags().StringVar(&subject, "subject", "", "only this subject's tokens")
	return cmd
}

func printHostTokens(cmd *cobra.Command, list ...*gitpodv1.HostAuthenticationToken) {
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tHOST\tRUNNER\tSUBJECT\tSOURCE\tEXPIRES\tREFRESH")
	for _, t := range list {
		exp, refresh := "never", "-"
		if t.GetExpiresAt() != nil {
			exp = t.GetExpiresAt().AsTime().Format(time.RFC3339)
		}
		if r := t.GetRefresh(); r != nil {
			refresh = "ok"
			if r.GetLastError() != "" {
				refresh = fmt.Sprintf("failing (%d): %s", r.GetConsecutiveFailures(), printable(r.GetLastError()))
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", printable(t.GetId()), printable(t.GetHost()), printable(t.GetRunnerId()), printable(subjectWord(t.GetSubject())),
			sourceWord(t.GetSource()), exp, refresh)
	}
	tw.Flush()
}

// sourceWord prints a source as a word: oauth, pat or "-".
func sourceWord(s gitpodv1.HostAuthenticationTokenSource) string {
	w, ok := strings.CutPrefix(s.String(), "HOST_AUTHENTICATION_TOKEN_SOURCE_")
	if !ok || s == gitpodv1.HostAuthenticationTokenSource_HOST_AUTHENTICATION_TOKEN_SOURCE_UNSPECIFIED {
		return "-"
	}
	return strings.ToLower(w)
}

// subjectWord prints a subject as "<id> (user)", "<id> (runner)", ….
func subjectWord(s *gitpodv1.Subject) string {
	k, ok := strings.CutPrefix(s.GetPrincipal().String(), "PRINCIPAL_")
	if !ok || s.GetPrincipal() == gitpodv1.Principal_PRINCIPAL_UNSPECIFIED {
		return s.GetId()
	}
	return s.GetId() + " (" + strings.ToLower(strings.ReplaceAll(k, "_", "-")) + ")"
}
