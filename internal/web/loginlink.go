package web

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/storage"
)

// MaxLinkLifetime is the longest a one-time sign-in link is valid.
const MaxLinkLifetime = 5 * time.Minute

// ActionLoginLinkCreate is the audit action of a new sign-in link;
// ActionSignIn of a sign-in, ActionSignOut of an ended session.
const (
	ActionLoginLinkCreate = "web.login_link.create"
	ActionSignIn          = "web.sign_in"
	ActionSessionEnd      = "web.session.end"
)

// LinkStore is what minting a sign-in link needs.
type LinkStore interface {
	storage.SessionStore
	storage.PrincipalStore
	storage.AuditStore
}

// CreateLoginLink mints a one-time sign-in link for principal p, valid for
// ttl (at most MaxLinkLifetime; 0 means that), and returns its URL under
// issuer. With returnTo (a local path, CheckLocalPath) the link lands
// there after signing in, not on /tokens; it travels in the query, as
// every return_to does, and is no secret. Only the SHA-256 of the secret is stored; the secret travels in
// the URL's fragment, which browsers never send to a server, so it reaches
// no access log or proxy (docs/security.md T-86). The URL is returned only
// after the row and its audit event are stored.
func CreateLoginLink(ctx context.Context, store LinkStore, c audit.Caller, issuer string, p storage.Principal, ttl time.Duration, returnTo string, now time.Time) (string, storage.LoginLink, error) {
	page := strings.TrimSuffix(issuer, "/") + "/login/link"
	if returnTo != "" {
		if err := CheckLocalPath(returnTo); err != nil {
			return "", storage.LoginLink{}, fmt.Errorf("return path %q: %w", returnTo, err)
		}
		page += "?return_to=" + url.QueryEscape(returnTo)
	}
	if ttl == 0 {
		ttl = MaxLinkLifetime
	}
	if ttl < time.Second || ttl > MaxLinkLifetime {
		return "", storage.LoginLink{}, fmt.Errorf("a sign-in link is valid for 1s to %s", MaxLinkLifetime)
	}
	if p.Disabled {
		return "", storage.LoginLink{}, errors.New("principal is disabled")
	}
	if p.Kind != storage.PrincipalUser {
		return "", storage.LoginLink{}, fmt.Errorf("principal %s is a %s; only users sign in to the web pages", p.Name, p.Kind)
	}
	secret := randomValue()
	now = storage.Now(now)
	l := storage.LoginLink{ID: storage.NewID(), OrgID: p.OrgID, PrincipalID: p.ID, Digest: digest(secret),
		CreatedAt: now, ExpiresAt: now.Add(ttl)}
	if err := store.CreateLoginLink(ctx, l); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			// p was read enabled, but the store, which checks the
			// principal in the insert, found it disabled or deleted
			// since: a link must not outlive a disable
			// (docs/security.md A-74).
			return "", storage.LoginLink{}, errors.New("principal is disabled or deleted")
		}
		return "", storage.LoginLink{}, err
	}
	if err := store.AppendAudit(ctx, c.Event(now, p.OrgID, ActionLoginLinkCreate, "principal:"+p.ID, "success", "")); err != nil {
		dctx, cancel := storage.Detach(ctx)
		_, _ = store.ConsumeLoginLink(dctx, l.Digest, now)
		cancel()
		return "", storage.LoginLink{}, err
	}
	return page + "#" + secret, l, nil
}

// randomValue is a new secret: 32 random bytes, base64url (43 characters).
func randomValue() string {
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	return base64.RawURLEncoding.EncodeToString(raw[:])
}
