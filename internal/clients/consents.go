package clients

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// ActionConsentRevoke is the audit action of withdrawing a consent.
const ActionConsentRevoke = "consent.revoke"

// ConsentStore is what [Consents] reads and writes.
type ConsentStore interface {
	storage.ConsentStore
	storage.ClientStore
	storage.RefreshTokenStore
	storage.PrincipalStore
	storage.RevocationStore
	storage.AuditStore
}

// Consents lets a person see and withdraw the consents they gave
// applications on the authorization endpoint's consent screen
// (internal/authorize remembers them). Withdrawing one makes the next
// authorization request of that application ask again and ends the
// tokens the application holds for the person: its refresh tokens, and
// at once its access tokens (AccessRevocation).
type Consents struct {
	Store ConsentStore
	// AccessRevocation is the revocation row that ends every access token
	// clientID holds for principalID, issued up to now
	// (tokens.ClientSubjectRevocation; this package does not reach the
	// token format). Required: Revoke refuses to run without it rather
	// than leave those tokens working.
	AccessRevocation func(clientID, principalID string, now time.Time) storage.Revocation
	Now              func() time.Time
}

// Consent is one remembered consent as a person sees it.
type Consent struct {
	ClientID   string
	ClientName string // empty when the client was deleted since
	Scopes     []string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// List returns principalID's consents ordered by client ID. Errors:
// [sts.Unavailable].
func (s *Consents) List(ctx context.Context, principalID string) ([]Consent, error) {
	list, err := s.Store.ListConsents(ctx, principalID)
	if err != nil {
		return nil, storageErr(err, "consents")
	}
	out := make([]Consent, 0, len(list))
	for _, c := range list {
		v := Consent{ClientID: c.ClientID, Scopes: c.Scopes, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
		cl, err := s.Store.GetClient(ctx, c.ClientID)
		switch {
		case err == nil:
			v.ClientName = cl.Name
		case !errors.Is(err, storage.ErrNotFound):
			return nil, storageErr(err, "client")
		}
		out = append(out, v)
	}
	return out, nil
}

// endTokens ends the tokens clientID holds for principalID, the subject of
// the tokens the flow issued: its refresh tokens (how many it ended is
// returned) and, issued up to now, its access tokens. The row comes
// first: a refresh that begins after it is refused, so the refresh
// tokens' UPDATE settles, a family begun meanwhile reads it once stored,
// and an UPDATE that fails leaves the families refused while the row is
// kept (docs/security.md T-160).
func (s *Consents) endTokens(ctx context.Context, principalID, clientID string) (int64, error) {
	if err := s.Store.PutRevocation(ctx, s.AccessRevocation(clientID, principalID, s.now())); err != nil {
		return 0, sts.Wrap(sts.Unavailable, err, "storage unavailable")
	}
	n, err := s.Store.RevokeRefreshClientSubject(ctx, clientID, principalID)
	if err != nil {
		return 0, sts.Wrap(sts.Unavailable, err, "storage unavailable")
	}
	return n, nil
}

func (s *Consents) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Revoke withdraws principalID's consent to clientID and audits it as
// principalID, with c's request ID, client address and user agent
// (docs/security.md D-21).
// Errors: [sts.NotFound] (no such consent), [sts.Unavailable].
func (s *Consents) Revoke(ctx context.Context, c audit.Caller, principalID, clientID string) error {
	if principalID == "" || clientID == "" || len(clientID) > maxIDLen {
		return sts.Errorf(sts.NotFound, "consent not found")
	}
	if s.AccessRevocation == nil {
		return sts.Errorf(sts.Unavailable, "consents: no access revocation configured")
	}
	// The tokens end before the consent goes: a withdrawal that fails
	// part-way leaves the consent listed, and withdrawing again finishes
	// the job (ending tokens is idempotent). Only an existing consent
	// writes anything. After the deletion the tokens are ended once more:
	// an authorization that used the consent while it was being withdrawn
	// finished after the first pass.
	if _, err := s.Store.GetConsent(ctx, principalID, clientID); err != nil {
		return storageErr(err, "consent")
	}
	n, err := s.endTokens(ctx, principalID, clientID)
	if err != nil {
		return err
	}
	if err := s.Store.DeleteConsent(ctx, principalID, clientID); err != nil {
		return storageErr(err, "consent")
	}
	m, err := s.endTokens(ctx, principalID, clientID)
	if err != nil {
		return err
	}
	n += m
	now := s.now()
	org := ""
	if p, err := s.Store.GetPrincipal(ctx, principalID); err == nil {
		org = p.OrgID
	}
	c.Actor = "principal:" + principalID
	ev := c.Event(now, org, ActionConsentRevoke, "client:"+clientID, "success", "refresh_tokens_revoked="+strconv.FormatInt(n, 10))
	if err := s.Store.AppendAudit(ctx, ev); err != nil {
		return sts.Wrap(sts.Unavailable, err, "storage unavailable")
	}
	return nil
}
