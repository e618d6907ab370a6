package cli

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/opensts/sts/internal/config"
)

// DefaultHealthcheckURL is the --url flag's default value, shown in its
// help: the liveness endpoint of a server on the default port, reached over
// loopback from inside the same container. Without --url the configured
// listener is probed instead.
const DefaultHealthcheckURL = "http://127.0.0.1:8080/livez"

// healthcheckTimeout bounds one probe, so a hung server fails the check
// instead of hanging the container runtime's probe.
const healthcheckTimeout = 3 * time.Second

// newHealthcheckCmd is the probe for a container HEALTHCHECK: the
// distroless image has no shell or curl, so the binary probes itself.
func newHealthcheckCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 if the server answers 200 on its liveness URL, 1 otherwise",
		Long: `healthcheck sends one GET to --url with a 3 second timeout. It exits 0 on
HTTP 200 and prints nothing; on any other status or error it prints one line
and exits 1. It is meant for a container HEALTHCHECK in an image without a
shell.

Without --url it probes /livez of the server the configuration describes
(--config, ./sts.yaml, STS_* variables): on ops.listen when that is set, else
on listen (over https when tls.cert_file is set; the certificate is not
verified, as the probe sends nothing and reads only the status). A wildcard
host (0.0.0.0, ::, empty) is probed on 127.0.0.1. When the configuration
cannot be loaded it probes nothing: it prints the error and exits 1.`,
		Example: `  sts healthcheck
  sts healthcheck --url http://127.0.0.1:8443/readyz`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			url, _ := cmd.Flags().GetString("url")
			insecure := false
			if !cmd.Flags().Changed("url") {
				// A configuration that cannot be loaded says nothing of
				// where the server listens: probing the default could
				// find another server healthy.
				cfg, err := loadConfig(cmd)
				if err != nil {
					return fmt.Errorf("healthcheck: cannot load the configuration to find the server (--url probes a given URL): %w", err)
				}
				url, insecure = healthURL(cfg)
			}
			return probe(cmd.Context(), url, insecure)
		},
	}
	cmd.Flags().String("url", DefaultHealthcheckURL, "URL to GET; healthy means HTTP 200 (default: /livez of the configured ops.listen or listen)")
	return cmd
}

// healthURL is the liveness URL of the server cfg describes, and whether
// it is https on the public listener (whose certificate names the public
// host, not the loopback address probed).
func healthURL(cfg config.Config) (string, bool) {
	addr, scheme := cfg.Listen, "http"
	switch {
	case cfg.Ops.Listen != "":
		addr = cfg.Ops.Listen
	case cfg.TLS.Enabled():
		scheme = "https"
	}
	if host, port, err := net.SplitHostPort(addr); err == nil {
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
	}
	return scheme + "://" + addr + "/livez", scheme == "https"
}

func probe(ctx context.Context, url string, insecure bool) error {
	ctx, cancel := context.WithTimeout(ctx, healthcheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return usageError{fmt.Errorf("healthcheck: invalid --url: %w", err)}
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if insecure {
		transport.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // liveness of our own listener: no credential is sent
	}
	client := &http.Client{
		Transport: transport,
		// A redirect is not health: report the 3xx itself.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s", url, resp.Status)
	}
	return nil
}
