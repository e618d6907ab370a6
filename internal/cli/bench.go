package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/opensts/sts/internal/loadgen"
)

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load-test token exchange, introspection and client_credentials against a bare handler",
		Long: `Measure what a token exchange costs. keygen writes an RSA key and its JWKS; a
pool whose provider has that JWKS as jwks_file trusts the key. exchange mints
distinct RS256 subject tokens with it and drives POST /oauth2/token over C
connections for D seconds, then prints req/s, latency percentiles, errors and
the server's CPU time per request. bare-server answers the same requests with
the least a token service can do (verify one RS256 JWT, sign one ES256 JWT),
so running exchange against both gives the cost ratio.

introspect drives RFC 7662 introspection of our own access tokens (obtained
first with client_credentials) and client-credentials drives the grant
itself, both with HTTP Basic client authentication; bare-server --mode verify
and --mode sign are their bare counterparts (verify one ES256 JWT; check an
HTTP Basic secret and sign one). The bare handlers use the standard library
only: they are the floor of docs/performance.md.

scripts/bench.sh runs the whole comparison with wrk instead of this
generator (mint and fetch-tokens write the tokens it sends); FLOWS picks
exchange, client-credentials and introspect.`,
	}
	cmd.AddCommand(newBenchKeygenCmd(), newBenchExchangeCmd(), newBenchIntrospectCmd(), newBenchClientCredentialsCmd(), newBenchBareCmd(),
		newBenchMintCmd(), newBenchFetchTokensCmd())
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
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s and %s (kid %s)\n", key, jwks, loadgen.KeyID)
			return nil
		},
	}
	cmd.Flags().StringVar(&key, "key", "bench-key.pem", "private key file to write")
	cmd.Flags().StringVar(&jwks, "jwks", "bench-jwks.json", "JWKS file to write (use it as the provider's jwks_file)")
	return cmd
}

// newBenchMintCmd writes distinct subject tokens for an external load
// generator (scripts/bench.sh drives wrk with them): wrk cannot mint, so
// the Go side makes the distinct tokens and wrk only sends them.
func newBenchMintCmd() *cobra.Command {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "mint --key FILE --tokens-file FILE [--tokens N] [--claim NAME=VALUE]...",
		Short: "Write distinct RS256 subject tokens, one a line (0600), for an external generator",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.tokensFile == "" {
				return usageError{errors.New("--tokens-file is required")}
			}
			_ = os.Remove(f.tokensFile)
			_, err := subjectTokens(cmd.ErrOrStderr(), f)
			return err
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.key, "key", "bench-key.pem", "private key from sts bench keygen")
	fs.StringVar(&f.issuer, "issuer", "https://bench.sts.invalid", "iss of the minted subject tokens (the provider's issuer)")
	fs.StringVar(&f.subjectAud, "subject-audience", "sts", "aud of the minted subject tokens (one of the provider's audiences)")
	fs.StringArrayVar(&f.claims, "claim", nil, "NAME=VALUE string claim added to every subject token (repeatable)")
	fs.IntVar(&f.tokens, "tokens", 4096, "distinct subject tokens to mint")
	fs.StringVar(&f.tokensFile, "tokens-file", "", "file to write the tokens to, one a line")
	return cmd
}

// newBenchFetchTokensCmd writes distinct access tokens obtained with
// client_credentials, for an external generator to introspect.
func newBenchFetchTokensCmd() *cobra.Command {
	var c clientFlags
	var tokenURL, file string
	var n int
	cmd := &cobra.Command{
		Use:   "fetch-tokens --token-url URL --client-id ID --client-secret-file FILE --tokens-file FILE",
		Short: "Write distinct access tokens from client_credentials, one a line (0600), for an external generator",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usageError{errors.New("--tokens-file is required")}
			}
			sec, err := c.secret()
			if err != nil {
				return err
			}
			tokens, err := loadgen.FetchTokens(cmd.Context(), tokenURL, c.id, sec, c.scope, n)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "obtained %d distinct access tokens from %s\n", len(tokens), tokenURL)
			return writeTokens(file, tokens)
		},
	}
	c.register(cmd)
	fs := cmd.Flags()
	fs.StringVar(&tokenURL, "token-url", "http://127.0.0.1:8080/oauth2/token", "token endpoint")
	fs.IntVar(&n, "tokens", 256, "distinct access tokens to obtain")
	fs.StringVar(&file, "tokens-file", "", "file to write the tokens to, one a line")
	return cmd
}

// Modes of bench bare-server: the bare counterpart of each measured flow.
const (
	bareExchange = "exchange" // verify one RS256 JWT, sign one ES256 JWT
	bareVerify   = "verify"   // verify one ES256 JWT (introspection)
	bareSign     = "sign"     // sign one ES256 JWT (client_credentials)
)

func newBenchBareCmd() *cobra.Command {
	var listen, mode, jwks, issuer, audience string
	var client clientFlags
	cmd := &cobra.Command{
		Use:   "bare-server [--mode exchange|verify|sign] [--jwks FILE]",
		Short: "Serve a bare comparison handler (exchange, verify or sign)",
		Long: `Serve the least a token service can do for one flow (the floor), with
the standard library only (crypto/rsa, crypto/ecdsa, encoding/json,
net/http) and no policy, storage, audit, rate limits, logging or metrics:

  --mode exchange  verify one RS256 subject JWT (--jwks from bench keygen,
                   --issuer, --subject-audience) and sign one ES256 JWT
  --mode verify    verify the one ES256 JWT in the token parameter against
                   --jwks (the server's /.well-known/jwks.json) and --issuer,
                   any audience; answer as RFC 7662 introspection does
  --mode sign      check the HTTP Basic client secret (--client-id,
                   --client-secret-file: SHA-256 and a constant-time
                   compare) and sign one ES256 access JWT with a fresh key;
                   answer as a token endpoint does`,
		Example: `  sts bench bare-server --mode verify --jwks sts-jwks.json --issuer http://127.0.0.1:8080 --listen 127.0.0.1:9090`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var h http.Handler
			switch mode {
			case bareExchange, bareVerify:
				doc, err := os.ReadFile(jwks)
				if err != nil {
					return err
				}
				if mode == bareExchange {
					h, err = loadgen.NewBare(doc, issuer, audience)
				} else {
					if !cmd.Flags().Changed("issuer") {
						return usageError{errors.New("--mode verify needs --issuer (the sts server's issuer URL)")}
					}
					h, err = loadgen.NewBareVerify(doc, issuer)
				}
				if err != nil {
					return err
				}
			case bareSign:
				if client.id == "" || client.secretFile == "" {
					return usageError{errors.New("--mode sign needs --client-id and --client-secret-file")}
				}
				sec, err := client.secret()
				if err != nil {
					return err
				}
				b, err := loadgen.NewBareSign(client.id, sec)
				if err != nil {
					return err
				}
				h = b
			default:
				return usageError{fmt.Errorf("--mode %q: want exchange, verify or sign", mode)}
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
			fmt.Fprintf(cmd.OutOrStdout(), "bare %s handler listening on http://%s (pid %d)\n", mode, ln.Addr(), os.Getpid())
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:9090", "host:port to listen on")
	cmd.Flags().StringVar(&mode, "mode", bareExchange, "exchange, verify or sign")
	cmd.Flags().StringVar(&jwks, "jwks", "bench-jwks.json", "JWKS to verify with: the subject-token key (exchange) or the sts server's keys (verify)")
	cmd.Flags().StringVar(&issuer, "issuer", "https://bench.sts.invalid", "iss the verified tokens carry (required with --mode verify)")
	cmd.Flags().StringVar(&audience, "subject-audience", "sts", "aud the subject tokens carry (exchange)")
	cmd.Flags().StringVar(&client.id, "client-id", "", "client ID the sign mode accepts (HTTP Basic)")
	cmd.Flags().StringVar(&client.secretFile, "client-secret-file", "", "file holding the client secret the sign mode accepts")
	return cmd
}

// runFlags are the flags of a measured run, shared by every generator
// command.
type runFlags struct {
	url, metrics     string
	concurrency, pid int
	duration, warmup time.Duration
	rate             float64
	phases           bool
}

func (f *runFlags) register(cmd *cobra.Command, endpoint, defaultURL string) {
	fs := cmd.Flags()
	fs.StringVar(&f.url, "url", defaultURL, endpoint)
	fs.IntVarP(&f.concurrency, "connections", "c", 32, "connections, one request in flight on each")
	f.duration = 20 * time.Second
	fs.VarP((*durationValue)(&f.duration), "duration", "d", "measured run length")
	durationVar(fs, &f.warmup, "warmup", 2*time.Second, "unmeasured run before the measurement (caches, connections)")
	fs.Float64Var(&f.rate, "rate", 0, "cap on total requests per second (0: as fast as the server answers)")
	fs.BoolVar(&f.phases, "phases", false, "trace each request: report the connections opened during the run, their connect time, and the latency of requests on kept connections")
	fs.IntVar(&f.pid, "server-pid", 0, "server process to read CPU time and RSS from (/proc)")
	fs.StringVar(&f.metrics, "metrics", "", "server /metrics URL to read process_cpu_seconds_total from, when --server-pid is not given")
}

// clientFlags are the client credentials of the introspect and
// client-credentials runs. The secret is read from a file so that it
// appears in no process list or shell history, and is never printed.
type clientFlags struct {
	id, secretFile, scope string
}

func (f *clientFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.id, "client-id", "", "client ID (HTTP Basic, RFC 6749 §2.3.1)")
	fs.StringVar(&f.secretFile, "client-secret-file", "", "file holding the client secret (surrounding whitespace ignored)")
	fs.StringVar(&f.scope, "scope", "read", "scope of the client_credentials requests")
	_ = cmd.MarkFlagRequired("client-id")
	_ = cmd.MarkFlagRequired("client-secret-file")
}

// secret reads the client secret; errors name the file, never its content.
func (f *clientFlags) secret() (string, error) {
	data, err := os.ReadFile(f.secretFile)
	if err != nil {
		return "", err
	}
	sec := strings.TrimSpace(string(data))
	if sec == "" {
		return "", fmt.Errorf("%s: empty client secret", f.secretFile)
	}
	return sec, nil
}

// benchFlags are the flags of bench exchange.
type benchFlags struct {
	runFlags
	key, issuer, subjectAud, audience, pool, tokensFile string
	claims                                              []string
	tokens                                              int
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
	f.register(cmd, "token endpoint", "http://127.0.0.1:8080/oauth2/token")
	fs := cmd.Flags()
	fs.StringVar(&f.key, "key", "bench-key.pem", "private key from sts bench keygen")
	fs.StringVar(&f.issuer, "issuer", "https://bench.sts.invalid", "iss of the minted subject tokens (the provider's issuer)")
	fs.StringVar(&f.subjectAud, "subject-audience", "sts", "aud of the minted subject tokens (one of the provider's audiences)")
	fs.StringVar(&f.audience, "audience", "", "audience parameter of the exchange (default: none, so the server's default audience)")
	fs.StringVar(&f.pool, "pool", "ci", "pool parameter of the exchange ('' to leave it out)")
	fs.StringArrayVar(&f.claims, "claim", nil, "NAME=VALUE string claim added to every subject token (repeatable)")
	fs.IntVar(&f.tokens, "tokens", 4096, "distinct subject tokens to pre-mint (used round-robin)")
	fs.StringVar(&f.tokensFile, "tokens-file", "", "reuse the tokens in this file (one per line), minting and writing it first if it does not exist")
	return cmd
}

func runBench(ctx context.Context, w io.Writer, f benchFlags) error {
	tokens, err := subjectTokens(w, f)
	if err != nil {
		return err
	}
	return measure(ctx, w, f.runFlags, loadgen.Config{URL: f.url, Pool: f.pool, Audience: f.audience, Tokens: tokens})
}

// subjectTokens mints f.tokens distinct subject tokens, or reads them from
// f.tokensFile when it exists.
func subjectTokens(w io.Writer, f benchFlags) ([]string, error) {
	key, err := loadgen.LoadKey(f.key)
	if err != nil {
		return nil, err
	}
	claims := map[string]any{}
	for _, c := range f.claims {
		k, v, ok := strings.Cut(c, "=")
		if !ok {
			return nil, usageError{fmt.Errorf("--claim %q: want NAME=VALUE", c)}
		}
		claims[k] = v
	}
	return tokensFromFile(w, f.tokensFile, "subject tokens", func() ([]string, error) {
		t0 := time.Now()
		tokens, err := loadgen.Mint(key, loadgen.TokenSpec{Issuer: f.issuer, Audience: f.subjectAud, Claims: claims}, f.tokens)
		if err == nil {
			fmt.Fprintf(w, "minted %d distinct RS256 subject tokens in %s\n", len(tokens), time.Since(t0).Round(time.Millisecond))
		}
		return tokens, err
	})
}

// writeTokens writes tokens, one a line, to file with mode 0600 even when
// file exists already with another mode: os.WriteFile's mode applies only
// to a file it creates, and these are bearer credentials (docs/security.md
// T-246). They go to a new file that replaces file, never into file's
// inode: whoever opened a readable file before keeps reading the old
// content, not the tokens (T-254).
func writeTokens(file string, tokens []string) error {
	f, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // after a failure; after the rename there is none
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.WriteString(strings.Join(tokens, "\n") + "\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), file)
}

// tokensFromFile returns the tokens in file (one per line) when it exists,
// so that every target of a comparison gets the same ones; otherwise it
// makes them and, when file is set, writes them there (0600: they are
// bearer credentials) for the next run.
func tokensFromFile(w io.Writer, file, what string, produce func() ([]string, error)) ([]string, error) {
	if data, err := os.ReadFile(file); file != "" && err == nil {
		tokens := strings.Fields(string(data))
		if len(tokens) == 0 {
			return nil, fmt.Errorf("%s: no tokens", file)
		}
		fmt.Fprintf(w, "read %d %s from %s\n", len(tokens), what, file)
		return tokens, nil
	}
	tokens, err := produce()
	if err != nil {
		return nil, err
	}
	if file != "" {
		if err := writeTokens(file, tokens); err != nil {
			return nil, err
		}
	}
	return tokens, nil
}

// introspectFlags are the flags of bench introspect.
type introspectFlags struct {
	runFlags
	client               clientFlags
	tokenURL, tokensFile string
	tokens               int
}

func newBenchIntrospectCmd() *cobra.Command {
	var f introspectFlags
	cmd := &cobra.Command{
		Use:   "introspect --url URL --client-id ID --client-secret-file FILE [flags]",
		Short: "Drive RFC 7662 introspection of access tokens and report the cost",
		Long: `Obtain --tokens distinct access tokens with client_credentials from the token
endpoint next to --url (or read them from --tokens-file), then drive
POST token=<jwt> with HTTP Basic client authentication, round-robin over the
tokens. A 200 answer that does not say "active":true counts as an error.`,
		Example: `  sts bench introspect --url http://127.0.0.1:8080/oauth2/introspect --client-id ID \
    --client-secret-file secret.txt --tokens-file tokens.txt -c 32 -d 20s --server-pid $(pgrep -n sts)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBenchIntrospect(cmd.Context(), cmd.OutOrStdout(), f)
		},
	}
	f.register(cmd, "introspection endpoint", "http://127.0.0.1:8080/oauth2/introspect")
	f.client.register(cmd)
	fs := cmd.Flags()
	fs.StringVar(&f.tokenURL, "token-url", "", "token endpoint to obtain the access tokens from (default: token next to --url)")
	fs.IntVar(&f.tokens, "tokens", 256, "distinct access tokens to obtain (used round-robin)")
	fs.StringVar(&f.tokensFile, "tokens-file", "", "reuse the tokens in this file (one per line), obtaining and writing it first if it does not exist")
	return cmd
}

func runBenchIntrospect(ctx context.Context, w io.Writer, f introspectFlags) error {
	sec, err := f.client.secret()
	if err != nil {
		return err
	}
	tokenURL := f.tokenURL
	if tokenURL == "" {
		// …/oauth2/introspect → …/oauth2/token (RFC 3986 §5.2).
		u, err := url.Parse(f.url)
		if err != nil {
			return usageError{fmt.Errorf("--url: %w", err)}
		}
		tokenURL = u.ResolveReference(&url.URL{Path: "token"}).String()
	}
	tokens, err := tokensFromFile(w, f.tokensFile, "access tokens", func() ([]string, error) {
		t0 := time.Now()
		tokens, err := loadgen.FetchTokens(ctx, tokenURL, f.client.id, sec, f.client.scope, f.tokens)
		if err == nil {
			fmt.Fprintf(w, "obtained %d distinct access tokens from %s in %s\n", len(tokens), tokenURL, time.Since(t0).Round(time.Millisecond))
		}
		return tokens, err
	})
	if err != nil {
		return err
	}
	return measure(ctx, w, f.runFlags, loadgen.Config{URL: f.url, Bodies: loadgen.IntrospectBodies(tokens),
		ClientID: f.client.id, ClientSecret: sec, Expect: loadgen.ExpectActive})
}

func newBenchClientCredentialsCmd() *cobra.Command {
	var f runFlags
	var c clientFlags
	cmd := &cobra.Command{
		Use:   "client-credentials --url URL --client-id ID --client-secret-file FILE [flags]",
		Short: "Drive the client_credentials grant and report the cost",
		Long: `Drive POST grant_type=client_credentials&scope=SCOPE with HTTP Basic client
authentication. A 200 answer without "access_token" counts as an error.`,
		Example: `  sts bench client-credentials --url http://127.0.0.1:8080/oauth2/token --client-id ID \
    --client-secret-file secret.txt -c 32 -d 20s --server-pid $(pgrep -n sts)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sec, err := c.secret()
			if err != nil {
				return err
			}
			return measure(cmd.Context(), cmd.OutOrStdout(), f, loadgen.Config{URL: f.url,
				Bodies: []string{loadgen.ClientCredentialsBody(c.scope)}, ClientID: c.id, ClientSecret: sec, Expect: loadgen.ExpectAccessToken})
		},
	}
	f.register(cmd, "token endpoint", "http://127.0.0.1:8080/oauth2/token")
	c.register(cmd)
	return cmd
}

// measure runs cfg for f.warmup unmeasured, then for f.duration between
// two readings of the server's CPU time, and prints the result. Any
// failed request makes it fail.
func measure(ctx context.Context, w io.Writer, f runFlags, cfg loadgen.Config) error {
	cfg.Concurrency, cfg.Rate, cfg.Phases = f.concurrency, f.rate, f.phases
	// The warm-up's connections carry the measurement.
	cfg.Transports = loadgen.NewTransports(f.concurrency)
	defer cfg.Transports.CloseIdleConnections()
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
