package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/opensts/sts/internal/api"
	"github.com/opensts/sts/internal/audit"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
)

// newAuditCmd is `sts audit list`. It reads through audit.List, the reader
// sts.v1.AuditService uses too, so both take the same filters, page the
// same way and refuse the same queries.
func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Read the audit trail"}
	cmd.AddCommand(newAuditListCmd(), newAuditExportCmd())
	return cmd
}

func newAuditListCmd() *cobra.Command {
	var (
		q            audit.Query
		org          string
		since, until string
		asJSON       bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List audit events, newest first, one page at a time",
		Long: `List audit events newest first. Every filter given must match; --actor,
--action, --target, --outcome and --request-id match exactly; a --target
is kind:id (pat:<id>, pool:ci, provider:ci/github, client:<id>, …) and
also finds older events that spelled it pool/ci or a bare ID. --since
(inclusive) and --until (exclusive) take an RFC 3339 time or a duration ago
("90m", "24h", "7d"). A page holds --limit events (default 50, at most 500);
when more follow, the command prints on stderr how to fetch the next page.`,
		Example: `  sts audit list --org acme --action client.create
  sts audit list --actor principal:<id> --since 24h --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now()
			var err error
			if q.Since, err = parseSince("--since", since, now); err != nil {
				return usageError{err}
			}
			if q.Until, err = parseSince("--until", until, now); err != nil {
				return usageError{err}
			}
			if asJSON {
				if j, _ := outputJSON(cmd); j {
					return usageError{errors.New("give one of --json (JSON lines) and --output json (an array)")}
				}
			}
			return runAdmin(cmd, func(ctx context.Context, a *admin) error {
				if org != "" {
					q.OrgID = org
					// A name is resolved; an ID of a deleted organization
					// still filters its events.
					if o, err := resolveOrg(ctx, a.orgs(), org); err == nil {
						q.OrgID = o.GetId()
					}
				}
				events, next, err := a.audit().list(ctx, q)
				if err != nil {
					return err
				}
				if j, _ := outputJSON(cmd); j {
					if err := printObjects(cmd.OutOrStdout(), events, false); err != nil {
						return err
					}
				} else if err := printAudit(cmd, auditFromProto(events), asJSON); err != nil {
					return err
				}
				if next != "" {
					fmt.Fprintf(cmd.ErrOrStderr(), "more events: repeat the command with --page-token %s\n", printable(next))
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&org, "org", "", "organization ID or name")
	f.StringVar(&q.Actor, "actor", "", "actor, e.g. principal:<id> or cli")
	f.StringVar(&q.Action, "action", "", "action, e.g. client.create, pat.create, token.exchange, signing_key.rotate")
	f.StringVar(&q.Target, "target", "", "target, e.g. client:<id>")
	f.StringVar(&q.Outcome, "outcome", "", "outcome, e.g. success")
	f.StringVar(&q.RequestID, "request-id", "", "request ID (X-Request-Id)")
	f.StringVar(&since, "since", "", "only events at or after this time (RFC 3339, or a duration ago)")
	f.StringVar(&until, "until", "", "only events before this time (RFC 3339, or a duration ago)")
	f.IntVar(&q.PageSize, "limit", audit.DefaultPageSize, fmt.Sprintf("events per page (at most %d)", audit.MaxPageSize))
	f.StringVar(&q.PageToken, "page-token", "", "continue a listing (with the same filters)")
	f.BoolVar(&asJSON, "json", false, "print one JSON object per line (JSON lines); --output json prints an array")
	return adminFlags(cmd)
}

// parseSince reads an RFC 3339 time, or a duration (as --expires-in takes
// it) before now.
func parseSince(flag, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := parseLifetime(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%s %q: want an RFC 3339 time or a duration such as 24h or 7d", flag, s)
}

// auditJSON is the --json shape: the field names of sts.v1.AuditEvent.
type auditJSON struct {
	ID             string `json:"id"`
	Time           string `json:"time,omitempty"`
	OrganizationID string `json:"organizationId,omitempty"`
	Actor          string `json:"actor,omitempty"`
	Action         string `json:"action,omitempty"`
	Target         string `json:"target,omitempty"`
	RequestID      string `json:"requestId,omitempty"`
	Outcome        string `json:"outcome,omitempty"`
	Detail         string `json:"detail,omitempty"`
	ClientIP       string `json:"clientIp,omitempty"`
	UserAgent      string `json:"userAgent,omitempty"`
}

// toAuditJSON is e in the --json shape.
func toAuditJSON(e storage.AuditEvent) auditJSON {
	t := ""
	if !e.Time.IsZero() {
		t = e.Time.UTC().Format(time.RFC3339Nano)
	}
	return auditJSON{ID: e.ID, Time: t, OrganizationID: e.OrgID, Actor: e.Actor, Action: e.Action,
		Target: e.Target, RequestID: e.RequestID, Outcome: e.Outcome, Detail: e.Detail, ClientIP: e.ClientIP, UserAgent: e.UserAgent}
}

func printAudit(cmd *cobra.Command, events []storage.AuditEvent, asJSON bool) error {
	out := cmd.OutOrStdout()
	if asJSON {
		for _, e := range events {
			b, err := json.Marshal(toAuditJSON(e))
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintf(out, "%s\n", jsonForTerminal(b)); err != nil {
				return err
			}
		}
		return nil
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TIME\tORG\tACTOR\tACTION\tTARGET\tOUTCOME\tREQUEST ID\tCLIENT IP\tDETAIL")
	for _, e := range events {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", stamp(e.Time), auditCell(e.OrgID), auditCell(e.Actor), auditCell(e.Action),
			auditCell(e.Target), auditCell(e.Outcome), auditCell(e.RequestID), auditCell(e.ClientIP), auditCell(oneLine(e.Detail)))
	}
	return w.Flush()
}

func auditCell(s string) string {
	if s == "" {
		return "-"
	}
	return printable(s)
}

// printable escapes what a terminal or the table would act on instead of
// showing: control characters (a newline would start a forged row, a tab
// shift the columns, ESC drive the terminal), the line and paragraph
// separators and the bidirectional overrides. An external subject's sub
// reaches the actor column as its issuer wrote it (docs/security.md T-101).
// Every value of a server's answer the CLI prints goes through it: cells,
// one-line confirmations, the ID a create prints alone and a secret shown
// once (T-244, T-253); printable text, every real ID and secret, passes
// unchanged.
func printable(s string) string {
	if !strings.ContainsFunc(s, unprintable) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case unprintable(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// printables is a list of strings as fmt's %v prints it, each printable.
func printables(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = printable(s)
	}
	return out
}

func unprintable(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' ||
		(r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069')
}

// oneLine keeps a detail on its table row.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// auditAdmin reads the audit trail, remotely (sts.v1.AuditService) or in
// the database; both go through audit.List.
type auditAdmin interface {
	list(ctx context.Context, q audit.Query) (events []*stsv1.AuditEvent, next string, err error)
}

func (a *admin) audit() auditAdmin {
	if a.remote != nil {
		return remoteAudit{stsv1connect.NewAuditServiceClient(a.remote.http, a.remote.base, a.remote.opts()...)}
	}
	return directAudit{a.store}
}

type remoteAudit struct {
	c stsv1connect.AuditServiceClient
}

func (r remoteAudit) list(ctx context.Context, q audit.Query) ([]*stsv1.AuditEvent, string, error) {
	req := &stsv1.ListAuditEventsRequest{OrganizationId: q.OrgID, Actor: q.Actor, Action: q.Action, Target: q.Target,
		Outcome: q.Outcome, RequestId: q.RequestID, PageSize: int32(min(q.PageSize, audit.MaxPageSize)), PageToken: q.PageToken}
	if !q.Since.IsZero() {
		req.Since = timestamppb.New(q.Since)
	}
	if !q.Until.IsZero() {
		req.Until = timestamppb.New(q.Until)
	}
	res, err := r.c.ListAuditEvents(ctx, req)
	return res.GetEvents(), res.GetNextPageToken(), err
}

type directAudit struct{ s *sqlstore.Store }

func (d directAudit) list(ctx context.Context, q audit.Query) ([]*stsv1.AuditEvent, string, error) {
	page, err := audit.List(ctx, d.s, q)
	if qe, ok := errors.AsType[*audit.QueryError](err); ok {
		return nil, "", usageError{qe}
	}
	if err != nil {
		return nil, "", fmt.Errorf("storage: %w", err)
	}
	out := make([]*stsv1.AuditEvent, 0, len(page.Events))
	for _, e := range page.Events {
		out = append(out, api.AuditEventToProto(e))
	}
	return out, page.NextPageToken, nil
}

// auditFromProto is the text and JSON-lines view of API events.
func auditFromProto(events []*stsv1.AuditEvent) []storage.AuditEvent {
	out := make([]storage.AuditEvent, 0, len(events))
	for _, e := range events {
		var t time.Time
		if e.GetTime() != nil {
			t = e.GetTime().AsTime()
		}
		out = append(out, storage.AuditEvent{ID: e.GetId(), Time: t, OrgID: e.GetOrganizationId(), Actor: e.GetActor(),
			Action: e.GetAction(), Target: e.GetTarget(), RequestID: e.GetRequestId(), Outcome: e.GetOutcome(), Detail: e.GetDetail(),
			ClientIP: e.GetClientIp(), UserAgent: e.GetUserAgent()})
	}
	return out
}
