package api

import (
	"context"
	"slices"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
	"github.com/opensts/sts/internal/tokens"
)

// Audit actions of the gitpod.v1 token requests (docs/design.md#audit,
// docs/security.md D-18). ExchangeToken's is the token endpoint's.
const (
	ActionTokenExchange = "token.exchange"
	ActionTokenIDToken  = "token.id_token"
)

// Outcomes and reasons of their events, as the token endpoint's.
const (
	outcomeIssued  = "issued"
	outcomeRefused = "refused"
	outcomeError   = "error"
	// reasonAuditUnavailable: audit.mode required and the issuance's
	// event could not be stored; no token was sent (outcome refused, as
	// at the token endpoint).
	reasonAuditUnavailable = "audit_unavailable"
	// reasonWithheld: ExchangeToken minted a token (and in audit.mode
	// required committed its issued event) but could not spend the
	// exchange token (a concurrent redemption won, storage failed), so it
	// was not sent (outcome error); the event names its jti. An issued
	// event is a delivery unless a withheld one with its jti follows
	// (docs/security.md D-18).
	reasonWithheld = "withheld"
	// dialectGitpod is the detail's dialect of every gitpod.v1 event.
	dialectGitpod = "gitpod"
)

// TokenAuditor takes the events of ExchangeToken and GetIDToken
// (internal/audit.Writer): Record queues one without waiting (audit.mode
// best_effort, and every refusal), Commit returns once it is stored
// (audit.mode required, an issued token: docs/security.md D-11).
type TokenAuditor interface {
	Record(ev storage.AuditEvent) bool
	Commit(ctx context.Context, ev storage.AuditEvent) error
}

type tokenAudit struct {
	w        TokenAuditor
	required bool
}

// SetTokenAudit makes ExchangeToken and GetIDToken record their events
// with w, committing an issued token's before the answer when required;
// safe while serving. Until it is called they record nothing (a test
// double): serve calls it before Ready.
func (h *Handler) SetTokenAudit(w TokenAuditor, required bool) {
	h.tokenAudit.Store(&tokenAudit{w: w, required: required})
}

// callMeta describes a request that carries no credential (ExchangeToken)
// for its audit event; the middleware puts it in the context.
type callMeta struct{ requestID, clientIP, userAgent string }

type callMetaKey struct{}

// tokenEvent finishes a gitpod.v1 token request: it records ev, its
// outcome from err and its reason the given one or else err's code
// (rate_limited for a rate limit's refusal, as the token endpoint's), and
// returns the answer. An issued token's event in audit.mode required is
// committed first; when that fails the token is withheld, the caller gets
// unavailable (with Retry-After, connectError) and a best-effort event
// says so, as at the token endpoint (docs/design.md#audit).
func (h *Handler) tokenEvent(ctx context.Context, ev storage.AuditEvent, detail []byte, reason string, err error) error {
	ta := h.tokenAudit.Load()
	if err == nil {
		ev.Outcome = outcomeIssued
		if ta.required {
			cerr := ta.w.Commit(ctx, closeDetail(ev, detail, ""))
			if cerr == nil {
				return nil
			}
			h.logger().ErrorContext(ctx, "api: audit event not stored; refusing to issue",
				"action", ev.Action, "request_id", ev.RequestID, "error", cerr)
			err = sts.Wrap(sts.Unavailable, cerr, "temporarily unavailable; retry later")
			ev.Outcome, reason = outcomeRefused, reasonAuditUnavailable // as the token endpoint's
		}
	} else {
		code := sts.ErrorCode(err)
		ev.Outcome = outcomeRefused
		if code == sts.Internal || code == sts.Unavailable || reason == reasonWithheld {
			ev.Outcome = outcomeError
		}
		switch {
		case reason != "":
		case code == sts.ResourceExhausted:
			reason = reasonRateLimited // the token endpoint's
		default:
			reason = string(code)
		}
	}
	ta.w.Record(closeDetail(ev, detail, reason))
	return err
}

// closeDetail ends ev's detail JSON (opened by detailOpen) with the
// reason, if any.
func closeDetail(ev storage.AuditEvent, detail []byte, reason string) storage.AuditEvent {
	if reason != "" {
		detail = oauth2.AppendJSONMember(detail, "reason", reason)
	}
	ev.Detail = string(append(detail, '}'))
	return ev
}

// detailOpen starts an event's detail: {"dialect":"gitpod". Every member
// is an ID, a digest prefix, a jti or an audience; never a secret.
func detailOpen() []byte {
	return append(make([]byte, 0, 320), `{"dialect":"gitpod"`...)
}

// auditExchange is ExchangeToken's event, issued or refused
// (docs/security.md D-18): action token.exchange, actor the principal the
// exchange token stands for ("anonymous" when none was found), target
// exchange_token:<digest prefix>, which a replay shares with the
// redemption that spent the token. The detail names the stored token, its
// creator, and, when a token was minted (issued, or withheld: its event
// could not be stored, or the spend failed after it was), the sources it
// carries (src) and its jti.
func (h *Handler) auditExchange(ctx context.Context, r *pat.ExchangeRedemption, src []byte, c *tokens.AccessClaims, err error) error {
	if ta := h.tokenAudit.Load(); ta == nil || ta.w == nil {
		return err
	}
	ev := storage.AuditEvent{OrgID: r.OrgID, Actor: "anonymous", Action: ActionTokenExchange, Target: "exchange_token"}
	if r.PrincipalID != "" {
		ev.Actor = "principal:" + r.PrincipalID
	}
	if r.Digest != "" {
		ev.Target += ":" + r.Digest
	}
	if m, ok := ctx.Value(callMetaKey{}).(*callMeta); ok {
		ev.RequestID, ev.ClientIP, ev.UserAgent = m.requestID, m.clientIP, m.userAgent
	}
	d := detailOpen()
	if r.TokenID != "" {
		d = oauth2.AppendJSONMember(d, "exchange_token_id", r.TokenID)
	}
	if r.CreatorID != "" {
		d = oauth2.AppendJSONMember(d, "creator", "principal:"+r.CreatorID)
	}
	if c.ID != "" {
		if len(src) > 2 { // the stored JSON object of src_ lists ExchangeToken parsed (exchangeClaims); "{}" when empty
			d = append(append(d, `,"src":`...), src...)
		}
		d = oauth2.AppendJSONMember(d, "jti", c.ID)
	}
	return h.tokenEvent(ctx, ev, d, r.Reason, err)
}

// commitExchange stores, in audit.mode required, the issued event of the
// token c a redemption is about to hand out, before the exchange token is
// spent: a commit that fails then leaves the exchange token redeemable
// (docs/security.md A-70) while the token is withheld (D-11); the answer
// is unavailable, and a best-effort event records audit_unavailable, as
// tokenEvent does. stored reports that the event was committed. The audit
// writer commits on its own transactions (a group commit), so the event
// cannot share the spend's; it goes first, and when the spend then fails
// the redemption's event names the jti withheld.
func (h *Handler) commitExchange(ctx context.Context, r *pat.ExchangeRedemption, src []byte, c *tokens.AccessClaims) (stored bool, err error) {
	if ta := h.tokenAudit.Load(); ta == nil || ta.w == nil || !ta.required {
		return false, nil
	}
	if err := h.auditExchange(ctx, r, src, c, nil); err != nil {
		return false, err
	}
	return true, nil
}

// auditIDToken is GetIDToken's event (docs/security.md D-18): action
// token.id_token, actor and target the caller's principal, the detail its
// credential (pat_id or src_jti), the version, the audiences and the ID
// token's jti. A request refused before authorization (no identity) or
// for its input (invalid_argument) leaves none: it asked for nothing the
// trail needs, and its audiences are unchecked input. One a rate limit
// refused leaves a refused event with reason rate_limited.
func (h *Handler) auditIDToken(ctx context.Context, req *gitpodv1.GetIDTokenRequest, c *tokens.IDClaims, err error) error {
	if ta := h.tokenAudit.Load(); ta == nil || ta.w == nil || (err != nil && sts.ErrorCode(err) == sts.Invalid) {
		return err
	}
	id, ok := IdentityFrom(ctx)
	if !ok {
		return err
	}
	ev := storage.AuditEvent{OrgID: id.OrgID, Actor: "principal:" + id.PrincipalID, Action: ActionTokenIDToken,
		Target: "principal:" + id.PrincipalID, RequestID: id.RequestID, ClientIP: id.ClientIP, UserAgent: id.UserAgent}
	d := detailOpen()
	switch id.Credential {
	case CredentialPAT:
		d = oauth2.AppendJSONMember(d, "pat_id", id.TokenID)
	case CredentialAccessToken:
		d = oauth2.AppendJSONMember(d, "src_jti", id.TokenID)
	}
	d = oauth2.AppendJSONMember(d, "version", req.GetVersion().String())
	// Audiences within GetIDToken's limits only: a refused request's are
	// unchecked input.
	if aud := req.GetAudience(); len(aud) > 0 && len(aud) <= maxAudiences &&
		!slices.ContainsFunc(aud, func(a string) bool { return len(a) > maxAudienceLen }) {
		d = append(d, `,"aud":[`...)
		for i, a := range aud {
			if i > 0 {
				d = append(d, ',')
			}
			d = oauth2.AppendJSONString(d, a)
		}
		d = append(d, ']')
	}
	if err == nil {
		d = oauth2.AppendJSONMember(d, "jti", c.ID)
	}
	return h.tokenEvent(ctx, ev, d, "", err)
}
