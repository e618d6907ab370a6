package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"time"
)

// Sentinels returned (wrapped) by every backend. Test them with errors.Is.
var (
	// ErrNotFound means the record does not exist (or, for consume-style
	// calls, is no longer usable).
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists means a record with the same identity or unique key
	// (for example the same digest) already exists.
	ErrAlreadyExists = errors.New("already exists")
	// ErrReadOnly means the backend refused a write because the database
	// or its storage is read-only (a read-only file or session, a hot
	// standby).
	ErrReadOnly = errors.New("read-only")
	// ErrFull means the backend refused a write because its disk (or a
	// size limit) is full.
	ErrFull = errors.New("disk full")
	// ErrNotEmpty means DeleteOrganization found a principal, client or
	// pool still in the organization; nothing was deleted.
	ErrNotEmpty = errors.New("not empty")
)

// Store is everything a backend implements. Implementations must be safe to
// call concurrently.
type Store interface {
	OrganizationStore
	PrincipalStore
	TrustStore
	ClientStore
	KeyStore
	RevocationStore
	PATStore
	ExchangeTokenStore
	RefreshTokenStore
	HostTokenStore
	RunnerKeyStore
	AuditStore
	ReplayStore
	ServerSecretStore
	SessionStore
	UpstreamIdentityStore
	UnitOfWork
	AuthCodeStore
	ConsentStore

	// GarbageCollect removes rows that expired before now and reports how
	// many of each kind it removed; with an error, how many it removed
	// before it (those stay removed).
	GarbageCollect(ctx context.Context, now time.Time) (GCResult, error)
	// Health reports nil when the backend is reachable and its schema is
	// current; otherwise an error that says which.
	Health(ctx context.Context) error
	// ProbeWrite commits one small write, p's row in a table of its own
	// (inserted, or updated when p.ID probed before), and reports nil once
	// it is durable: proof that the write path works, which Health (a
	// read) does not give (docs/reliability.md#write-path-readiness). A
	// read-only or full database fails it with an error wrapping
	// ErrReadOnly or ErrFull, a write that waited out a lock or a
	// statement timeout with one wrapping context.DeadlineExceeded. It
	// also fails with ErrFull, though its own commit succeeded, when any
	// write failed for lack of space since the previous probe began: on a
	// full disk the probe's small row still fits where most writes do not.
	ProbeWrite(ctx context.Context, p WriteProbe) error
	// Close releases the backend's resources.
	Close() error
}

// GCResult counts the rows one GarbageCollect removed.
type GCResult struct {
	ExchangeTokens int64
	RefreshTokens  int64
	Revocations    int64
	UsedJTIs       int64
	HostTokens     int64
	WebSessions    int64
	LoginLinks     int64
	AuthCodes      int64
	WriteProbes    int64
}

// WriteProbe is one process's write-path probe: ID is random per process
// (NewID), At the time of the probe. GarbageCollect removes the probes of
// processes silent for WriteProbeRetention.
type WriteProbe struct {
	ID string
	At time.Time
}

// WriteProbeRetention is how long a process's last write probe is kept.
const WriteProbeRetention = 24 * time.Hour

// IsEmpty reports whether nothing was removed.
func (r GCResult) IsEmpty() bool { return r == GCResult{} }

// NewID returns a random RFC 9562 version 4 UUID in its canonical text form,
// drawn from crypto/rand. Callers generate IDs; backends never do.
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand.Read never fails on supported platforms (Go 1.24+).
		panic(err)
	}
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	return FormatUUID(b)
}

// IsUUID reports whether s is a UUID in canonical 8-4-4-4-12 hex form,
// the form of every ID [NewID] makes.
func IsUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
				return false
			}
		}
	}
	return true
}

// CanonicalID is an ID a client sent, as sts stores it: one in UUID form
// (IsUUID) in lower case, anything else as sent. Every ID sts makes is a
// lower-case UUID ([NewID]), and a UUID names the same value whatever the
// case of its hex digits, so the APIs (Gitpod's and sts.v1's) and the
// host-token vault lower one before comparing or looking it up: this is
// their one rule (docs/security.md T-210). An ID that is not a UUID names
// nothing sts made and is left for the lookup to not find.
func CanonicalID(id string) string {
	if IsUUID(id) {
		return strings.ToLower(id)
	}
	return id
}

// FormatUUID returns b in the canonical 8-4-4-4-12 hexadecimal form, with
// one allocation (fmt took six; IDs are made for every audit event).
func FormatUUID(b [16]byte) string {
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:36], b[10:16])
	return string(s[:])
}

// Now returns t in UTC truncated to microseconds, the precision both
// SQLite and PostgreSQL keep. Records built with it round-trip exactly.
func Now(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
