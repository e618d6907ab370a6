package signer

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/opensts/sts/internal/seal"
	"github.com/opensts/sts/internal/storage"
)

// ActionRestore is the audit action of the step that follows a restore
// from a backup ([FreshKeySet]; docs/operations.md "Restore",
// docs/security.md F-61).
const ActionRestore = "instance.restore"

// FreshKeySet returns a new key set: for cfg.Algorithm and each of extra,
// one key that signs from now and one next key, sealed under keyring.
// It replaces the whole stored set after a restore, so that no key of the
// backup, revoked since or not, is published or trusted again, and no
// token signed before the restore, legitimate or forged, verifies
// (docs/security.md F-61).
func FreshKeySet(cfg Config, keyring *seal.Keyring, now time.Time, extra ...string) ([]storage.SigningKey, error) {
	cfg = cfg.withDefaults()
	now = storage.Now(now)
	var out []storage.SigningKey
	for _, alg := range append([]string{cfg.Algorithm}, extra...) {
		for _, state := range []storage.KeyState{storage.KeyActive, storage.KeyNext} {
			k, _, err := newKeyRow(alg, cfg.RSABits, keyring, now)
			if err != nil {
				return nil, err
			}
			if state == storage.KeyActive {
				k.State, k.ActivatedAt = storage.KeyActive, now
			}
			out = append(out, k)
		}
	}
	return out, nil
}

// CheckRestoredKeys returns an error when keyring lacks the master key
// of a key of a restored set that could still sign (active or next): the
// master key the backup was sealed under is not configured, so the rest
// of the backup's sealed rows (the digest pepper, host tokens) would not
// open either. Retired keys keep no private half.
func CheckRestoredKeys(rows []storage.SigningKey, keyring *seal.Keyring) error {
	for _, r := range rows {
		if r.State == storage.KeyRetired {
			continue
		}
		if keyring == nil {
			return &SealedError{KeyID: r.ID, MasterKeyID: r.MasterKeyID, Err: ErrNoMasterKey}
		}
		if !keyring.Has(r.MasterKeyID) {
			return &SealedError{KeyID: r.ID, MasterKeyID: r.MasterKeyID, Err: seal.ErrUnknownKey}
		}
	}
	return nil
}

// RestoreEvent is the audit record of the step after a restore: actor,
// the backup's name (a file name, never its contents), the time the
// backup recorded itself (instance.backup, zero when it holds none) and
// that of the newest event it holds, the kids removed and those that
// replace them, and what the restore ended (docs/security.md F-61, F-62).
// No key material.
func RestoreEvent(actor, backup string, taken, newest time.Time, old, fresh []storage.SigningKey, n storage.RestoreCounts, now time.Time) storage.AuditEvent {
	ids := func(ks []storage.SigningKey) string {
		s := make([]string, 0, len(ks))
		for _, k := range ks {
			s = append(s, k.ID)
		}
		slices.Sort(s)
		return strings.Join(s, ",")
	}
	text := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	detail := fmt.Sprintf("backup=%s backup_time=%s newest_event=%s revoked_keys=%s new_keys=%s refresh_tokens_revoked=%d"+
		" exchange_tokens_deleted=%d auth_codes_deleted=%d login_links_deleted=%d web_sessions_deleted=%d",
		backup, text(taken), text(newest), ids(old), ids(fresh), n.RefreshTokens,
		n.ExchangeTokens, n.AuthCodes, n.LoginLinks, n.WebSessions)
	return storage.AuditEvent{
		ID: storage.NewID(), Time: storage.Now(now), Actor: actor, Action: ActionRestore,
		Target: "instance", Outcome: "success", Detail: detail,
	}
}
