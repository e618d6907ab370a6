package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/federation"
	"github.com/opensts/sts/internal/policy"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
)

// errDenied makes `sts pool test` exit 1 after printing its trace.
var errDenied = errors.New("denied")

func newPoolTestCmd() *cobra.Command {
	var pool, provider, tokenFile string
	var audiences, scopes []string
	cmd := &cobra.Command{
		Use:   "test --pool POOL --token FILE [--audience AUD] [--scope S]",
		Short: "Evaluate a subject token against a pool, step by step, without minting",
		Long: `Verify a subject token the way an exchange would (signature with the provider's
keys, fetched over the network as serve does; issuer, audience and times) and
run the pool's CEL condition, identity and mapping, printing each step and the
stable reason of a denial. Nothing is minted and nothing is written. Exits 0
when the exchange would be allowed by the pool, 1 otherwise.`,
		Example: `  sts pool test --pool ci --token token.jwt --audience https://api.example.com
  echo "$ACTIONS_ID_TOKEN" | sts pool test --pool ci --token -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			raw, err := readToken(cmd.InOrStdin(), tokenFile)
			if err != nil {
				return err
			}
			return withStore(cmd, func(ctx context.Context, cfg config.Config, s *sqlstore.Store) error {
				req := policy.Request{Audiences: audiences, Scopes: scopes, Pool: pool, SubjectTokenType: "urn:ietf:params:oauth:token-type:jwt"}
				return testPool(ctx, cmd.OutOrStdout(), cfg, s, pool, provider, raw, req)
			})
		},
	}
	cmd.Flags().StringVar(&pool, "pool", "", "pool ID (required)")
	cmd.Flags().StringVar(&tokenFile, "token", "", "file holding the subject token, - for standard input (required)")
	cmd.Flags().StringVar(&provider, "provider", "", "provider ID (default: the provider whose issuer matches the token)")
	cmd.Flags().StringSliceVar(&audiences, "audience", nil, "requested audience, as the exchange's audience parameter (request.audience)")
	cmd.Flags().StringSliceVar(&scopes, "scope", nil, "requested scope (request.scope)")
	_ = cmd.MarkFlagRequired("pool")
	_ = cmd.MarkFlagRequired("token")
	return cmd
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

// testPool prints the trace of one evaluation of raw against pool.
func testPool(ctx context.Context, w io.Writer, cfg config.Config, s storage.Store, poolID, providerID, raw string, req policy.Request) error {
	step := func(name, outcome, detail string) { fmt.Fprintf(w, "%-15s %-6s %s\n", name, outcome, detail) }
	p, err := s.GetPool(ctx, poolID)
	if err != nil {
		return fmt.Errorf("pool %q: %w", poolID, err)
	}
	step("pool", "ok", fmt.Sprintf("%s (organization %s)", p.ID, p.OrgID))
	if p.Disabled {
		step("pool", "FAIL", "pool is disabled (reason pool_disabled)")
		return fmt.Errorf("%w: pool_disabled", errDenied)
	}
	providers, err := s.ListProviders(ctx, poolID)
	if err != nil {
		return err
	}
	prg, err := policy.Compile(p)
	if err != nil {
		return err
	}
	allowHTTP := cfg.Federation.AllowLoopback
	v := &federation.Verifier{Keys: &federation.Cache{Client: federation.NewHTTPClient(federation.ClientOptions{AllowLoopback: allowHTTP, AllowHTTP: allowHTTP})}}

	// The provider is the one named, else the one whose issuer the token
	// carries: every other provider answers issuer_mismatch before any key
	// is fetched.
	var id *federation.Identity
	var last error
	for _, pr := range providers {
		if providerID != "" && pr.ID != providerID {
			continue
		}
		id, last = v.Verify(ctx, pr, raw)
		if federation.ReasonOf(last) == federation.ReasonIssuerMismatch && providerID == "" {
			continue
		}
		req.Provider = pr.ID
		if last != nil {
			step("signature", "FAIL", fmt.Sprintf("provider %s: %v (reason %s)", pr.ID, last, federation.ReasonOf(last)))
			return fmt.Errorf("%w: %s", errDenied, federation.ReasonOf(last))
		}
		break
	}
	if id == nil {
		detail := "no provider of the pool has the token's issuer (reason issuer_unknown)"
		if last != nil && providerID == "" && len(providers) > 0 {
			detail = fmt.Sprintf("%s (reason issuer_unknown)", last)
		} else if providerID != "" {
			detail = fmt.Sprintf("provider %q is not in pool %s", providerID, poolID)
		}
		step("provider", "FAIL", detail)
		return fmt.Errorf("%w: issuer_unknown", errDenied)
	}
	step("provider", "ok", req.Provider+" ("+id.Issuer+")")
	step("signature", "ok", fmt.Sprintf("alg %s, kid %q", id.Algorithm, id.KeyID))
	step("claims", "ok", fmt.Sprintf("sub %q, aud %q, expires %s (in %s)", id.Subject, id.Audience,
		id.Expiry.UTC().Format(time.RFC3339), time.Until(id.Expiry).Round(time.Second)))

	res, err := prg.Explain(ctx, id.Claims, req)
	for _, s := range res.Trace {
		outcome := "ok"
		if s.Outcome == "false" || s.Outcome == "error" {
			outcome = "FAIL"
		}
		detail := s.Expression
		if s.Detail != "" {
			detail += " => " + s.Detail
		} else {
			detail += " => " + s.Outcome
		}
		step(s.Field, outcome, detail)
	}
	if err != nil {
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
