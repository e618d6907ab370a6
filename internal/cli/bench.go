package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/opensts/sts/internal/loadgen"
)

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load-test token exchange and compare it with a bare handler",
		Long: `Measure what a token exchange costs. keygen writes an RSA key and its JWKS; a
pool whose provider has that JWKS as jwks_file trusts the key. exchange mints
distinct RS256 subject tokens with it and drives POST /oauth2/token over C
connections for D seconds, then prints req/s, latency percentiles, errors and
the server's CPU time per request. bare-server answers the same requests with
the least a token service can do (verify one RS256 JWT, sign one ES256 JWT),
so running exchange against both gives the cost ratio. scripts/bench.sh runs
the whole comparison.`,
	}
	cmd.AddCommand(newBenchKeygenCmd(), newBenchExchangeCmd(), newBenchBareCmd())
	return cmd
}

func newBenchKeygenCmd() *cobra.Command {
	var key, jwks string
	cmd := &cobra.Command{
		Use:   "keygen --key FILE --jwks FILE",
		Short: "Write a benchmark RSA key and its JWKS",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := loadgen.GenerateKey(key, jwks); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s and %s (kid %s)\n", key, jwks, loadgen.KeyID)
			return nil
		},
	}
	cmd.Flags().StringVar(&key, "key", "bench-key.pem", "private key file to write")
	cmd.Flags().StringVar(&jwks, "jwks", "bench-jwks.json", "JWKS file to write (use it as the provider's jwks_file)")
	return cmd
}

func newBenchBareCmd() *cobra.Command {
	var listen, jwks, issuer, audience string
	cmd := &cobra.Command{
		Use:   "bare-server --jwks FILE",
		Short: "Serve the bare comparison handler (verify one RS256 JWT, sign one ES256 JWT)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			doc, err := os.ReadFile(jwks)
			if err != nil {
				return err
			}
			h, err := loadgen.NewBare(doc, issuer, audience)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
			go func() {
				<-cmd.Context().Done()
				_ = srv.Close()
			}()
			fmt.Fprintf(cmd.OutOrStdout(), "bare handler listening on http://%s (pid %d)\n", ln.Addr(), os.Getpid())
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:9090", "host:port to listen on")
	cmd.Flags().StringVar(&jwks, "jwks", "bench-jwks.json", "JWKS of the subject-token key")
	cmd.Flags().StringVar(&issuer, "issuer", "https://bench.sts.invalid", "iss the subject tokens carry")
	cmd.Flags().StringVar(&audience, "subject-audience", "sts", "aud the subject tokens carry")
	return cmd
}

// benchFlags are the flags of bench exchange.
type benchFlags struct {
	url, key, issuer, subjectAud, audience, pool, metrics, tokensFile string
	claims                                                            []string
	tokens, concurrency, pid                                          int
	duration, warmup                                                  time.Duration
	rate                                                              float64
}

func newBenchExchangeCmd() *cobra.Command {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "exchange --url URL --key FILE [flags]",
		Short: "Drive RFC 8693 exchanges at a token endpoint and report the cost",
		Example: `  sts bench exchange --url http://127.0.0.1:8080/oauth2/token --key bench-key.pem --pool ci \
    --claim repository_owner=acme -c 32 -d 20s --server-pid $(pgrep -n sts)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runBench(cmd.Context(), cmd.OutOrStdout(), f) },
	}
	fs := cmd.Flags()
	fs.StringVar(&f.url, "url", "http://127.0.0.1:8080/oauth2/token", "token endpoint")
	fs.StringVar(&f.key, "key", "bench-key.pem", "private key from sts bench keygen")
	fs.StringVar(&f.issuer, "issuer", "https://bench.sts.invalid", "iss of the minted subject tokens (the provider's issuer)")
	fs.StringVar(&f.subjectAud, "subject-audience", "sts", "aud of the minted subject tokens (one of the provider's audiences)")
	fs.StringVar(&f.audience, "audience", "", "audience parameter of the exchange (default: none, so the server's default audience)")
	fs.StringVar(&f.pool, "pool", "ci", "pool parameter of the exchange ('' to leave it out)")
	fs.StringArrayVar(&f.claims, "claim", nil, "NAME=VALUE string claim added to every subject token (repeatable)")
	fs.IntVar(&f.tokens, "tokens", 4096, "distinct subject tokens to pre-mint (used round-robin)")
	fs.StringVar(&f.tokensFile, "tokens-file", "", "reuse the tokens in this file (one per line), minting and writing it first if it does not exist")
	fs.IntVarP(&f.concurrency, "connections", "c", 32, "connections, one request in flight on each")
	fs.DurationVarP(&f.duration, "duration", "d", 20*time.Second, "measured run length")
	fs.DurationVar(&f.warmup, "warmup", 2*time.Second, "unmeasured run before the measurement (caches, connections)")
	fs.Float64Var(&f.rate, "rate", 0, "cap on total requests per second (0: as fast as the server answers)")
	fs.IntVar(&f.pid, "server-pid", 0, "server process to read CPU time and RSS from (/proc)")
	fs.StringVar(&f.metrics, "metrics", "", "server /metrics URL to read process_cpu_seconds_total from, when --server-pid is not given")
	return cmd
}

func runBench(ctx context.Context, w io.Writer, f benchFlags) error {
	key, err := loadgen.LoadKey(f.key)
	if err != nil {
		return err
	}
	claims := map[string]any{}
	for _, c := range f.claims {
		k, v, ok := strings.Cut(c, "=")
		if !ok {
			return usageError{fmt.Errorf("--claim %q: want NAME=VALUE", c)}
		}
		claims[k] = v
	}
	var tokens []string
	if data, err := os.ReadFile(f.tokensFile); f.tokensFile != "" && err == nil {
		tokens = strings.Fields(string(data))
		fmt.Fprintf(w, "read %d subject tokens from %s\n", len(tokens), f.tokensFile)
	} else {
		t0 := time.Now()
		if tokens, err = loadgen.Mint(key, loadgen.TokenSpec{Issuer: f.issuer, Audience: f.subjectAud, Claims: claims}, f.tokens); err != nil {
			return err
		}
		fmt.Fprintf(w, "minted %d distinct RS256 subject tokens in %s\n", len(tokens), time.Since(t0).Round(time.Millisecond))
		if f.tokensFile != "" {
			if err := os.WriteFile(f.tokensFile, []byte(strings.Join(tokens, "\n")+"\n"), 0o600); err != nil {
				return err
			}
		}
	}
	cfg := loadgen.Config{URL: f.url, Pool: f.pool, Audience: f.audience, Tokens: tokens, Concurrency: f.concurrency, Rate: f.rate}
	if f.warmup > 0 {
		cfg.Duration = f.warmup
		if _, err := loadgen.Run(ctx, cfg); err != nil {
			return err
		}
	}
	cpu := func() (time.Duration, error) {
		switch {
		case f.pid > 0:
			return loadgen.ProcCPU(f.pid)
		case f.metrics != "":
			return loadgen.MetricsCPU(ctx, f.metrics)
		}
		return 0, nil
	}
	before, err := cpu()
	if err != nil {
		return fmt.Errorf("server CPU: %w", err)
	}
	cfg.Duration = f.duration
	res, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return err
	}
	after, err := cpu()
	if err != nil {
		return fmt.Errorf("server CPU: %w", err)
	}
	printBench(w, f, res, after-before)
	if res.Errors > 0 {
		return fmt.Errorf("%d of %d requests failed; first: %s", res.Errors, res.Requests, res.FirstError)
	}
	return nil
}
