package signer

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// ErrNextNotReady is returned by [Manager.Rotate] when the next key has
// been published for less than the publish-ahead window, so verifiers that
// cache our JWKS might not know it yet. [Manager.ForceRotate] skips the
// check.
var ErrNextNotReady = errors.New("signer: next key not published long enough")

// errAlreadyRotated aborts an update whose rotation another caller (this or
// another replica) has already done: the set no longer has the active key
// the caller saw. Like dex's errAlreadyRotated it turns N concurrent
// rotations into exactly one.
var errAlreadyRotated = errors.New("signer: already rotated")

// errNothingToDo aborts an update that would not change the set.
var errNothingToDo = errors.New("signer: nothing to do")

// Rotation reports what one rotation did.
type Rotation struct {
	// Algorithm is the algorithm of the keys this rotation acted on.
	Algorithm string
	// Rotated reports that a key became active.
	Rotated bool
	// AlreadyRotated reports that another caller (here or on another
	// replica) had rotated first: the set no longer had the active key this
	// caller saw, and this call changed nothing.
	AlreadyRotated bool
	// Activated is the kid that became active ("" if none).
	Activated string
	// Retired is the kid that stopped signing ("" if none).
	Retired string
	// Next is the kid of the newly generated next key ("" if none).
	Next string
	// Deleted lists retired kids dropped because DeleteAfter had passed.
	Deleted []string
}

// ActionRotate is the audit action of every rotation: on demand
// ([Manager.RotateEach]) and scheduled ([Manager.Tick], see
// [ScheduledEvents]).
const ActionRotate = "signing_key.rotate"

// ActorScheduler is the audit actor of a rotation made by the schedule
// (keys.rotation_period) rather than by a person.
const ActorScheduler = "system:scheduler"

// AuditEvent is the audit record of r, a rotation made by actor (with
// force when forced). It names kids only, never key material.
func (r Rotation) AuditEvent(actor, requestID string, force bool, now time.Time) storage.AuditEvent {
	detail := fmt.Sprintf("force=%t activated=%s retired=%s next=%s", force, r.Activated, r.Retired, r.Next)
	if r.Algorithm != "" {
		detail += " alg=" + r.Algorithm
	}
	if len(r.Deleted) > 0 {
		detail += " deleted=" + strings.Join(r.Deleted, ",")
	}
	target := r.Activated
	if target == "" {
		target = r.Next
	}
	if target == "" && len(r.Deleted) > 0 {
		target = r.Deleted[0]
	}
	return storage.AuditEvent{
		ID: storage.NewID(), Time: storage.Now(now), Actor: actor, Action: ActionRotate,
		Target: "signing_key:" + target, RequestID: requestID, Outcome: "success", Detail: detail,
	}
}

// rotateMode says how strict a rotation is about schedule and publication.
type rotateMode int

const (
	modeScheduled rotateMode = iota // only when due and the next key is published long enough
	modeOnDemand                    // now, if the next key is published long enough
	modeForced                      // now, even if the next key is brand new
)

// plan computes the new key set from old. It is a pure function of its
// arguments because UpdateSigningKeys may run it more than once. fresh holds
// pre-generated rows in state next (two when expectActive is "", else one).
type plan struct {
	now          time.Time
	expectActive string // the active kid the caller saw; "" for none
	mode         rotateMode
	period       time.Duration
	publishAhead time.Duration
	retainFor    time.Duration
	fresh        []storage.SigningKey
}

func (p plan) apply(old []storage.SigningKey) ([]storage.SigningKey, Rotation, error) {
	now := storage.Now(p.now)
	var res Rotation
	activeIdx, nextIdx := -1, -1
	for i, k := range old {
		switch k.State {
		case storage.KeyActive:
			if activeIdx >= 0 {
				return nil, res, fmt.Errorf("signer: two active keys %s and %s", old[activeIdx].ID, k.ID)
			}
			activeIdx = i
		case storage.KeyNext:
			if nextIdx >= 0 {
				return nil, res, fmt.Errorf("signer: two next keys %s and %s", old[nextIdx].ID, k.ID)
			}
			nextIdx = i
		}
	}
	current := ""
	if activeIdx >= 0 {
		current = old[activeIdx].ID
	}
	if current != p.expectActive {
		return nil, res, errAlreadyRotated
	}

	out := make([]storage.SigningKey, 0, len(old)+2)
	fresh := p.fresh
	takeFresh := func() (storage.SigningKey, error) {
		if len(fresh) == 0 {
			// Defense in depth: the caller sizes fresh from the same state
			// that passed the expectActive check above.
			return storage.SigningKey{}, errAlreadyRotated
		}
		k := fresh[0]
		fresh = fresh[1:]
		return k, nil
	}
	activate := func(k storage.SigningKey) storage.SigningKey {
		k.State = storage.KeyActive
		k.ActivatedAt = now
		res.Activated = k.ID
		return k
	}
	changed := false

	switch {
	case activeIdx < 0:
		// Nothing signs yet (a fresh set): the first key becomes active at
		// once; there is no token for any verifier to have cached a JWKS
		// for. A next key is published beside it.
		for i, k := range old {
			if i != nextIdx {
				out = append(out, k)
			}
		}
		var first storage.SigningKey
		if nextIdx >= 0 {
			first = old[nextIdx]
		} else {
			k, err := takeFresh()
			if err != nil {
				return nil, res, err
			}
			first = k
		}
		out = append(out, activate(first))
		k, err := takeFresh()
		if err != nil {
			return nil, res, err
		}
		out = append(out, k)
		res.Next = k.ID
		changed = true
	default:
		active := old[activeIdx]
		rotate := p.mode == modeOnDemand || p.mode == modeForced ||
			(p.mode == modeScheduled && !now.Before(active.ActivatedAt.Add(p.period)))
		if rotate && nextIdx >= 0 && p.mode != modeForced && now.Sub(old[nextIdx].CreatedAt) < p.publishAhead {
			if p.mode == modeOnDemand {
				return nil, res, fmt.Errorf("%w: key %s was published at %s and may sign from %s",
					ErrNextNotReady, old[nextIdx].ID, old[nextIdx].CreatedAt.Format(time.RFC3339), old[nextIdx].CreatedAt.Add(p.publishAhead).Format(time.RFC3339))
			}
			rotate = false // scheduled: wait until it is published long enough
		}
		if rotate && nextIdx < 0 {
			// No next key to promote (should not happen: every rotation
			// leaves one). Publish one now; it may sign after publish-ahead.
			rotate = false
		}
		for i, k := range old {
			switch {
			case rotate && i == activeIdx:
				k.State = storage.KeyRetired
				k.RetiredAt = now
				k.DeleteAfter = now.Add(p.retainFor)
				// A retired key never signs again: drop its private half
				// so a later master-key compromise cannot reach it.
				k.Sealed, k.MasterKeyID = nil, ""
				res.Retired = k.ID
			case rotate && i == nextIdx:
				k = activate(k)
			}
			out = append(out, k)
		}
		if rotate || nextIdx < 0 {
			k, err := takeFresh()
			if err != nil {
				return nil, res, err
			}
			out = append(out, k)
			res.Next = k.ID
			changed = true
		}
	}

	// Drop retired keys whose every token has expired (plus leeway).
	kept := out[:0]
	for _, k := range out {
		if k.State == storage.KeyRetired && !now.Before(k.DeleteAfter) {
			res.Deleted = append(res.Deleted, k.ID)
			changed = true
			continue
		}
		kept = append(kept, k)
	}
	if !changed {
		return nil, res, errNothingToDo
	}
	res.Rotated = res.Activated != ""
	return kept, res, nil
}

// EventFunc builds the audit event of a change of the key set; the
// change and the event commit together.
type EventFunc func(Rotation) storage.AuditEvent

// ScheduledEvents is the [Manager.ScheduledEvent] that records each change
// the schedule makes as [ActionRotate] by [ActorScheduler], through the
// same [Rotation.AuditEvent] as an on-demand one.
func ScheduledEvents(now func() time.Time) EventFunc {
	return func(r Rotation) storage.AuditEvent {
		return r.AuditEvent(ActorScheduler, "", false, now())
	}
}
