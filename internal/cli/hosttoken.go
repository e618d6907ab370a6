package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
	"github.com/opensts/sts/internal/hosttoken"
	"github.com/opensts/sts/internal/seal"
	"github.com/opensts/sts/internal/storage"
)

// resealHostTokens re-wraps every host token's data key under kr's primary
// master key; `sts keys rotate-master` calls it beside pepper.Reseal.
func resealHostTokens(ctx context.Context, store storage.HostTokenStore, kr *seal.Keyring) (int, error) {
	return hosttoken.Reseal(ctx, store, &seal.Envelope{Keyring: kr})
}

// hostTokenClient is the RunnerConfigurationService client of the
// host-token commands: --server (or STS_SERVER) with the bearer token in
// STS_TOKEN, so every command acts as that principal with its rights. It
// speaks through the remote admin commands' HTTP client (newRemote): the
// token, and the SCM token a create or update carries, go to that origin
// only (docs/security.md T-161).
type hostTokenClient struct {
	rpc gitpodv1connect.RunnerConfigurationServiceClient
	ri  gitpodv1connect.RunnerInteractionServiceClient
}

func newHostTokenCmd() *cobra.Command {
	var server string
	cmd := &cobra.Command{
		Use:   "host-token",
		Short: "Store and read SCM tokens for runners (RunnerConfigurationService)",
		Long: `Manage host authentication tokens through the API of a running server, as the
principal whose PAT or access token is in STS_TOKEN. Token values are read from
a file or stdin (--token-file -), never from flags. Only the runner a token
belongs to can read its value: "value" runs as the runner and opens the value,
sealed to the runner's registered public key, with its private key (see
"sts runner").`,
	}
	cmd.PersistentFlags().StringVar(&server, "server", "http://127.0.0.1:8080", "base URL of the sts server (env STS_SERVER)")
	envDefault(cmd.PersistentFlags(), "server", "STS_SERVER")
	cmd.PersistentFlags().StringP("output", "o", "table", "output format of get and list: table or json")
	addCAFlag(cmd.PersistentFlags())
	addTimeoutFlag(cmd.PersistentFlags())
	client := func(cmd *cobra.Command) (*hostTokenClient, error) {
		// --token-file of create and update is the SCM token's file: the
		// credential's file comes from STS_TOKEN_FILE alone here.
		tok, err := remoteToken(cmd, environOf(cmd).getenv("STS_TOKEN_FILE"))
		if err != nil {
			return nil, err
		}
		r, err := newRemote(cmd, strings.TrimSpace(server), tok)
		if err != nil {
			return nil, err
		}
		return &hostTokenClient{rpc: gitpodv1connect.NewRunnerConfigurationServiceClient(r.http, r.base, r.opts()...),
			ri: gitpodv1connect.NewRunnerInteractionServiceClient(r.http, r.base, r.opts()...)}, nil
	}
	cmd.AddCommand(newHostTokenCreateCmd(client), newHostTokenGetCmd(client), newHostTokenListCmd(client),
		newHostTokenUpdateCmd(client), newHostTokenDeleteCmd(client), newHostTokenValueCmd(client),
		newHostTokenMetadataCmd(client))
	return cmd
}

// ctx returns the command's context; the client's transport adds the
// bearer token for the --server origin.
func (c *hostTokenClient) ctx(cmd *cobra.Command) context.Context { return cmd.Context() }

// oneFromStdin refuses both values from standard input, which can be
// read once: the refresh token would be read as empty, which stores none
// (create) or removes the stored one (update).
func oneFromStdin(tokenFile, refreshFile string) error {
	if tokenFile == "-" && refreshFile == "-" {
		return usageError{errors.New("--token-file and --refresh-token-file cannot both read standard input (-); put one in a file")}
	}
	return nil
}

// readSecret reads a value from path ("-" is stdin), trimming one
// trailing newline; it never comes from a flag value itself.
func readSecret(cmd *cobra.Command, path, what string) (string, error) {
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), hosttoken.MaxValueLength+2))
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", what, err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// rpcError turns a Connect error into a CLI error carrying its code.
func rpcError(err error) error { return apiError(err) }
