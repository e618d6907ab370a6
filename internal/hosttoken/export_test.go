package hosttoken

import (
	"context"
	"time"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// Value is what the tests read back: the plaintext of a row. The service
// itself never returns plaintext (runners get it sealed, RunnerValue).
type Value struct {
	TokenID      string
	Token        string
	RefreshToken string
	ExpiresAt    time.Time
}

// Value opens a row for a caller who may act on it, audited like a real
// read, so the tests can check what is stored and who could act on it.
func (s *Service) Value(ctx context.Context, c Caller, id string) (Value, error) {
	r, err := s.load(ctx, c, id)
	if err != nil {
		return Value{}, err
	}
	tok, refresh, err := s.openValues(ctx, r)
	if err != nil {
		return Value{}, err
	}
	ev := storage.AuditEvent{OrgID: r.OrgID, Actor: c.actor(), Action: "host_token.read_value",
		Target: "host_token:" + r.ID, RequestID: c.RequestID, Outcome: "success"}
	if err := s.Audit.Append(ctx, ev); err != nil {
		return Value{}, sts.Wrap(sts.Unavailable, err, "audit log unavailable")
	}
	return Value{TokenID: r.ID, Token: tok, RefreshToken: refresh, ExpiresAt: r.ExpiresAt}, nil
}

// AAD is the associated data of field of r under r.SealVersion, for the
// tests that write rows of earlier seal versions.
func AAD(r storage.HostToken, field string) []byte { return aad(r, field) }

// SealCurrent is the seal version every write uses.
const SealCurrent = sealCurrent

// RefreshOne claims and refreshes one token as a poll would, so a test can
// change the token's owners between the listing and the claim.
func (r *Refresher) RefreshOne(ctx context.Context, id string) error {
	t, err := r.Service.Store.GetHostToken(ctx, id)
	if err != nil {
		return err
	}
	return r.refreshOne(ctx, t)
}
