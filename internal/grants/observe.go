package grants

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/clientip"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
	"github.com/opensts/sts/internal/tokens"
)

// Auditor queues audit events without blocking (internal/audit.Writer):
// the exchange hot path never waits on a database commit (docs/performance.md).
type Auditor interface {
	Record(ev storage.AuditEvent) bool
}

// DurableAuditor commits an event before returning (internal/audit.Writer
// Commit: group commit, so concurrent requests share a transaction).
type DurableAuditor interface {
	Commit(ctx context.Context, ev storage.AuditEvent) error
}

// ReasonAuditUnavailable: audit.mode required and the issuance's audit
// event could not be stored.
const ReasonAuditUnavailable = "audit_unavailable"

// Observation is one request's metric labels: grant, dialect, outcome
// ("issued", "refused", "error") and reason ("" when issued). Every value
// comes from a closed set, so labels stay low-cardinality.
type Observation struct {
	Grant, Dialect, Outcome, Reason string
	// Pool is the id of the pool that judged the request (a stored pool
	// the trust registry matched, never a client-supplied name); empty
	// when none did.
	Pool     string
	Duration time.Duration
}

// Outcomes.
const (
	OutcomeIssued  = "issued"
	OutcomeRefused = "refused"
	OutcomeError   = "error"
	// OutcomeClientClosed is a request whose client went away before it
	// was decided: whatever the grant returned then (a canceled storage
	// read, a CEL evaluation interrupted) is not a verdict on the request.
	OutcomeClientClosed = "client_closed"
)

// ReasonClientClosed is the reason of OutcomeClientClosed.
const ReasonClientClosed = "client_closed_request"

// Audit actions.
const ActionTokenExchange = "token.exchange"

// auditDetail is the JSON in AuditEvent.Detail. It names the source token
// by iss and sub (no token material, no digests).
type auditDetail struct {
	Grant    string `json:"grant,omitempty"`
	Dialect  string `json:"dialect"`
	Pool     string `json:"pool,omitempty"`
	Provider string `json:"provider,omitempty"`
	SrcIss   string `json:"src_iss,omitempty"`
	SrcSub   string `json:"src_sub,omitempty"`
	JTI      string `json:"jti,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// ClientID is the authenticated client of the request, never one
	// whose authentication failed (docs/security.md D-19).
	ClientID string `json:"client_id,omitempty"`
}

// appendJSON appends d as encoding/json.Marshal writes it, byte for byte
// (TestAuditDetailMatchesEncodingJSON), without its reflection: one audit
// event per request (docs/performance.md, "Allocations per request").
func (d *auditDetail) appendJSON(b []byte) []byte {
	b = append(b, '{')
	b = detailField(b, "grant", d.Grant, true)
	b = detailField(b, "dialect", d.Dialect, false)
	b = detailField(b, "pool", d.Pool, true)
	b = detailField(b, "provider", d.Provider, true)
	b = detailField(b, "src_iss", d.SrcIss, true)
	b = detailField(b, "src_sub", d.SrcSub, true)
	b = detailField(b, "jti", d.JTI, true)
	b = detailField(b, "reason", d.Reason, true)
	b = detailField(b, "client_id", d.ClientID, true)
	return append(b, '}')
}

// encode is the detail as a string. It is written into a buffer on the
// stack, so the string is its one allocation (TestAuditDetailAllocations);
// a detail longer than the buffer (long issuer and subject names) grows
// onto the heap as append does.
func (d *auditDetail) encode() string {
	var buf [512]byte
	return string(d.appendJSON(buf[:0]))
}

// detailField appends one member of auditDetail after the '{' or a comma.
func detailField(b []byte, name, v string, omitEmpty bool) []byte {
	if omitEmpty && v == "" {
		return b
	}
	return oauth2.AppendJSONMember(b, name, v)
}

// finish is phase 7: write the response in the dialect's shape, then log
// a refusal, count the outcome and queue the audit event.
func (h *Handler) finish(w http.ResponseWriter, r *http.Request, d *dialect, req *Request, resp *Response, err error, took time.Duration) {
	grant := ""
	if req != nil {
		if g := h.byType[req.GrantType]; g != nil {
			grant = g.Type()
		}
	}
	obs := Observation{Grant: grant, Dialect: d.name, Outcome: OutcomeIssued, Duration: took}
	if req != nil {
		obs.Pool = req.trace.pool
	}
	if sts.CallerGone(r.Context(), err) || (errors.Is(err, errBodyUnread) && r.Context().Err() != nil) {
		// The client disconnected (TestClientDisconnectIsNotARefusal):
		// nobody reads an answer, and the outcome is not a refusal. Only
		// an error that came of that cancel: a refusal or an outage at
		// the same moment is recorded as what it is (docs/security.md
		// F-110, TestClientGoneAtAFaultIsTheFault). A body that stopped
		// arriving is the client's too: the body bound answers it 408
		// (F-74, app TestSlowBodyIsNotASuccess).
		obs.Outcome, obs.Reason = OutcomeClientClosed, ReasonClientClosed
		if h.Observe != nil {
			h.Observe(obs)
		}
		if h.Audit != nil && req != nil && grant != "" {
			h.Audit.Record(h.auditEvent(r, req, grant, obs))
		}
		return
	}
	audited := false
	if err == nil && h.Durable != nil && req != nil && grant != "" {
		// audit.mode required: the event is durable before the token
		// leaves, or the token never leaves. A grant may have committed
		// it already, before its last write (Request.commitIssued); when
		// it then failed, the refusal's event below names the jti withheld.
		if req.trace.committed {
			audited = true
		} else if cerr := h.commitIssued(r, req, grant, d.name); cerr != nil {
			err, resp = cerr, nil
		} else {
			audited = true
		}
	}
	if err == nil {
		d.writeOK(w, resp)
	} else {
		if _, ok := errors.AsType[*oauth2.Error](err); !ok && errors.Is(err, signer.ErrKeysUnavailable) {
			// Keys not confirmed within their bound: ours to retry, not
			// an internal error (docs/security.md F-109).
			err = unavailable(ReasonKeysUnavailable, err)
		}
		e, ok := errors.AsType[*oauth2.Error](err)
		if !ok {
			h.logger().ErrorContext(r.Context(), "token endpoint: internal error", "request_id", w.Header().Get("X-Request-Id"), "dialect", d.name, "error", err)
			e = &oauth2.Error{Code: oauth2.ErrorServerError, Description: descInternal, Reason: "internal"}
			obs.Outcome = OutcomeError
		} else {
			obs.Outcome = OutcomeRefused
			if d.refine != nil {
				e = d.refine(req, e)
			}
			h.logRefusal(r, d, req, e)
		}
		obs.Reason = e.Reason
		if e.HTTPStatus() == http.StatusServiceUnavailable {
			oauth2.SetRetryAfter(w.Header(), h.RetryAfter)
		}
		oauth2.SetAcceptEncoding(w.Header(), e) // before OmitReason drops what it keys on
		d.writeError(w, w.Header().Get("X-Request-Id"), h.shown(e))
	}
	if h.Observe != nil {
		h.Observe(obs)
	}
	if h.Audit != nil && req != nil && grant != "" && !audited {
		h.Audit.Record(h.auditEvent(r, req, grant, obs))
	}
}

// shown is e as an error body shows it: without our stable reason when
// OmitReason is set, e itself left as it is for the log, the audit trail
// and the metrics.
func (h *Handler) shown(e *oauth2.Error) *oauth2.Error {
	if !h.OmitReason || e.Reason == "" {
		return e
	}
	c := *e
	c.Reason = ""
	return &c
}

// commitIssued commits, in audit.mode required, the issued event of the
// token req is about to get; when it cannot, it logs and returns the
// refusal that withholds the token (docs/security.md D-11).
func (h *Handler) commitIssued(r *http.Request, req *Request, grant, dialect string) error {
	obs := Observation{Grant: grant, Dialect: dialect, Outcome: OutcomeIssued, Pool: req.trace.pool}
	if err := h.Durable.Commit(r.Context(), h.auditEvent(r, req, grant, obs)); err != nil {
		h.logger().ErrorContext(r.Context(), "token endpoint: audit event not stored; refusing to issue",
			"request_id", req.RequestID, "error", err)
		return &oauth2.Error{Code: oauth2.ErrorTemporarilyUnavailable, Description: descRetry,
			Reason: ReasonAuditUnavailable, Err: err}
	}
	return nil
}

func (h *Handler) logRefusal(r *http.Request, d *dialect, req *Request, e *oauth2.Error) {
	attrs := []any{"dialect", d.name, "error", e.Code, "reason", e.Reason, "status", e.HTTPStatus()}
	if req != nil {
		// The trace names what was judged; before that, what was asked for.
		attrs = append(attrs, "request_id", req.RequestID, "pool", cmp.Or(req.trace.pool, req.PoolID),
			"provider", cmp.Or(req.trace.provider, req.ProviderID))
		if req.trace.tokenDigest != "" {
			// A SHA-256 prefix, never the token (octo-sts).
			attrs = append(attrs, "subject_token_sha256", req.trace.tokenDigest)
		}
	}
	if e.Err != nil {
		attrs = append(attrs, "cause", e.Err.Error())
	}
	h.logger().InfoContext(r.Context(), "token request refused", attrs...)
}

// auditEvent is the one event of an exchange, issued or refused.
func (h *Handler) auditEvent(r *http.Request, req *Request, grant string, obs Observation) storage.AuditEvent {
	t := req.trace
	d := auditDetail{Grant: grant, Dialect: obs.Dialect, Pool: t.pool, Provider: t.provider,
		SrcIss: t.srcIss, SrcSub: t.srcSub, JTI: t.jti, Reason: obs.Reason, ClientID: t.client}
	// kind:id, as every event's target (docs/api.md "sts.v1.AuditService").
	target := ""
	switch {
	case t.provider != "":
		target = "provider:" + t.pool + "/" + t.provider
	case t.pool != "":
		target = "pool:" + t.pool
	}
	actor := t.actor
	if actor == "" {
		actor = "anonymous"
	}
	org := t.org
	if org == "" && !t.foreignPool {
		// Nothing judged gave the event an organization (a refusal before
		// the subject, an unknown pool): an authenticated client's request
		// is its organization's to see (docs/security.md D-19). Without a
		// client it stays instance-level.
		org = t.clientOrg
	}
	return storage.AuditEvent{
		OrgID: org, Actor: actor, Action: ActionTokenExchange, Target: target,
		RequestID: req.RequestID, Outcome: obs.Outcome, Detail: d.encode(),
		ClientIP: clientip.FromRequest(r), UserAgent: audit.UserAgent(r.UserAgent()),
	}
}

// externalActor is the audit actor of an external identity: namespaced by
// its issuer, so a token whose sub reads "principal:<id>" is never taken
// for that principal.
func externalActor(iss, sub string) string { return "external:" + iss + "#" + sub }

// ownActor is the audit actor of one of our access tokens: the principal
// when its sub is one, else the external identity it came from.
func ownActor(c *tokens.AccessClaims) string {
	switch {
	case c.Principal != "":
		return "principal:" + c.Subject
	case c.Src != nil:
		return externalActor(c.Src.Issuer, c.Src.Subject)
	}
	return externalActor(c.Issuer, c.Subject)
}
