package cli

import (
	"github.com/spf13/cobra"

	"github.com/opensts/sts/internal/app"
	"github.com/opensts/sts/internal/config"
)

func newServeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the token service",
		Long: `Run the token service on one HTTP listener until interrupted.

In an empty directory it just works: it creates ./sts-data, opens SQLite there,
applies migrations, generates a master key (./sts-data/master.key, mode 0600)
and listens on 127.0.0.1:8080. /livez, /readyz and /metrics are the ops
endpoints.`,
		Example: `  sts serve
  sts serve --listen 0.0.0.0:8443 --data-dir /var/lib/sts
  sts serve --config /etc/sts/sts.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := serveHangup(cmd.Context(), cmd.ErrOrStderr())
			defer stop()
			cmd.SetContext(ctx)
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			logger := newLogger(cfg.Log, cmd.ErrOrStderr())
			a, err := app.New(cmd.Context(), cfg, app.Options{Logger: logger, MemoryPolicy: true, Version: version})
			if err != nil {
				return err
			}
			return a.Run(cmd.Context())
		},
	}
	configString(cmd.Flags(), "listen", "listen", config.DefaultListen, "host:port of the HTTP listener")
	configString(cmd.Flags(), "issuer", "issuer", "", "public URL of this service, the iss of its tokens (default http://<listen>; required with PostgreSQL)")
	return cmd
}
