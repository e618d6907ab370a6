package cli

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"
)

// DefaultHealthcheckURL is what `sts healthcheck` probes when --url is not
// given: the liveness endpoint of a server on the default port, reached over
// loopback from inside the same container.
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
		Long: `healthcheck sends one GET to --url (default ` + DefaultHealthcheckURL + `)
with a 3 second timeout. It exits 0 on HTTP 200 and prints nothing; on any
other status or error it prints one line and exits 1. It is meant for a
container HEALTHCHECK in an image without a shell.`,
		Example: `  sts healthcheck
  sts healthcheck --url http://127.0.0.1:8443/readyz`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			url, _ := cmd.Flags().GetString("url")
			return probe(cmd.Context(), url)
		},
	}
	cmd.Flags().String("url", DefaultHealthcheckURL, "URL to GET; healthy means HTTP 200")
	return cmd
}

func probe(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, healthcheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return usageError{fmt.Errorf("healthcheck: invalid --url: %w", err)}
	}
	client := &http.Client{
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
