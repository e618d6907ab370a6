package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/opensts/sts/internal/app"
	"github.com/opensts/sts/internal/config"
)

// Exit codes of Main.
const (
	ExitOK      = 0
	ExitFailure = 1 // the command ran and failed
	ExitUsage   = 2 // bad flags, unknown command or invalid configuration
)

// usageError marks errors that exit with ExitUsage.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// Main runs the sts command line with args (without the program name) and
// returns the process exit code. Errors are printed once, as "sts: …", to
// stderr; nothing else is printed on failure.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return MainEnv(ctx, args, os.Environ(), stdout, stderr)
}

// MainEnv is Main with the environment given as KEY=value pairs (the last
// of a name wins) instead of read from the process: the STS_* configuration,
// STS_SERVER and STS_TOKEN come from environ alone, so that several runs with
// environments of their own can share a process (the tests run in parallel).
func MainEnv(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	env := newEnviron(environ)
	ctx = context.WithValue(ctx, environKey{}, env)
	root := newRoot(stdout, stderr)
	env.applyFlagDefaults(root)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var cerr *config.Error
	switch {
	case errors.As(err, &cerr):
		fmt.Fprintln(stderr, "sts: invalid configuration:")
		for _, p := range cerr.Problems {
			fmt.Fprintf(stderr, "  %s\n", p)
		}
		return ExitUsage
	case errors.As(err, new(*app.PermanentError)):
		fmt.Fprintf(stderr, "sts: %v\n", err)
		return ExitUsage
	case errors.As(err, new(usageError)), strings.HasPrefix(err.Error(), "unknown command"),
		strings.HasPrefix(err.Error(), "required flag(s) "): // cobra's, before any RunE
		fmt.Fprintf(stderr, "sts: %v\nRun 'sts --help' for usage.\n", err)
		return ExitUsage
	}
	fmt.Fprintf(stderr, "sts: %v\n", err)
	return ExitFailure
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "sts",
		Short: "sts is a self-hostable Security Token Service",
		Long: `sts turns the credentials a workload or person already has (CI OIDC tokens,
Kubernetes service-account tokens, personal access tokens) into short-lived,
narrower tokens, and keeps long-lived third-party tokens sealed at rest.

Configuration is layered: defaults, then the YAML file (--config, or ./sts.yaml
if present), then STS_* environment variables, then flags. Secrets (the master
key, database passwords) come only from files or the environment.`,
		Example: `  # Run a server in this directory (SQLite and a master key under ./sts-data)
  sts serve

  # Run against PostgreSQL
  STS_STORAGE_TYPE=postgres STS_STORAGE_DSN=postgres://sts@db/sts STS_ISSUER=https://sts.example.com sts serve

  # Apply database migrations explicitly
  sts migrate --config /etc/sts/sts.yaml`,
		Version:       versionString(),
		SilenceErrors: true,
		SilenceUsage:  true,
		// `sts completion bash|zsh|fish|powershell` is cobra's.
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: false},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.PersistentFlags().String("config", "", "YAML configuration file (default ./sts.yaml if it exists)")
	configString(root.PersistentFlags(), "data-dir", "data_dir", config.DefaultDataDir, "directory for the SQLite database and the generated master key")
	root.AddCommand(newServeCmd(), newMigrateCmd(), newVersionCmd(), newKeysCmd())
	root.AddCommand(newHealthcheckCmd())
	root.AddCommand(newBackupCmd(), newRestoreCmd(), newConfigCmd())
	root.AddCommand(newAuditCmd())
	root.AddCommand(newPoolCmd(), newProviderCmd(), newBenchCmd())
	root.AddCommand(newClientCmd(), newRevokeCmd())
	root.AddCommand(newOrgCmd())
	root.AddCommand(newPrincipalCmd())
	root.AddCommand(newPATCmd())
	root.AddCommand(newExchangeTokenCmd())
	root.AddCommand(newLoginLinkCmd())
	root.AddCommand(newHostTokenCmd(), newRunnerCmd())
	strictArgs(root)
	return root
}

// strictArgs makes every wrong argument a usage error (exit 2), as a bad
// flag is (docs/cli.md): a missing or extra argument, and an unknown
// subcommand of a noun, which cobra would answer with the noun's help and
// exit 0, so that `sts org lsit` in a script looked like a success.
func strictArgs(cmd *cobra.Command) {
	for _, sub := range cmd.Commands() {
		strictArgs(sub)
	}
	if cmd.HasParent() && cmd.HasSubCommands() && !cmd.Runnable() {
		cmd.Args = cobra.NoArgs
		cmd.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	}
	if check := cmd.Args; check != nil {
		cmd.Args = func(cmd *cobra.Command, args []string) error {
			if err := check(cmd, args); err != nil {
				return usageError{err}
			}
			return nil
		}
	}
}

// configString defines a string flag that sets the configuration key key
// when given. The commands' other flags never set a key, whatever their
// name: `sts provider create --issuer` names the provider's issuer, not
// this server's (docs/security.md A-56).
func configString(fs *pflag.FlagSet, name, key, value, usage string) {
	fs.String(name, value, usage)
	config.BindFlag(fs.Lookup(name), key)
}

// loadConfig loads the configuration for cmd from its flags.
func loadConfig(cmd *cobra.Command) (config.Config, error) {
	file, _ := cmd.Flags().GetString("config")
	return config.Load(config.Options{File: file, Flags: cmd.Flags(), Environ: environOf(cmd).list})
}
