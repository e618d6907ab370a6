package hosttoken

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"time"
	"unicode"

	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/nacl/box"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// Runner delivery. A runner registers an X25519 public key; the values of
// the tokens that belong to it leave the server only sealed to that key
// (a NaCl anonymous sealed box, libsodium's crypto_box_seal), so neither a
// leaked API credential nor a TLS-terminating proxy sees them in clear.

// PublicKeySize is the size of a runner's X25519 public key.
const PublicKeySize = 32

// MaxExternalUserIDLength bounds UpdateHostAuthenticationTokenMetadata.
const MaxExternalUserIDLength = 256

// Audit actions of a runner's key: registered or rotated, and deleted
// with its runner (docs/security.md A-48).
const (
	ActionRunnerKeySet    = "runner_key.set"
	ActionRunnerKeyDelete = "runner_key.delete"
)

// KeyStore is the storage view the runner-key functions need.
type KeyStore interface {
	storage.PrincipalStore
	storage.RunnerKeyStore
}

// Fingerprint names a public key in logs and listings: the first 16 hex
// digits of its SHA-256.
func Fingerprint(pub []byte) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// CheckPublicKey refuses anything but a usable 32-byte X25519 public key:
// a wrong length, or a low-order point (all-zero shared secret, which
// would let anyone open the box).
func CheckPublicKey(pub []byte) error {
	if len(pub) != PublicKeySize {
		return invalid("publicKey must be a %d-byte X25519 public key, got %d bytes", PublicKeySize, len(pub))
	}
	var scalar [32]byte
	rand.Read(scalar[:])
	if _, err := curve25519.X25519(scalar[:], pub); err != nil {
		return invalid("publicKey is not a usable X25519 public key (low-order point)")
	}
	return nil
}

// SetRunnerKey registers (or rotates) the public key of runnerID, a RUNNER
// principal of the caller's organization. Only organization admins may
// (the CLI passes an admin caller). Codes: Invalid, NotFound,
// FailedPrecondition (the runner is disabled), PermissionDenied,
// Unavailable.
func SetRunnerKey(ctx context.Context, store KeyStore, audit Auditor, c Caller, runnerID string, pub []byte, now time.Time) (storage.RunnerKey, error) {
	if err := checkUUID("runnerId", runnerID, true); err != nil {
		return storage.RunnerKey{}, err
	}
	if err := CheckPublicKey(pub); err != nil {
		return storage.RunnerKey{}, err
	}
	runner, err := keyRunner(ctx, store, c, runnerID)
	if err != nil {
		return storage.RunnerKey{}, err
	}
	t := storage.Now(now)
	k := storage.RunnerKey{RunnerID: runner.ID, OrgID: runner.OrgID, PublicKey: slices.Clone(pub), CreatedAt: t, UpdatedAt: t}
	ev := c.request(storage.AuditEvent{ID: storage.NewID(), Time: t, OrgID: runner.OrgID, Actor: c.actor(), Action: ActionRunnerKeySet,
		Target: "principal:" + runner.ID + " key:" + Fingerprint(pub), Outcome: "success"})
	if u, ok := store.(storage.UnitOfWork); ok {
		// The key (which decides who can read SCM secrets) and its event
		// commit together (docs/design.md#audit), with the runner held:
		// a deletion of the runner either comes after the key and
		// deletes it, or leaves nothing here to store it for
		// (docs/design.md#owners-held-while-their-rows-are-written, docs/security.md ).
		var auditErr error
		err := u.WithTx(ctx, func(tx storage.Tx) error {
			if err := activeIn(ctx, tx, runner.OrgID, runner.ID, "runner"); err != nil {
				return err
			}
			if err := tx.PutRunnerKey(ctx, k); err != nil {
				return err
			}
			if audit == nil {
				return nil
			}
			auditErr = tx.AppendAudit(ctx, ev)
			return auditErr
		})
		if errors.As(err, new(*sts.Error)) {
			return storage.RunnerKey{}, err
		}
		if auditErr != nil {
			return storage.RunnerKey{}, sts.Wrap(sts.Unavailable, auditErr, "audit log unavailable; the key was not stored")
		}
		if err != nil {
			return storage.RunnerKey{}, sts.Wrap(sts.Unavailable, err, "storage unavailable")
		}
	} else {
		if err := store.PutRunnerKey(ctx, k); err != nil {
			return storage.RunnerKey{}, sts.Wrap(sts.Unavailable, err, "storage unavailable")
		}
		if audit != nil {
			if err := audit.Append(ctx, ev); err != nil {
				return k, sts.Wrap(sts.Unavailable, err, "key stored, but the audit log is unavailable")
			}
		}
	}
	if got, err := store.GetRunnerKey(ctx, runner.ID); err == nil {
		k = got
	}
	return k, nil
}

// GetRunnerKey returns the registered key of runnerID to an admin of the
// runner's organization. Codes: Invalid, NotFound, PermissionDenied,
// Unavailable.
func GetRunnerKey(ctx context.Context, store KeyStore, c Caller, runnerID string) (storage.RunnerKey, error) {
	if err := checkUUID("runnerId", runnerID, true); err != nil {
		return storage.RunnerKey{}, err
	}
	runner, err := keyRunner(ctx, store, c, runnerID)
	if err != nil {
		return storage.RunnerKey{}, err
	}
	k, err := store.GetRunnerKey(ctx, runner.ID)
	if errors.Is(err, storage.ErrNotFound) {
		return k, sts.Errorf(sts.NotFound, "runner %s has no public key registered", runner.ID)
	}
	if err != nil {
		return k, sts.Wrap(sts.Unavailable, err, "storage unavailable")
	}
	return k, nil
}

// keyRunner loads the runner for a key operation: it must be a RUNNER of
// the caller's organization and the caller an admin of it.
func keyRunner(ctx context.Context, store storage.PrincipalStore, c Caller, runnerID string) (storage.Principal, error) {
	p, err := store.GetPrincipal(ctx, storage.CanonicalID(runnerID))
	if errors.Is(err, storage.ErrNotFound) || (err == nil && (c.OrgID == "" || p.OrgID != c.OrgID)) {
		return storage.Principal{}, sts.Errorf(sts.NotFound, "runner %s not found", runnerID)
	}
	if err != nil {
		return storage.Principal{}, sts.Wrap(sts.Unavailable, err, "storage unavailable")
	}
	if p.Kind != storage.PrincipalRunner {
		return storage.Principal{}, invalid("runnerId must name a runner principal")
	}
	if !c.Admin {
		return storage.Principal{}, sts.Errorf(sts.PermissionDenied, "only an organization admin may manage runner keys")
	}
	return p, nil
}

// ValueRequest is RunnerInteractionService.GetHostAuthenticationTokenValue.
type ValueRequest struct {
	RunnerID    string
	PrincipalID string
	Host        string
}

// SealedValue is what a runner receives: the values sealed to its key.
type SealedValue struct {
	TokenID        string
	Value          []byte // sealed token
	RefreshToken   []byte // sealed refresh token; nil when none
	ExpiresAt      time.Time
	Source         storage.HostTokenSource
	ExternalUserID string
	IntegrationID  string
	KeyFingerprint string
}

// RunnerValue returns the token principal holds for host on the calling
// runner, its values sealed to the runner's registered public key. The
// caller must be that runner (a RUNNER principal whose ID is runnerId);
// the read is appended to the audit log before anything is returned, and
// nothing is returned when that fails. Codes: Invalid, PermissionDenied,
// NotFound, FailedPrecondition (no key registered), Unavailable, Internal.
func (s *Service) RunnerValue(ctx context.Context, c Caller, in ValueRequest) (SealedValue, error) {
	if err := checkUUID("runnerId", in.RunnerID, true); err != nil {
		return SealedValue{}, err
	}
	if err := checkUUID("principalId", in.PrincipalID, true); err != nil {
		return SealedValue{}, err
	}
	if err := checkHost(in.Host); err != nil {
		return SealedValue{}, err
	}
	if c.Kind != storage.PrincipalRunner || c.OrgID == "" {
		return SealedValue{}, sts.Errorf(sts.PermissionDenied, "only a runner may read host token values")
	}
	if storage.CanonicalID(in.RunnerID) != storage.CanonicalID(c.PrincipalID) {
		return SealedValue{}, sts.Errorf(sts.PermissionDenied, "runnerId must be the authenticated runner")
	}
	key, err := s.Store.GetRunnerKey(ctx, storage.CanonicalID(c.PrincipalID))
	if errors.Is(err, storage.ErrNotFound) || (err == nil && key.OrgID != c.OrgID) {
		return SealedValue{}, sts.Errorf(sts.FailedPrecondition,
			"runner %s has no public key registered: an admin registers one with sts runner set-key (or RunnerKeyService.SetRunnerPublicKey)", c.PrincipalID)
	}
	if err != nil {
		return SealedValue{}, sts.Wrap(sts.Unavailable, err, "storage unavailable")
	}
	var pub [PublicKeySize]byte
	if len(key.PublicKey) != PublicKeySize {
		return SealedValue{}, sts.Errorf(sts.FailedPrecondition, "runner %s has a malformed public key; register a new one", c.PrincipalID)
	}
	copy(pub[:], key.PublicKey)
	if err := s.subjectActive(ctx, c, in); err != nil {
		return SealedValue{}, err
	}
	r, err := s.findForRunner(ctx, c, in)
	if err != nil {
		return SealedValue{}, err
	}
	tok, refresh, err := s.openValues(ctx, r)
	if err != nil {
		return SealedValue{}, err
	}
	if s.Audit == nil {
		return SealedValue{}, sts.Errorf(sts.Unavailable, "audit log unavailable")
	}
	ev := c.request(storage.AuditEvent{OrgID: r.OrgID, Actor: c.actor(), Action: "host_token.read_value",
		Target: "host_token:" + r.ID + " key:" + Fingerprint(key.PublicKey), Outcome: "success"})
	if err := s.Audit.Append(ctx, ev); err != nil {
		return SealedValue{}, sts.Wrap(sts.Unavailable, err, "audit log unavailable")
	}
	out, err := s.seal(ctx, c, in, key, pub, r, tok, refresh)
	if err != nil {
		s.withheld(ctx, ev, err)
		return SealedValue{}, err
	}
	return out, nil
}

// seal re-reads what a delivery depends on, once its read is on record,
// and seals the values to pub when all still hold.
func (s *Service) seal(ctx context.Context, c Caller, in ValueRequest, key storage.RunnerKey, pub [PublicKeySize]byte,
	r storage.HostToken, tok, refresh string) (SealedValue, error) {
	if err := s.runnerActive(ctx, c); err != nil {
		return SealedValue{}, err
	}
	if err := s.sameKey(ctx, c, key); err != nil {
		return SealedValue{}, err
	}
	r, err := s.unchanged(ctx, c, in, r)
	if err != nil {
		return SealedValue{}, err
	}
	out := SealedValue{TokenID: r.ID, ExpiresAt: r.ExpiresAt, Source: r.Source, ExternalUserID: r.ExternalUserID,
		IntegrationID: r.IntegrationID, KeyFingerprint: Fingerprint(key.PublicKey)}
	if out.Value, err = box.SealAnonymous(nil, []byte(tok), &pub, rand.Reader); err != nil {
		return SealedValue{}, sts.Wrap(sts.Internal, err, "sealing failed")
	}
	if refresh != "" {
		if out.RefreshToken, err = box.SealAnonymous(nil, []byte(refresh), &pub, rand.Reader); err != nil {
			return SealedValue{}, sts.Wrap(sts.Internal, err, "sealing failed")
		}
	}
	return out, nil
}

// withheld records that a delivery whose read is on record (outcome
// success, appended before anything could be disclosed) sealed nothing:
// an event with the same target, outcome failure, and why in its detail,
// so that the trail does not say the value went to a key replaced
// meanwhile. Best effort, detached from the request, whose deadline or
// storage may be what failed (docs/security.md T-177, A-91).
func (s *Service) withheld(ctx context.Context, ev storage.AuditEvent, why error) {
	ev.Outcome, ev.Detail = "failure", "withheld, nothing sealed: "+sts.ErrorMessage(why)
	actx, cancel := storage.Detach(ctx)
	err := s.Audit.Append(actx, ev)
	cancel()
	if err != nil {
		s.logger().WarnContext(ctx, "hosttoken: audit append failed", "action", ev.Action, "target", ev.Target, "error", err)
	}
}

// runnerActive reads the calling runner again, once the read is on
// record and just before sealing: a runner an administrator disabled or
// deleted (say, believing it compromised) since it authenticated, perhaps
// while the audit append waited, is sealed nothing; authentication alone
// would refuse it only from its next call (docs/security.md ).
func (s *Service) runnerActive(ctx context.Context, c Caller) error {
	switch p, err := s.Store.GetPrincipal(ctx, storage.CanonicalID(c.PrincipalID)); {
	case errors.Is(err, storage.ErrNotFound) || (err == nil && (p.Disabled || p.OrgID != c.OrgID || p.Kind != storage.PrincipalRunner)):
		return sts.Errorf(sts.PermissionDenied, "runner %s was disabled or deleted during this read", c.PrincipalID)
	case err != nil:
		return sts.Wrap(sts.Unavailable, err, "storage unavailable")
	}
	return nil
}

// sameKey reads the runner's key again, once the read is on record and
// just before sealing: a rotation (an admin replacing a key whose private
// half leaked) that committed since the key was first read, perhaps
// while the audit append waited, is not undone by a box sealed to the
// key it replaced. The runner asks again and gets the value sealed to
// the new key; the read's event stays, naming the replaced key with
// nothing sealed to it (docs/security.md T-177).
func (s *Service) sameKey(ctx context.Context, c Caller, key storage.RunnerKey) error {
	now, err := s.Store.GetRunnerKey(ctx, key.RunnerID)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return sts.Wrap(sts.Unavailable, err, "storage unavailable")
	}
	if err != nil || now.OrgID != c.OrgID || !bytes.Equal(now.PublicKey, key.PublicKey) {
		return sts.Errorf(sts.Unavailable, "the public key of runner %s changed during this read; ask again", c.PrincipalID)
	}
	return nil
}

// subjectActive refuses a disabled or deleted subject: a suspended
// user's SCM access stops with the user (docs/security.md A-06),
// answered as having no token.
func (s *Service) subjectActive(ctx context.Context, c Caller, in ValueRequest) error {
	switch subj, err := s.Store.GetPrincipal(ctx, storage.CanonicalID(in.PrincipalID)); {
	case errors.Is(err, storage.ErrNotFound) || (err == nil && (subj.Disabled || subj.OrgID != c.OrgID)):
		return sts.Errorf(sts.NotFound, "no host authentication token for principal %s on host %s", in.PrincipalID, in.Host)
	case err != nil:
		return sts.Wrap(sts.Unavailable, err, "storage unavailable")
	}
	return nil
}

// unchanged reads the subject and the token's row again, once the read is
// on record and just before sealing, and returns the row as it is now:
// a suspension or deletion of the subject, a new value stored by its
// owner (a leaked token rotated), or the row deleted or ended (its
// expiresAt set to the past, T-148), that committed since the row was
// read, perhaps while the audit append waited, is not undone by
// delivering what it replaced. A subject gone or disabled is not_found;
// a row whose values changed is unavailable, and the runner asking again
// gets the new ones; a row gone or ended is answered by gone. What is
// delivered carries the row's expiry and SCM account as they are now
// (docs/security.md A-91).
func (s *Service) unchanged(ctx context.Context, c Caller, in ValueRequest, r storage.HostToken) (storage.HostToken, error) {
	if err := s.subjectActive(ctx, c, in); err != nil {
		return r, err
	}
	now, err := s.Store.GetHostToken(ctx, r.ID)
	switch {
	case errors.Is(err, storage.ErrNotFound) || (err == nil && now.Dead(s.now())):
		return r, s.gone(ctx, c, in, r)
	case err != nil:
		return r, sts.Wrap(sts.Unavailable, err, "storage unavailable")
	case !bytes.Equal(now.SealedToken, r.SealedToken) || !bytes.Equal(now.SealedRefresh, r.SealedRefresh):
		return r, sts.Errorf(sts.Unavailable, "host authentication token %s changed during this read; ask again", r.ID)
	}
	return now, nil
}

// gone answers a delivery whose chosen row was deleted or ended while it
// ran: not_found when the subject has no other token for the host on the
// runner, as the runner asking again would be told; unavailable (ask
// again) when it has one, say the replacement its owner stored before
// deleting the old token: not_found is final to a runner, and the next
// call delivers the replacement (docs/security.md A-91).
func (s *Service) gone(ctx context.Context, c Caller, in ValueRequest, r storage.HostToken) error {
	if _, err := s.findForRunner(ctx, c, in); err != nil {
		return err
	}
	return sts.Errorf(sts.Unavailable, "host authentication token %s was replaced during this read; ask again", r.ID)
}

// findForRunner picks the token of principalId for host on the caller
// (the runner), hosts compared by hostKey: among several, the one that expires last (no expiry
// counts as last), then the most recently updated. A token that expired
// with nothing to renew it (storage.HostToken.Dead) is never picked: its
// expiry takes effect at once, not when the garbage collection removes
// the row (docs/security.md T-148).
func (s *Service) findForRunner(ctx context.Context, c Caller, in ValueRequest) (storage.HostToken, error) {
	var best storage.HostToken
	found := false
	now := s.now()
	// Hosts are compared as an HTTP client resolves them (hostKey), not
	// by Unicode case folding, which takes "ς.example" (xn--3xa) for
	// "σ.example" (xn--4xa), two domains (docs/security.md T-228). A row
	// whose host is none (stored before T-229) matches nothing.
	want, _ := hostKey(in.Host)
	f := storage.HostTokenFilter{OrgID: c.OrgID, RunnerID: storage.CanonicalID(c.PrincipalID), SubjectID: storage.CanonicalID(in.PrincipalID), Limit: 200}
	for range 50 { // at most 10 000 tokens of one subject on one runner
		rows, err := s.Store.ListHostTokens(ctx, f)
		if err != nil {
			return best, sts.Wrap(sts.Unavailable, err, "storage unavailable")
		}
		for _, r := range rows {
			if key, ok := hostKey(r.Host); !ok || key != want || r.OrgID != c.OrgID || r.RunnerID != storage.CanonicalID(c.PrincipalID) || r.Dead(now) {
				continue
			}
			if !found || later(r, best) {
				best, found = r, true
			}
		}
		if len(rows) < f.Limit {
			break
		}
		f.AfterID = rows[len(rows)-1].ID
	}
	if !found {
		return best, sts.Errorf(sts.NotFound, "no host authentication token for principal %s on host %s", in.PrincipalID, in.Host)
	}
	return best, nil
}

func later(a, b storage.HostToken) bool {
	switch {
	case a.ExpiresAt.IsZero() != b.ExpiresAt.IsZero():
		return a.ExpiresAt.IsZero()
	case !a.ExpiresAt.Equal(b.ExpiresAt):
		return a.ExpiresAt.After(b.ExpiresAt)
	}
	return a.UpdatedAt.After(b.UpdatedAt)
}

// UpdateMetadata records the SCM account of a token (nil leaves it, ""
// clears it). The caller must be the token's runner (runnerId names it) or
// an organization admin. Codes: Invalid, NotFound, Unavailable.
func (s *Service) UpdateMetadata(ctx context.Context, c Caller, runnerID, id string, externalUserID *string) (Token, error) {
	if err := checkUUID("runnerId", runnerID, true); err != nil {
		return Token{}, err
	}
	if externalUserID != nil {
		if v := *externalUserID; len(v) > MaxExternalUserIDLength || strings.IndexFunc(v, unicode.IsControl) >= 0 {
			return Token{}, invalid("externalUserId must be at most %d printable bytes", MaxExternalUserIDLength)
		}
	}
	r, err := s.load(ctx, c, id)
	if err != nil {
		return Token{}, err
	}
	if r.RunnerID != storage.CanonicalID(runnerID) || (!c.Admin && c.PrincipalID != r.RunnerID) {
		return Token{}, notFound(id)
	}
	var out storage.HostToken
	err = s.changeTx(ctx, c, "host_token.update_metadata", r.ID, "changed external_user_id", func(tx storage.Tx) error {
		return tx.UpdateHostToken(ctx, r.ID, func(old storage.HostToken) (storage.HostToken, error) {
			if !mayAct(c, old) || old.RunnerID != r.RunnerID {
				return old, notFound(id)
			}
			if externalUserID != nil {
				old.ExternalUserID = *externalUserID
			}
			old.UpdatedAt = storage.Now(s.now())
			out = old
			return old, nil
		})
	})
	if err := updateErr(err, id); err != nil {
		return Token{}, err
	}
	return toToken(out, s.subjectKind(ctx, out.SubjectID, nil)), nil
}
