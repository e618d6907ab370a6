package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/opensts/sts/internal/storage"
)

const authCodeColumns = `id, digest, client_id, org_id, principal_id, redirect_uri, challenge, scopes, nonce,
	auth_time, created_at, expires_at, used_at, access_jti, family_id, signed_in_at, resources, session_lineage`

func scanAuthCode(r rowScanner) (storage.AuthCode, error) {
	var c storage.AuthCode
	err := r.Scan(&c.ID, &c.Digest, &c.ClientID, &c.OrgID, &c.PrincipalID, &c.RedirectURI, &c.Challenge,
		jsonCol{&c.Scopes}, &c.Nonce, timeCol{&c.AuthTime}, timeCol{&c.CreatedAt}, timeCol{&c.ExpiresAt},
		timeCol{&c.UsedAt}, &c.AccessJTI, &c.FamilyID, timeCol{&c.SignedInAt}, jsonCol{&c.Resources}, &c.SessionLineage)
	return c, err
}

// CreateAuthCode implements storage.AuthCodeStore.
func (s *Store) CreateAuthCode(ctx context.Context, c storage.AuthCode) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO auth_codes (`+authCodeColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`,
		c.ID, c.Digest, c.ClientID, c.OrgID, c.PrincipalID, c.RedirectURI, c.Challenge, strs(c.Scopes), c.Nonce,
		s.ts(c.AuthTime), s.ts(c.CreatedAt), s.ts(c.ExpiresAt), s.ts(c.UsedAt), c.AccessJTI, c.FamilyID, s.ts(c.SignedInAt), strs(c.Resources), c.SessionLineage)
	return s.fail("create auth code", err)
}

// GetAuthCode implements storage.AuthCodeStore.
func (s *Store) GetAuthCode(ctx context.Context, digest []byte) (storage.AuthCode, error) {
	c, err := scanAuthCode(s.db.QueryRowContext(ctx, `SELECT `+authCodeColumns+` FROM auth_codes WHERE digest = $1`, digest))
	return c, s.fail("get auth code", err)
}

var errCodeUsed = errors.New("auth code already used")

// ConsumeAuthCode implements storage.AuthCodeStore: the row is read and
// marked in one transaction (locked FOR UPDATE on PostgreSQL, an
// IMMEDIATE transaction on SQLite), so exactly one caller sees it unused.
func (s *Store) ConsumeAuthCode(ctx context.Context, digest []byte, now time.Time, jti, familyID string) (storage.AuthCode, error) {
	var before storage.AuthCode
	err := update(ctx, s, nil, "consume auth code", `SELECT `+authCodeColumns+` FROM auth_codes WHERE digest = $1`, []any{digest},
		scanAuthCode, func(old storage.AuthCode) (storage.AuthCode, error) {
			before = old
			if !old.UsedAt.IsZero() {
				return old, errCodeUsed
			}
			old.UsedAt, old.AccessJTI, old.FamilyID = now, jti, familyID
			return old, nil
		}, func(tx *sql.Tx, c storage.AuthCode) error {
			return execOne(ctx, tx, `UPDATE auth_codes SET used_at = $2, access_jti = $3, family_id = $4 WHERE id = $1`,
				c.ID, s.ts(c.UsedAt), c.AccessJTI, c.FamilyID)
		})
	if errors.Is(err, errCodeUsed) {
		return before, nil
	}
	return before, err
}

const consentColumns = `principal_id, client_id, scopes, created_at, updated_at`

func scanConsent(r rowScanner) (storage.Consent, error) {
	var c storage.Consent
	err := r.Scan(&c.PrincipalID, &c.ClientID, jsonCol{&c.Scopes}, timeCol{&c.CreatedAt}, timeCol{&c.UpdatedAt})
	return c, err
}

// PutConsent implements storage.ConsentStore.
func (s *Store) PutConsent(ctx context.Context, c storage.Consent) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO consents (`+consentColumns+`) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (principal_id, client_id) DO UPDATE SET scopes = excluded.scopes, updated_at = excluded.updated_at`,
		c.PrincipalID, c.ClientID, strs(c.Scopes), s.ts(c.CreatedAt), s.ts(c.UpdatedAt))
	return s.fail("put consent", err)
}

// GetConsent implements storage.ConsentStore.
func (s *Store) GetConsent(ctx context.Context, principalID, clientID string) (storage.Consent, error) {
	if unstorable(principalID, clientID) {
		return storage.Consent{}, errUnstorable
	}
	c, err := scanConsent(s.db.QueryRowContext(ctx, `SELECT `+consentColumns+` FROM consents
		WHERE principal_id = $1 AND client_id = $2`, principalID, clientID))
	return c, s.fail("get consent", err)
}

// ListConsents implements storage.ConsentStore.
func (s *Store) ListConsents(ctx context.Context, principalID string) ([]storage.Consent, error) {
	return queryList(ctx, s, "list consents", `SELECT `+consentColumns+` FROM consents
		WHERE principal_id = $1 ORDER BY client_id`, scanConsent, principalID)
}

// DeleteConsent implements storage.ConsentStore.
func (s *Store) DeleteConsent(ctx context.Context, principalID, clientID string) error {
	if unstorable(principalID, clientID) {
		return errUnstorable
	}
	return s.fail("delete consent", execOne(ctx, s.db, `DELETE FROM consents WHERE principal_id = $1 AND client_id = $2`,
		principalID, clientID))
}
