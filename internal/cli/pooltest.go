package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/opensts/sts/internal/app"
	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/federation"
	"github.com/opensts/sts/internal/policy"
	"github.com/opensts/sts/internal/pools"
)

// errDenied makes `sts pool test` exit 1 after printing its trace.
var errDenied = errors.New("denied")

func newPoolTestCmd() *cobra.Command {
	var pool, provider, tokenFile, client string
	var audiences, resources, scopes []string
	cmd := &cobra.Command{
		Use:   "test --pool POOL --token FILE [--audience AUD] [--resource URI] [--scope S] [--client ID]",
		Short: "Evaluate a subject token against a pool, step by step, without minting",
		Long: `Verify a subject token the way an exchange would (signature with the provider's
keys, fetched over the network as serve does; issuer, audience and times) and
run the pool's CEL condition, identity and mapping, printing each step and the
stable reason of a denial. The condition judges what the exchange would
issue (the "request" line): with no --scope, the pool's scopes (without
offline_access, within --client's scopes); with --scope naming Google's
default scope alone, the pool's google_default_scopes; the audience is
--audience and --resource, or with neither the default audience (the
issuer); request.resource and request.client_id are --resource and
--client, as the exchange's resource and client_id parameters. --client
must name a client of the pool's organization. Targets are judged as the
token endpoint judges them (a resource is an absolute URI, at most 10
audiences and resources: else DENIED target_invalid), and an --audience
naming one of the pool's providers (pools/POOL/providers/PROVIDER, or
Google's full resource name) is read as Google's /v1/token reads it.
Nothing is minted and nothing is written. A pool
declared in the configuration file (--config, ./sts.yaml) is evaluated as the
file declares it, with no server and no database needed; any other pool is
read from storage. Exits 0
when the exchange would be allowed by the pool, 1 otherwise. The API's
sts.v1.PoolService/TestPool runs the same evaluation.`,
		Example: `  sts pool test --pool ci --token token.jwt --audience https://api.example.com
  sts pool test --pool ci --token token.jwt --resource https://api.example.com/ --client 6f1c2a5e-8d7b-4c3a-9e2f-1a2b3c4d5e6f
  echo "$ACTIONS_ID_TOKEN" | sts pool test --pool ci --token -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			raw, err := readToken(cmd.InOrStdin(), tokenFile)
			if err != nil {
				return err
			}
			return withTestPools(cmd, pool, func(ctx context.Context, svc *pools.Service) error {
				return testPool(ctx, cmd.OutOrStdout(), svc, pools.TestInput{
					PoolID: pool, ProviderID: provider, SubjectToken: raw,
					Request: policy.Request{Audiences: audiences, Resources: resources, Scopes: scopes, ClientID: client},
				})
			})
		},
	}
	cmd.Flags().StringVar(&pool, "pool", "", "pool ID (required)")
	cmd.Flags().StringVar(&tokenFile, "token", "", "file holding the subject token, - for standard input (required)")
	cmd.Flags().StringVar(&provider, "provider", "", "provider ID (default: the provider whose issuer matches the token)")
	cmd.Flags().StringSliceVar(&audiences, "audience", nil, "requested audience, as the exchange's audience parameter; request.audience is it, or the issuer when none is given")
	cmd.Flags().StringSliceVar(&resources, "resource", nil, "requested resource, as the exchange's resource parameter (RFC 8707); request.resource is it, and it joins request.audience")
	cmd.Flags().StringVar(&client, "client", "", "client ID, as the exchange's client_id, judged as the exchange judges it: request.client_id is it and the default scopes are within its scopes (a public client: an anonymous caller, neither)")
	scopesVar(cmd.Flags(), &scopes, "scope", "requested scope; request.scope is it, or the pool's default when none is given")
	_ = cmd.MarkFlagRequired("pool")
	_ = cmd.MarkFlagRequired("token")
	return cmd
}

// withTestPools runs fn with a pool service over the configuration's trust
// records when it declares pool (an in-memory copy: data_dir is not
// touched), else over storage.
func withTestPools(cmd *cobra.Command, pool string, fn func(ctx context.Context, svc *pools.Service) error) error {
	cfg, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(cfg.Pools, func(p config.PoolConfig) bool { return p.ID == pool }) {
		return withPools(cmd, fn)
	}
	ctx := cmd.Context()
	store, err := app.ConfigTrustStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	svc, err := pools.NewService(store, app.PoolLimits(cfg))
	if err != nil {
		return err
	}
	svc.Logger = slog.New(slog.DiscardHandler)
	return fn(ctx, svc)
}

func readToken(stdin io.Reader, name string) (string, error) {
	var data []byte
	var err error
	if name == "-" {
		data, err = io.ReadAll(io.LimitReader(stdin, federation.DefaultMaxTokenSize+1))
	} else {
		data, err = os.ReadFile(name)
	}
	if err != nil {
		return "", fmt.Errorf("--token: %w", err)
	}
	return strings.TrimSpace(string(data)), nil
}

// testPool runs the shared dry run (the one sts.v1.PoolService/TestPool
// runs) and prints its trace, one step a line; a denial is errDenied.
func testPool(ctx context.Context, w io.Writer, svc *pools.Service, in pools.TestInput) error {
	res, err := svc.TestPool(ctx, in)
	if err != nil {
		return err
	}
	for _, st := range res.Steps {
		outcome, detail := "ok", st.Detail
		if !st.OK {
			outcome = "FAIL"
		}
		if st.CEL {
			detail = st.Expression + " => " + st.Detail
		}
		fmt.Fprintf(w, "%-15s %-6s %s\n", st.Name, outcome, detail)
	}
	if !res.Allowed {
		fmt.Fprintf(w, "result          DENIED reason %s\n", res.Reason)
		return fmt.Errorf("%w: %s", errDenied, res.Reason)
	}
	fmt.Fprintf(w, "result          ALLOWED subject %q", res.Subject)
	if len(res.Groups) > 0 {
		fmt.Fprintf(w, ", groups %q", res.Groups)
	}
	if len(res.Attributes) > 0 {
		fmt.Fprintf(w, ", attributes %v", res.Attributes)
	}
	fmt.Fprintln(w, " (nothing minted)")
	return nil
}
