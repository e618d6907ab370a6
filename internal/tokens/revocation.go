package tokens

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// RevocationChecker says whether the token with claims c has been
// revoked: by its jti, by its grant (the refresh-token family it came
// from), because every token of its subject issued up to some time was,
// or, for a person's token issued to a client, every token of that client
// for that person (a withdrawn consent). Implementations must be safe to
// call concurrently.
type RevocationChecker interface {
	IsRevoked(ctx context.Context, c *AccessClaims) (bool, error)
}

// StoreRevocations is the [RevocationChecker] over storage: rows
// "jti:<jti>" revoke one token, rows "grant:<family>" every token of a
// refresh-token family, rows "sub:<sub>" every token of the subject
// issued at or before IssuedBefore, and rows "client_sub:…" every token
// of one client for one person issued at or before IssuedBefore.
type StoreRevocations struct {
	Store storage.RevocationStore
}

// RevocationIDJTI is the revocation row ID of one access token.
func RevocationIDJTI(jti string) string { return revocationPrefixJTI + jti }

const revocationPrefixJTI = "jti:"

// RevocationIDSubject is the revocation row ID of all tokens of a subject.
func RevocationIDSubject(sub string) string { return revocationPrefixSubject + sub }

const revocationPrefixSubject = "sub:"

// RevocationIDGrant is the revocation row ID of every access token of a
// refresh-token family (the grant_id claim).
func RevocationIDGrant(family string) string { return revocationPrefixGrant + family }

const revocationPrefixGrant = "grant:"

// appendPoolRevocationIDs appends the pool and provider rows of every
// pool c was exchanged through, its own and its src_pool entries: the
// rows a deletion leaves (storage.PoolRevocation, docs/security.md A-54).
func appendPoolRevocationIDs(ids []string, c *AccessClaims) []string {
	if c.Pool != "" {
		ids = append(ids, storage.RevocationIDPool(c.Pool), storage.RevocationIDProvider(c.Pool, c.Provider))
	}
	for _, e := range c.SourcePools {
		pool, provider, _ := strings.Cut(e, "/")
		ids = append(ids, storage.RevocationIDPool(pool), storage.RevocationIDProvider(pool, provider))
	}
	return ids
}

// RevocationIDClientSubject is the revocation row ID of every token a
// client holds for one person (a withdrawn consent). The client ID's
// length keeps the pair unambiguous whatever either contains.
func RevocationIDClientSubject(client, sub string) string {
	return revocationPrefixClientSubject + strconv.Itoa(len(client)) + ":" + client + ":" + sub
}

const revocationPrefixClientSubject = "client_sub:"

// ClientSubjectRevocation is the row that ends every token client was
// issued for the person sub up to now, kept for keep (see
// [RevocationKeep]). A token issued after it (the person consents again)
// is not affected.
func ClientSubjectRevocation(client, sub, reason string, now time.Time, keep time.Duration) storage.Revocation {
	return storage.Revocation{ID: RevocationIDClientSubject(client, sub), IssuedBefore: storage.Now(now), Reason: reason,
		CreatedAt: storage.Now(now), ExpiresAt: storage.Now(now.Add(RevocationKeep(keep)))}
}

// RevocationKeep is how long a row that ends every token issued before it
// must be kept: the longest any token lives (keys.max_token_lifetime)
// plus the leeway, after which every such token has expired. keep ≤ 0
// means DefaultMaxLifetime plus DefaultLeeway, right for the default
// configuration only; serve passes its own.
func RevocationKeep(keep time.Duration) time.Duration {
	if keep <= 0 {
		return DefaultMaxLifetime + DefaultLeeway
	}
	return keep
}

// GrantRevocation is the row that ends the access tokens of a revoked
// refresh-token family, kept for keep ([RevocationKeep]): no token is
// minted from the family after it is revoked, so past that every token
// the family minted has expired.
func GrantRevocation(family, reason string, now time.Time, keep time.Duration) storage.Revocation {
	return storage.Revocation{ID: RevocationIDGrant(family), Reason: reason, CreatedAt: storage.Now(now),
		ExpiresAt: storage.Now(now.Add(RevocationKeep(keep)))}
}

// IsRevoked implements [RevocationChecker]. iat has whole-second precision
// (NumericDate), so a subject revocation also covers tokens issued in the
// same second as IssuedBefore: fail closed rather than let a token minted a
// moment before the revocation through. The rows are read in one storage
// lookup, on every call: a revocation is seen at once (docs/design.md#storage-and-replicas).
func (s StoreRevocations) IsRevoked(ctx context.Context, c *AccessClaims) (bool, error) {
	jtiID, subID, grantID, clientSubID := RevocationIDJTI(c.ID), RevocationIDSubject(c.Subject), "", ""
	// jti, sub, grant, client_sub, pool, provider, and one row per source.
	n := 6 + len(c.SourceJTIs) + len(c.SourceClientIDs) + len(c.SourceGrants) + len(c.SourceSubjects) + 2*len(c.SourcePools)
	ids := append(make([]string, 0, n), jtiID, subID)
	if c.GrantID != "" {
		grantID = RevocationIDGrant(c.GrantID)
		ids = append(ids, grantID)
	}
	person := c.Principal == string(storage.PrincipalUser)
	if c.ClientID != "" && person {
		// Consents are a person's: only their tokens pay for this row.
		clientSubID = RevocationIDClientSubject(c.ClientID, c.Subject)
		ids = append(ids, clientSubID)
	}
	if person {
		// A consent withdrawn from a client ends what another client
		// re-exchanged its tokens for (src_client_id).
		for _, id := range c.SourceClientIDs {
			ids = append(ids, RevocationIDClientSubject(id, c.Subject))
		}
	}
	for _, j := range c.SourceJTIs {
		// A token exchanged from a revoked one ends with it.
		ids = append(ids, RevocationIDJTI(j))
	}
	// And with the families and principals its actors derive from
	// (src_grant, src_sub; docs/security.md A-46).
	for _, g := range c.SourceGrants {
		ids = append(ids, RevocationIDGrant(g))
	}
	for _, sub := range c.SourceSubjects {
		ids = append(ids, RevocationIDSubject(sub))
	}
	// And with a pool or provider deleted since.
	ids = appendPoolRevocationIDs(ids, c)
	iat := c.IssuedAt.Time()
	rs, err := s.Store.GetRevocations(ctx, ids...)
	if err != nil {
		return false, fmt.Errorf("tokens: revocation check: %w", err)
	}
	for _, r := range rs {
		switch r.ID {
		case jtiID, grantID:
			return true, nil
		case subID, clientSubID:
			if !iat.After(r.IssuedBefore) {
				return true, nil
			}
		default:
			if storage.IsPoolRevocation(r.ID) && !iat.After(r.IssuedBefore) {
				return true, nil // a pool or provider it came through, deleted since
			}
			if j, ok := strings.CutPrefix(r.ID, revocationPrefixJTI); ok && slices.Contains(c.SourceJTIs, j) {
				return true, nil // a token it was exchanged from
			}
			if g, ok := strings.CutPrefix(r.ID, revocationPrefixGrant); ok && slices.Contains(c.SourceGrants, g) {
				return true, nil // a family an actor of it came from
			}
			if sub, ok := strings.CutPrefix(r.ID, revocationPrefixSubject); ok && !iat.After(r.IssuedBefore) && slices.Contains(c.SourceSubjects, sub) {
				return true, nil // every token of an actor of it, up to then
			}
			if person && !iat.After(r.IssuedBefore) && slices.ContainsFunc(c.SourceClientIDs, func(id string) bool {
				return r.ID == RevocationIDClientSubject(id, c.Subject)
			}) {
				return true, nil // a consent withdrawn from a client it came from
			}
		}
	}
	return false, nil
}

// FamilySourceRevoked reports whether what a refresh-token family was
// begun from has been revoked since, c being the family's claim template:
// one of our tokens it was exchanged from (src_jti), the earlier family
// that token belonged to (grant_id, when it is not the family's own), or
// an actor's family or every token of an actor (src_grant, src_sub: a
// sub: row up to the family's beginning, as below; docs/security.md
// A-46), or a person's consent withdrawn from a client in src_client_id
// . The
// refresh grant and introspection refuse such a family: every token it
// minted would be refused anyway (docs/security.md A-36). A pool or
// provider it came through that was deleted after the family was begun
// ends it too, so a pool created again under the same ID does not bring
// it back. created is the current refresh token's creation; when
// a row is younger, the family's first token (its ID is family) is read
// from s, when s can, for the family's beginning.
// The family's own grant: row ends it as well, whatever its refresh
// tokens' revoked flag says (docs/security.md T-111).
func FamilySourceRevoked(ctx context.Context, s storage.RevocationStore, c *AccessClaims, family string, created time.Time) (bool, error) {
	ids := make([]string, 0, len(c.SourceJTIs)+len(c.SourceGrants)+2*len(c.SourcePools)+len(c.SourceSubjects)+4)
	for _, j := range c.SourceJTIs {
		ids = append(ids, RevocationIDJTI(j))
	}
	for _, g := range c.SourceGrants {
		ids = append(ids, RevocationIDGrant(g))
	}
	ids = appendPoolRevocationIDs(ids, c)
	for _, sub := range c.SourceSubjects {
		ids = append(ids, RevocationIDSubject(sub))
	}
	// A person's consent withdrawn from a client a token it was begun
	// from was issued to (src_client_id): that client's families end with
	// it (RevokeRefreshClientSubject), and so does one another client
	// began by re-exchanging its token (docs/security.md A-75).
	person := c.Principal == string(storage.PrincipalUser)
	if person {
		for _, id := range c.SourceClientIDs {
			ids = append(ids, RevocationIDClientSubject(id, c.Subject))
		}
	}
	if c.GrantID != "" && c.GrantID != family {
		ids = append(ids, RevocationIDGrant(c.GrantID))
	}
	// The family's own row: a replayed authorization code revokes by the
	// family's ID a family that may be stored only after (docs/security.md
	// T-111), so the row, not the rows' revoked flag, is what ends it.
	ids = append(ids, RevocationIDGrant(family))
	rs, err := s.GetRevocations(ctx, ids...)
	if err != nil {
		return false, fmt.Errorf("tokens: revocation check: %w", err)
	}
	rooted := false // created is the family's first token's creation
	for _, r := range rs {
		// A pool's, a provider's, an actor's or a withdrawn consent's row
		// ends what was issued up to it: the family, if it was begun by
		// then. A rotation since does not count: a family rotated in the
		// moments before a row is seen (another process's, read within
		// 2 s on SQLite) would otherwise outlive it (docs/security.md
		// The first token is read only when a row is younger than
		// the current one.
		timed := storage.IsPoolRevocation(r.ID) || strings.HasPrefix(r.ID, revocationPrefixSubject) ||
			strings.HasPrefix(r.ID, revocationPrefixClientSubject)
		if !timed {
			return true, nil
		}
		if created.After(r.IssuedBefore) && !rooted {
			rooted = true
			if fs, ok := s.(familyStore); ok && family != "" {
				switch root, err := fs.GetRefreshToken(ctx, family); {
				case err == nil && root.FamilyID == family:
					created = root.CreatedAt
				case err != nil && !errors.Is(err, storage.ErrNotFound):
					return false, fmt.Errorf("tokens: revocation check: %w", err)
				}
			}
		}
		if !created.After(r.IssuedBefore) {
			return true, nil
		}
	}
	return false, nil
}

// familyStore reads a family's first refresh token, whose ID is the
// family's (FamilySourceRevoked).
type familyStore interface {
	GetRefreshToken(ctx context.Context, id string) (storage.RefreshToken, error)
}
