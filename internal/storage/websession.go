package storage

import (
	"context"
	"time"
)

// WebSession is a browser session of a person signed in to the web pages
// (internal/web). The cookie carries a random value; only its digest is
// stored, so a copy of the database signs nobody in.
type WebSession struct {
	ID          string // random; names the session on the page ("end this session")
	Digest      []byte // SHA-256 of the cookie value; unique
	OrgID       string
	PrincipalID string
	// Method is how the person signed in: "link" or
	// "oidc:<provider id>:<fingerprint of its issuer and client>".
	Method    string
	UserAgent string
	CreatedAt time.Time
	// AuthAt is when the sign-in that began the session authenticated
	// the person, as far as sts knows: a sign-in link's use, or the
	// upstream provider's auth_time (never later than the sign-in). Zero
	// when the provider did not say, unasked: no relying party's demand
	// for a fresh sign-in is met by it (docs/security.md T-178).
	AuthAt     time.Time
	LastSeenAt time.Time
	// ExpiresAt is the absolute end of the session, the lineage's: a
	// session that continues a lineage keeps its end (docs/security.md
	// A-103); the idle timeout is judged from LastSeenAt by the reader.
	ExpiresAt time.Time
	// Lineage is the ID of the first session of the chain this one
	// continues: the same person signing in again in the same browser
	// (sudo mode, an application's prompt=login) replaces the session
	// (docs/security.md T-82) and keeps its lineage; any other sign-in
	// begins one (its own ID). A refresh family begun in the chain lives
	// while a session of its person with its lineage does.
	Lineage string
}

// LoginLink is a one-time sign-in link (`sts login-link`), stored as a
// digest and consumed atomically.
type LoginLink struct {
	ID          string
	OrgID       string
	PrincipalID string
	Digest      []byte // SHA-256 of the link secret; unique
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// Ended says why w has ended at now, judged by the timeouts configured
// now (web.session.idle_timeout, absolute_timeout; zero: not judged):
// "expired" past its stored end or signed in absolute ago or longer (a
// lowered timeout bounds the sessions already begun, docs/security.md
// A-71), "idle" when not used for idle, "" while it lives. The
// pages judge their sessions by it, and the refresh grant and
// introspection the session a refresh family is bound to.
func (w WebSession) Ended(now time.Time, idle, absolute time.Duration) string {
	switch {
	case !now.Before(w.ExpiresAt) || (absolute > 0 && !now.Before(w.CreatedAt.Add(absolute))):
		return "expired"
	case idle > 0 && !now.Before(w.LastSeenAt.Add(idle)):
		return "idle"
	}
	return ""
}

// WebSessionTouchEvery bounds how often a session's last use is written:
// by a page view, or by a refresh of a family bound to the session
// (docs/security.md A-104).
const WebSessionTouchEvery = time.Minute

// SessionStore persists web sessions and one-time sign-in links.
type SessionStore interface {
	// CreateWebSession returns ErrAlreadyExists if the ID or digest is
	// taken, and ErrNotFound, storing nothing, unless s.PrincipalID is an
	// enabled principal of s.OrgID, checked in the write itself: a disable
	// (UpdatePrincipal) committed before it wins, one after it deletes it
	// (docs/security.md A-74).
	CreateWebSession(ctx context.Context, s WebSession) error
	// GetWebSessionByDigest returns ErrNotFound.
	GetWebSessionByDigest(ctx context.Context, digest []byte) (WebSession, error)
	// GetWebSessionByLineage returns a session of principalID with this
	// lineage, the one that ends last when a race left two, or
	// ErrNotFound. The refresh grant reads it for a family bound to the
	// browser session it was begun in (docs/security.md ).
	GetWebSessionByLineage(ctx context.Context, principalID, lineage string) (WebSession, error)
	// TouchWebSession sets LastSeenAt. Returns ErrNotFound.
	TouchWebSession(ctx context.Context, id string, lastSeen time.Time) error
	// ListWebSessions returns the sessions of one principal ordered by
	// CreatedAt, then ID.
	ListWebSessions(ctx context.Context, principalID string) ([]WebSession, error)
	// DeleteWebSession returns ErrNotFound.
	DeleteWebSession(ctx context.Context, id string) error
	// TrimWebSessions deletes, in one statement, every session of
	// principalID but keepID and the newest keep-1 others (by CreatedAt,
	// then ID), and returns how many it deleted. keepID is never deleted,
	// whatever its CreatedAt (docs/security.md T-208).
	TrimWebSessions(ctx context.Context, principalID, keepID string, keep int) (int64, error)
	// CreateLoginLink returns ErrAlreadyExists if the ID or digest is
	// taken, and ErrNotFound as CreateWebSession does.
	CreateLoginLink(ctx context.Context, l LoginLink) error
	// ConsumeLoginLink removes and returns the link with this digest if it
	// has not expired at now. Of concurrent callers exactly one succeeds;
	// the others, and every later call, get ErrNotFound.
	ConsumeLoginLink(ctx context.Context, digest []byte, now time.Time) (LoginLink, error)
}
