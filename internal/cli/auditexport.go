package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/storage/sqlstore"
)

// newAuditExportCmd is `sts audit export`: every event of a time window as
// JSON lines on stdout, for shipping to a SIEM (docs/operations.md). It
// pages through audit.List like `sts audit list`, so memory stays at one
// page however large the window.
func newAuditExportCmd() *cobra.Command {
	var org, since, until string
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write audit events of a time window as JSON lines (directly in storage)",
		Long: `Write every audit event at or after --since (and before --until, default:
the moment the command starts) to stdout, one JSON object per line, newest
first, in the shape of ` + "`sts audit list --json`" + `. --since and --until take an RFC 3339
time or a duration ago ("24h", "7d"). Events appended while the export runs
are not included, so consecutive windows (--since of one = --until of the
previous) export every event exactly once. Direct-storage mode: run it where
the database is reachable; it needs no master key.`,
		Example: `  sts audit export --since 24h > audit-$(date +%F).jsonl
  sts audit export --since 2026-01-01T00:00:00Z --until 2026-02-01T00:00:00Z --org acme`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now()
			var q audit.Query
			var err error
			if since == "" {
				return usageError{errors.New("--since is required")}
			}
			if q.Since, err = parseSince("--since", since, now); err != nil {
				return usageError{err}
			}
			if q.Until, err = parseSince("--until", until, now); err != nil {
				return usageError{err}
			}
			if q.Until.IsZero() {
				q.Until = now
			}
			q.PageSize = audit.MaxPageSize
			return withStore(cmd, func(ctx context.Context, _ config.Config, store *sqlstore.Store) error {
				if org != "" {
					q.OrgID = org
					if o, err := resolveOrg(ctx, directOrgs{s: store}, org); err == nil {
						q.OrgID = o.GetId()
					}
				}
				enc := json.NewEncoder(cmd.OutOrStdout())
				n := 0
				for {
					page, err := audit.List(ctx, store, q)
					if qe, ok := errors.AsType[*audit.QueryError](err); ok {
						return usageError{qe}
					}
					if err != nil {
						return fmt.Errorf("storage: %w", err)
					}
					for _, e := range page.Events {
						if err := enc.Encode(toAuditJSON(e)); err != nil {
							return err
						}
					}
					n += len(page.Events)
					if page.NextPageToken == "" {
						fmt.Fprintf(cmd.ErrOrStderr(), "exported %d events\n", n)
						return nil
					}
					q.PageToken = page.NextPageToken
				}
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&org, "org", "", "only this organization (ID or name)")
	f.StringVar(&since, "since", "", "export events at or after this time (RFC 3339, or a duration ago); required")
	f.StringVar(&until, "until", "", "export events before this time (RFC 3339, or a duration ago); default: now")
	return cmd
}
