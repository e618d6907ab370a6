package hosttoken

import (
	"bytes"
	"cmp"
	"context"
	"crypto/subtle"
	"errors"
	"maps"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// Defaults of Refresher.
const (
	DefaultRefreshEvery  = time.Minute
	DefaultRefreshAhead  = 10 * time.Minute
	DefaultRefreshBatch  = 50
	DefaultRefreshLease  = 2 * time.Minute
	DefaultRefreshPace   = 10 * time.Minute
	DefaultFetchTimeout  = 15 * time.Second
	maxRefreshBackoff    = time.Hour
	firstRefreshBackoff  = time.Minute
	refreshAuditActor    = "sts:refresher"
	refreshAuditAction   = "host_token.refresh"
	refreshOutcomeOK     = "success"
	refreshOutcomeFailed = "failure"
)

// Refresher refreshes OAuth host tokens before they expire. Run it on one
// goroutine per process. It is safe on every replica at once: each token is
// claimed with a lease through UpdateHostToken (a row lock on PostgreSQL,
// the write lock on SQLite) before the token endpoint is called, so two
// replicas never refresh one token twice, unless storing a result outlasts
// the lease (then the second one's refusal is not recorded, see store); a
// new pair is stored while the row still holds the refresh token it
// replaces. Running it on the leader only is still cheaper (fewer polls);
// see the lead's wiring notes.
//
// Refreshes of one token are paced (docs/security.md A-58): after a
// success the token waits Pace, after a failure its backoff (1 minute,
// doubling to an hour), and no update of its expiry or value shortens the
// wait, so whoever may update a token cannot make the refresher call the
// SCM's token endpoint at will. The wait after a success ends sooner when
// the value the endpoint returned is due sooner (its expiry within Ahead),
// so a token is still refreshed before the expiry its SCM gave it.
type Refresher struct {
	Service *Service
	// Integrations maps integration IDs to their OAuth endpoints.
	Integrations map[string]Integration
	// HTTPClient calls token endpoints; use a restricted client
	// (federation.NewHTTPClient). Default http.DefaultClient.
	HTTPClient *http.Client
	// Every is the poll interval; Ahead is how long before expiry a token
	// is refreshed; Batch caps tokens per poll; Lease bounds one refresh;
	// Pace is the least time between two refreshes of one token.
	Every, Ahead, Lease, Pace time.Duration
	Batch                     int
	// OnResult, when set, is called once per attempt with "success" or
	// "failure" (a metric increment; it must not block).
	OnResult func(outcome string)

	refreshed, failed atomic.Uint64
}

// RefreshStats counts refresh attempts since start.
type RefreshStats struct{ Refreshed, Failed uint64 }

// Stats returns the counters.
func (r *Refresher) Stats() RefreshStats {
	return RefreshStats{Refreshed: r.refreshed.Load(), Failed: r.failed.Load()}
}

// Run polls until ctx ends.
func (r *Refresher) Run(ctx context.Context) {
	tick := time.NewTicker(cmp.Or(r.Every, DefaultRefreshEvery))
	defer tick.Stop()
	for {
		if err := r.RunOnce(ctx); err != nil && ctx.Err() == nil {
			r.Service.logger().WarnContext(ctx, "hosttoken: refresh poll failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// RunOnce refreshes every token that is due now, one at a time.
func (r *Refresher) RunOnce(ctx context.Context) error {
	if len(r.Integrations) == 0 {
		return nil
	}
	now := r.Service.now()
	ids := slices.Sorted(maps.Keys(r.Integrations))
	lctx, cancel := context.WithTimeout(ctx, storageTimeout)
	due, err := r.Service.Store.ListRefreshableHostTokens(lctx, now.Add(cmp.Or(r.Ahead, DefaultRefreshAhead)), now, ids,
		cmp.Or(r.Batch, DefaultRefreshBatch))
	cancel()
	if err != nil {
		return err
	}
	for _, t := range due {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := r.refreshOne(ctx, t); err != nil {
			r.Service.logger().WarnContext(ctx, "hosttoken: refresh failed", "token_id", t.ID, "error", err)
		}
	}
	return nil
}

var errNotDue = errors.New("hosttoken: token no longer due")

// storageTimeout bounds each storage step of the refresh job (the listing;
// the checks and the claim before a fetch; each attempt to store its
// result), as storage.call_timeout's default bounds a request's: the job
// runs on serve's context, which has no deadline, and on a database that
// stopped answering it waited until TCP gave up on the connection,
// refreshing nothing meanwhile (docs/security.md F-89).
const storageTimeout = storage.DetachedTimeout

// refreshOne claims, refreshes and stores one token, listed as listed. A
// token whose subject or runner is disabled or gone is skipped unclaimed:
// the listing leaves such tokens out, and this catches an owner suspended
// since (docs/security.md A-47).
func (r *Refresher) refreshOne(ctx context.Context, listed storage.HostToken) error {
	s := r.Service
	claimCtx, cancel := context.WithTimeout(ctx, storageTimeout)
	defer cancel()
	switch ok, err := s.ownersActive(claimCtx, listed); {
	case err != nil:
		return err
	case !ok:
		return nil
	}
	id := listed.ID
	lease := storage.NewID()
	now := s.now()
	// The lease's end by the wall clock, which bounds the attempts to
	// store the result (store); the row dates it by the service's.
	leaseEnd := time.Now().Add(cmp.Or(r.Lease, DefaultRefreshLease))
	ahead := cmp.Or(r.Ahead, DefaultRefreshAhead)
	var claimed storage.HostToken
	err := s.Store.UpdateHostToken(claimCtx, id, func(old storage.HostToken) (storage.HostToken, error) {
		if old.Source != storage.HostTokenSourceOAuth || len(old.SealedRefresh) == 0 || old.ExpiresAt.IsZero() ||
			!old.ExpiresAt.Before(now.Add(ahead)) || old.RefreshLeaseUntil.After(now) ||
			old.SubjectID != listed.SubjectID || old.RunnerID != listed.RunnerID || old.OrgID != listed.OrgID {
			return old, errNotDue // another replica got here first, or the owner changed it
		}
		old.RefreshLeaseID = lease
		old.RefreshLeaseUntil = storage.Now(now.Add(cmp.Or(r.Lease, DefaultRefreshLease)))
		claimed = old
		return old, nil
	})
	if errors.Is(err, errNotDue) || errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	integ := r.Integrations[claimed.IntegrationID]
	var used redeemed
	var res fetched
	used.token, used.refresh, err = s.openValues(claimCtx, claimed)
	if err == nil {
		fctx, cancel := context.WithTimeout(ctx, DefaultFetchTimeout)
		res, err = fetch(fctx, r.HTTPClient, integ, used.refresh)
		cancel()
		if !res.expiry.IsZero() {
			// x/oauth2 dates the expiry by the wall clock; date it by the
			// service's, which every expiry is compared with.
			res.expiry = s.now().Add(time.Until(res.expiry))
		}
	}
	return r.store(ctx, claimed, lease, leaseEnd, used, res, err)
}

// pausedUntil is when a token refreshed at now to a value that expires at
// expiry may be refreshed again: Pace later, or when the value is due if
// that is sooner, so pacing never holds back the refresh the value's own
// expiry calls for. Zero: at once.
func (r *Refresher) pausedUntil(now, expiry time.Time) time.Time {
	until := now.Add(cmp.Or(r.Pace, DefaultRefreshPace))
	if due := expiry.Add(-cmp.Or(r.Ahead, DefaultRefreshAhead)); !expiry.IsZero() && due.Before(until) {
		until = due
	}
	if !until.After(now) {
		return time.Time{}
	}
	return storage.Now(until)
}

// redeemed is what a refresh started from: the stored value and the
// refresh token sent to the token endpoint (spent there: refresh tokens are
// usually single-use). Never logged.
type redeemed struct{ token, refresh string }

// same compares two secrets in constant time.
func same(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// ownersActive reports whether t's subject and runner exist, are enabled
// and are of t's organization. A suspended or deleted owner's token is not
// delivered (docs/security.md A-06) nor kept alive by refreshing it
// the skip is not audited, the disabling or deletion that caused it
// is.
func (s *Service) ownersActive(ctx context.Context, t storage.HostToken) (bool, error) {
	for _, id := range []string{t.SubjectID, t.RunnerID} {
		p, err := s.Store.GetPrincipal(ctx, id)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			return false, nil
		case err != nil:
			return false, err
		case p.Disabled || p.OrgID != t.OrgID:
			return false, nil
		}
	}
	return true, nil
}

// store writes the refresh result. A failure, with its backoff, is
// recorded only while the lease is still ours and the row still holds the
// refresh token it sent (docs/security.md A-58). A success is stored while
// the row still holds the refresh token the refresh spent, leased or not:
// that token is dead at the SCM and the rotated one is its successor
// . The endpoint's value and expiry go with it unless the owner set
// another value meanwhile, which is kept (with the expiry the row has for
// it); a row that got another refresh token (the owner's, or another
// replica's refresh) keeps it and the result is discarded. A stored
// success starts the pace before the next refresh. Whatever is
// stored is sealed under a fresh data key.
func (r *Refresher) store(ctx context.Context, claimed storage.HostToken, lease string, leaseEnd time.Time, used redeemed, res fetched, ferr error) error {
	s := r.Service
	now := s.now()
	outcome := refreshOutcomeOK
	if ferr != nil {
		outcome = refreshOutcomeFailed
	}
	event := func(outcome string) storage.AuditEvent {
		ev := storage.AuditEvent{ID: storage.NewID(), Time: storage.Now(s.now()), OrgID: claimed.OrgID, Actor: refreshAuditActor,
			Action: refreshAuditAction, Target: "host_token:" + claimed.ID, Outcome: outcome}
		if ferr != nil {
			ev.Detail = safeMessage(ferr)
		}
		return ev
	}
	// The stored result and its audit event commit together
	// (docs/design.md#audit), detached from ctx (a shutdown does not
	// cancel an attempt under way, though serve waits for the job a
	// second at most) but bounded: each attempt by storageTimeout, and
	// the attempts, with a backoff between them, by the end of the lease
	// (leaseEnd, claimed.RefreshLeaseUntil by the wall clock): past it another replica may claim the
	// token and send the spent refresh token again, and this poll holds
	// back every other due token. A lease already over gets one attempt.
	// The token endpoint may have rotated the refresh token already:
	// giving up after one stalled attempt (a row lock held a few seconds,
	// a failover) kept the spent one, and the host token could never be
	// refreshed again. Only a storage failure is tried again; a value
	// that does not seal or open never will (docs/security.md F-89).
	base := context.WithoutCancel(ctx)
	var err error
	for attempt, wait := 0, storeRetryFirst; ; attempt, wait = attempt+1, min(2*wait, storeRetryMax) {
		actx, acancel := base, context.CancelFunc(func() {})
		if attempt > 0 {
			actx, acancel = context.WithDeadline(base, leaseEnd)
		}
		err = r.storeOnce(actx, claimed, lease, used, res, ferr, now, outcome, event)
		acancel()
		var perm permanentError
		if err == nil || errors.Is(err, errNotDue) || errors.Is(err, storage.ErrNotFound) || errors.As(err, &perm) {
			break
		}
		if !time.Now().Add(wait).Before(leaseEnd) {
			break // no attempt left within the lease
		}
		s.logger().WarnContext(ctx, "hosttoken: storing a refresh failed; trying again", "token_id", claimed.ID, "error", err)
		time.Sleep(wait)
	}
	return r.stored(ctx, claimed, ferr, outcome, event, err)
}

// Between two attempts to store a refresh's result (Refresher.store).
const (
	storeRetryFirst = 250 * time.Millisecond
	storeRetryMax   = 5 * time.Second
)

// permanentError is a failure to store that trying again cannot mend: a
// value that does not seal or open.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// storeOnce is one attempt of store, bounded by storageTimeout.
func (r *Refresher) storeOnce(ctx context.Context, claimed storage.HostToken, lease string, used redeemed, res fetched, ferr error,
	now time.Time, outcome string, event func(string) storage.AuditEvent) error {
	s := r.Service
	wctx, cancel := context.WithTimeout(ctx, storageTimeout)
	defer cancel()
	return s.Store.WithTx(wctx, func(tx storage.Tx) error {
		err := tx.UpdateHostToken(wctx, claimed.ID, func(old storage.HostToken) (storage.HostToken, error) {
			ours := old.RefreshLeaseID == lease
			if ferr != nil {
				if !ours {
					return old, errNotDue // the owner replaced the token meanwhile
				}
				if !bytes.Equal(old.SealedRefresh, claimed.SealedRefresh) {
					_, refresh, err := s.openValues(wctx, old)
					if err != nil {
						return old, permanentError{err}
					}
					if !same(refresh, used.refresh) {
						// Another replica claimed the token after our
						// lease ran out, and stored what a refresh of the
						// same refresh token gave it: this failure is not
						// the stored refresh token's (docs/security.md
						// Our lease ends by itself.
						return old, errNotDue
					}
				}
				old.RefreshLeaseID = ""
				old.RefreshFailures++
				old.RefreshError = safeMessage(ferr)
				back := min(firstRefreshBackoff<<min(old.RefreshFailures-1, 10), maxRefreshBackoff)
				old.RefreshLeaseUntil = storage.Now(now.Add(back))
				return old, nil
			}
			access, keep := res.access, false
			if !ours || !bytes.Equal(old.SealedToken, claimed.SealedToken) || !bytes.Equal(old.SealedRefresh, claimed.SealedRefresh) {
				// Written since the claim (an update, or a refresh after
				// the lease ran out): compare what it holds now.
				tok, refresh, err := s.openValues(wctx, old)
				if err != nil {
					return old, permanentError{err}
				}
				if !same(refresh, used.refresh) {
					return old, errNotDue // another refresh token is stored: it wins
				}
				if !same(tok, used.token) {
					access, keep = tok, true // the owner's new value stays
				}
			}
			if err := s.sealValues(&old, access, res.refresh); err != nil {
				return old, permanentError{err}
			}
			if !keep {
				old.ExpiresAt = storage.Now(res.expiry) // zero: the new token does not expire
				if res.expiry.IsZero() {
					old.ExpiresAt = time.Time{}
				}
			}
			// The next refresh waits for the pace (docs/security.md A-58).
			pause := r.pausedUntil(now, res.expiry)
			switch {
			case ours || old.RefreshLeaseID == "":
				old.RefreshLeaseID, old.RefreshLeaseUntil = "", pause
			case pause.After(old.RefreshLeaseUntil):
				// Another replica's lease, taken after ours ran out, is
				// left to end with its own result, not before the pace.
				old.RefreshLeaseUntil = pause
			}
			old.RefreshedAt, old.RefreshError, old.RefreshFailures = storage.Now(now), "", 0
			old.UpdatedAt = storage.Now(now)
			return old, nil
		})
		if err != nil || s.Audit == nil {
			return err
		}
		return tx.AppendAudit(wctx, event(outcome))
	})
}

// stored accounts for store's outcome err.
func (r *Refresher) stored(ctx context.Context, claimed storage.HostToken, ferr error, outcome string, event func(string) storage.AuditEvent, err error) error {
	s := r.Service
	if errors.Is(err, errNotDue) || errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		outcome = refreshOutcomeFailed
		r.failed.Add(1)
		// Nothing was stored; the failure to store is audited apart, best
		// effort (the store may be what failed).
		if s.Audit != nil {
			actx, cancel := storage.Detach(ctx)
			aerr := s.Audit.Append(actx, event(outcome))
			cancel()
			if aerr != nil {
				s.logger().WarnContext(ctx, "hosttoken: audit append failed", "token_id", claimed.ID, "error", aerr)
			}
		}
	} else if ferr != nil {
		r.failed.Add(1)
	} else {
		r.refreshed.Add(1)
	}
	if r.OnResult != nil {
		r.OnResult(outcome)
	}
	if err != nil {
		return err
	}
	return ferr
}
