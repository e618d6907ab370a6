package hosttoken

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/opensts/sts/internal/seal"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// Store is the storage view the service needs: host tokens, principals to
// check runners and subjects, and the runners' public keys.
type Store interface {
	storage.HostTokenStore
	storage.PrincipalStore
	storage.RunnerKeyStore
	storage.UnitOfWork
}

// Auditor stores an audit event synchronously (*audit.Writer does).
type Auditor interface {
	Append(ctx context.Context, ev storage.AuditEvent) error
}

// Service implements the host authentication token vault. Set the
// exported fields before first use; it is safe for concurrent use.
type Service struct {
	Store    Store
	Envelope *seal.Envelope
	// Audit records every value read (before the value is returned: a
	// failed append fails the read) and, best effort, every change.
	Audit  Auditor
	Logger *slog.Logger
	Now    func() time.Time

	corrupt atomic.Uint64
}

// Caller is who asks: the authenticated principal of an RPC or the CLI.
type Caller struct {
	OrgID       string
	PrincipalID string
	Kind        storage.PrincipalKind
	// Admin is true for organization administrators (scope sts:admin).
	Admin     bool
	RequestID string
	// ClientIP and UserAgent describe the request, for the audit trail
	// (docs/security.md D-14): the address as the server resolved it and
	// the User-Agent already passed through audit.UserAgent. Empty
	// without a request (the CLI).
	ClientIP, UserAgent string
	// Actor overrides the audit actor ("principal:<id>"), e.g. "cli".
	Actor string
}

// request fills ev's request fields from c: every event of the vault
// and of runner keys says where the call came from (docs/security.md
// D-21).
func (c Caller) request(ev storage.AuditEvent) storage.AuditEvent {
	ev.RequestID, ev.ClientIP, ev.UserAgent = c.RequestID, c.ClientIP, c.UserAgent
	return ev
}

func (c Caller) actor() string {
	if c.Actor != "" {
		return c.Actor
	}
	return "principal:" + c.PrincipalID
}

// Subject is the principal a token acts for; Kind is empty when the
// request left it unspecified.
type Subject struct {
	ID   string
	Kind storage.PrincipalKind
}

// RefreshStatus is the outcome of the background refresh.
type RefreshStatus struct {
	RefreshedAt time.Time
	LastError   string
	Failures    int
}

// Token is the read model of a host token: never the secret values.
type Token struct {
	ID            string
	OrgID         string
	RunnerID      string
	Subject       Subject
	Host          string
	IntegrationID string
	Scopes        []string
	Source        storage.HostTokenSource // "" when unspecified
	ExpiresAt     time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
	Refresh       RefreshStatus
	// ExternalUserID is the SCM account the runner reported; "" if unknown.
	ExternalUserID string
}

// Corrupt counts rows whose ciphertext failed to open (a row swap,
// tampering or a wrong key): each one is an alert, never a disclosure.
func (s *Service) Corrupt() uint64 { return s.corrupt.Load() }

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// ActionDelete is the audit action of a host token's deletion, by its
// owner, an administrator, or with its principal.
const ActionDelete = "host_token.delete"

// changeTx runs change and appends its success event (with detail, the
// fields an update set, never a value) in one unit of work:
// the change commits with its event or not at all (docs/design.md#audit).
// Without an Auditor (tests) no event is written. A failed event is
// [sts.Unavailable]; change's own errors come back as they are.
func (s *Service) changeTx(ctx context.Context, c Caller, action, id, detail string, change func(tx storage.Tx) error) error {
	return s.Store.WithTx(ctx, func(tx storage.Tx) error {
		if err := change(tx); err != nil {
			return err
		}
		if s.Audit == nil {
			return nil
		}
		ev := s.event(c, action, id, "success")
		ev.Detail = detail
		if err := tx.AppendAudit(ctx, ev); err != nil {
			return sts.Wrap(sts.Unavailable, err, "storage unavailable")
		}
		return nil
	})
}

// event is the audit event of a change to host token id by c.
func (s *Service) event(c Caller, action, id, outcome string) storage.AuditEvent {
	return c.request(storage.AuditEvent{ID: storage.NewID(), Time: storage.Now(s.now()), OrgID: c.OrgID, Actor: c.actor(),
		Action: action, Target: "host_token:" + id, Outcome: outcome})
}

func toToken(r storage.HostToken, subjectKind storage.PrincipalKind) Token {
	return Token{
		ID: r.ID, OrgID: r.OrgID, RunnerID: r.RunnerID, Subject: Subject{ID: r.SubjectID, Kind: subjectKind},
		Host: shownHost(r.Host), IntegrationID: r.IntegrationID, Scopes: r.Scopes, Source: r.Source,
		ExpiresAt: r.ExpiresAt, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
		Refresh:        RefreshStatus{RefreshedAt: r.RefreshedAt, LastError: r.RefreshError, Failures: r.RefreshFailures},
		ExternalUserID: r.ExternalUserID,
	}
}

// shownHost is a stored host as Get, List and the /tokens page show it. A
// row stored before T-229 may hold a URL's user and password or query
// (pasted from a clone URL): they are shown as "[redacted]", the name
// kept so the row can be found and deleted (docs/security.md T-230).
func shownHost(h string) string {
	if _, ok := hostKey(h); ok {
		return h
	}
	rest := ""
	if i := strings.IndexAny(h, "?#"); i >= 0 {
		h, rest = h[:i], h[i:i+1]+"[redacted]"
	}
	if i := strings.LastIndexByte(h, '@'); i >= 0 {
		h = "[redacted]@" + h[i+1:]
	}
	return h + rest
}
