package revoke

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/opensts/sts/internal/clientip"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/ratelimit"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// Leak-report limits (GitHub's POST /credentials/revoke takes up to 1000).
const (
	MaxLeakCredentials = 1000
	maxLeakBody        = 128 << 10
)

// leakRequest is the body: {"credentials": ["sts_pat_…", …]}.
type leakRequest struct {
	Credentials []string `json:"credentials"`
}

// leak revokes leaked sts secrets reported by anyone (a secret scanner, a
// person who found one). It is unauthenticated, so it is strongly rate
// limited per source IP, and it answers 202 {} whether or not any secret
// existed: reporting a guess teaches nothing. Each revocation and the
// report itself are audited.
func (h *Handler) leak(w http.ResponseWriter, r *http.Request) {
	ip := clientip.FromRequest(r)
	d := h.LeakLimiter.Allow("leak:" + ratelimit.IPBucket(ip)) // IPv6 per /64
	ratelimit.WriteHeaders(w.Header(), d)
	if !d.Allowed {
		oauth2.WriteError(w, nil, &oauth2.Error{Code: "rate_limited", Description: "too many requests", Status: http.StatusTooManyRequests})
		return
	}
	if err := oauth2.CheckContentEncoding(r); err != nil {
		oauth2.WriteError(w, nil, err)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxLeakBody))
	if err != nil {
		oauth2.WriteError(w, nil, bodyError(err))
		return
	}
	var req leakRequest
	if err := json.Unmarshal(body, &req); err != nil || len(req.Credentials) == 0 {
		oauth2.WriteError(w, nil, oauth2.NewError(oauth2.ErrorInvalidRequest, "body must be {\"credentials\":[...]}"))
		return
	}
	if len(req.Credentials) > MaxLeakCredentials {
		oauth2.WriteError(w, nil, oauth2.NewError(oauth2.ErrorInvalidRequest, fmt.Sprintf("at most %d credentials", MaxLeakCredentials)))
		return
	}
	if err := h.revokeLeaked(r.Context(), req.Credentials, ip, w.Header().Get("X-Request-Id")); err != nil {
		h.writeError(w, r, unavailable(err))
		return
	}
	oauth2.WriteJSON(w, http.StatusAccepted, struct{}{})
}

// revokeLeaked revokes every well-formed secret it finds, then stores one
// audit event per revoked secret plus one for the report in one
// AppendAudit (one transaction for the events; the revocations are
// written before them, docs/design.md#audit). Malformed strings are
// skipped without a lookup. A storage failure part-way stops the report,
// but what it revoked so far is audited first: it stays revoked, and the
// reporter's retry, finding it gone, records nothing.
func (h *Handler) revokeLeaked(ctx context.Context, creds []string, ip, reqID string) error {
	now := storage.Now(h.now())
	var clientsByDigest map[string]storage.Client
	var events []storage.AuditEvent
	seen := map[string]bool{}
	// The events are appended detached from the request: what was revoked
	// stays revoked whatever the request's context does, and a failure
	// part-way is most often that context's own deadline (a lock wait, a
	// slow database), which would fail the append too (docs/security.md
	// F-87).
	appendEvents := func() error {
		actx, cancel := storage.Detach(ctx)
		defer cancel()
		return h.Store.AppendAudit(actx, events...)
	}
	fail := func(err error) error {
		if len(events) > 0 {
			if aerr := appendEvents(); aerr != nil {
				h.logger().ErrorContext(ctx, "audit events not stored", "action", "credential.revoke_leaked", "count", len(events), "err", aerr)
			}
		}
		return err
	}
	for _, c := range creds {
		p, err := secret.Classify(c)
		if err != nil || seen[c] {
			continue
		}
		seen[c] = true
		d := secret.Digest(h.Pepper, c)
		// The event belongs to the credential's organization, whose
		// administrators read it there (docs/security.md D-19).
		target, org := "", ""
		switch p {
		case secret.PrefixPAT:
			target, org, err = h.leakPAT(ctx, d)
		case secret.PrefixExchangeToken:
			var et storage.ExchangeToken
			if et, err = h.Store.ConsumeExchangeToken(ctx, d, now); err == nil {
				target, org = "exchange_token", et.OrgID
			}
		case secret.PrefixRefreshToken:
			target, org, err = h.leakRefresh(ctx, d)
		case secret.PrefixClientSecret:
			if clientsByDigest == nil {
				if clientsByDigest, err = h.clientDigests(ctx); err != nil {
					return fail(err)
				}
			}
			if cl, ok := clientsByDigest[string(d)]; ok {
				target, org, err = "client:"+cl.ID, cl.OrgID, clearSecret(ctx, h.Store, cl.ID, d, now)
			}
		}
		switch {
		case errors.Is(err, storage.ErrNotFound):
		case err != nil:
			return fail(err)
		case target != "":
			events = append(events, storage.AuditEvent{ID: storage.NewID(), Time: now, OrgID: org, Actor: "leak-report:" + ip,
				Action: "credential.revoke_leaked", Target: target, RequestID: reqID, Outcome: "revoked",
				Detail: "digest " + secret.DigestID(d)})
		}
	}
	// The report itself may name credentials of several organizations (or
	// none that exist): instance-level.
	events = append(events, storage.AuditEvent{ID: storage.NewID(), Time: now, Actor: "leak-report:" + ip,
		Action: "credential.leak_report", RequestID: reqID, Outcome: "accepted",
		Detail: fmt.Sprintf("%d reported, %d well-formed, %d revoked", len(creds), len(seen), len(events))})
	return appendEvents()
}

// leakPAT deletes the PAT with digest d; it returns the event's target
// and the PAT's organization.
func (h *Handler) leakPAT(ctx context.Context, d []byte) (string, string, error) {
	if h.PATs != nil {
		p, err := h.PATs.RevokeLeaked(ctx, d)
		if err != nil {
			return "", "", err
		}
		return "pat:" + p.ID, p.OrgID, nil
	}
	p, err := h.Store.GetPATByDigest(ctx, d)
	if err != nil {
		return "", "", err
	}
	return "pat:" + p.ID, p.OrgID, h.Store.DeletePAT(ctx, p.ID)
}

// leakRefresh revokes the family of the refresh token with digest d; it
// returns the event's target and the family's organization.
func (h *Handler) leakRefresh(ctx context.Context, d []byte) (string, string, error) {
	rt, err := h.Store.GetRefreshTokenByDigest(ctx, d)
	if err != nil {
		return "", "", err
	}
	// The row first; kept until the family has expired if the flags'
	// UPDATE fails (docs/security.md T-160).
	_, err = tokens.EndFamily(ctx, h.Store, rt.FamilyID, "leak report", h.now(), rt.ExpiresAt, h.RevocationKeep)
	return "refresh_family:" + rt.FamilyID, rt.OrgID, err
}

// clientDigests indexes client secrets by digest; clients are few, and
// the store has no digest index for them.
func (h *Handler) clientDigests(ctx context.Context) (map[string]storage.Client, error) {
	cs, err := h.Store.ListClients(ctx, "")
	if err != nil {
		return nil, err
	}
	m := make(map[string]storage.Client, len(cs))
	for _, c := range cs {
		if len(c.SecretDigest) > 0 {
			m[string(c.SecretDigest)] = c
		}
	}
	return m, nil
}
