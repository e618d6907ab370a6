package audit

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// Page sizes of [List].
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// maxFieldLen bounds each exact-match filter; stored values are IDs,
// action names and short labels.
const maxFieldLen = 512

// maxTokenLen bounds a page token before it is decoded.
const maxTokenLen = 512

// Query asks for one page of audit events, newest first. The string
// fields match exactly; empty ones match everything. sts.v1.AuditService
// and `sts audit list` both read through [List], so they accept and refuse
// the same queries.
type Query struct {
	OrgID     string
	Actor     string
	Action    string
	Target    string
	Outcome   string
	RequestID string
	Since     time.Time // inclusive; zero: from the beginning
	Until     time.Time // exclusive; zero: up to now
	// PageSize is how many events a page holds at most: zero means
	// DefaultPageSize, more than MaxPageSize means MaxPageSize.
	PageSize int
	// PageToken is the NextPageToken of the previous page; the other
	// fields must be the same as in the request that returned it.
	PageToken string
}

// Page is one page of events.
type Page struct {
	Events []storage.AuditEvent
	// NextPageToken continues the listing; "" on the last page.
	NextPageToken string
}

// QueryError is a query [List] refuses; its message names the field and
// is safe to show the caller.
type QueryError struct {
	Field  string
	Reason string
}

func (e *QueryError) Error() string { return e.Field + ": " + e.Reason }

// pageToken is the decoded page token: the position of the last event
// returned and a digest of the filter it belongs to.
type pageToken struct {
	Time   int64  `json:"t"` // unix microseconds; 0 for an event without a time
	ID     string `json:"i"`
	Filter string `json:"f"`
}

// List returns one page of the events q selects. It fetches one event more
// than the page holds to know whether another page follows, so the last
// page never comes with a token that leads to an empty one. Errors: a
// [*QueryError] for a bad query; otherwise the store's error.
func List(ctx context.Context, store storage.AuditStore, q Query) (Page, error) {
	q = q.canonical()
	f, size, err := q.filter()
	if err != nil {
		return Page{}, err
	}
	f.Limit = size + 1
	evs, err := store.ListAudit(ctx, f)
	if err != nil {
		return Page{}, err
	}
	p := Page{Events: evs}
	if len(evs) > size {
		p.Events = evs[:size]
		last := p.Events[size-1]
		p.NextPageToken = encodeToken(pageToken{Time: micros(last.Time), ID: last.ID, Filter: q.digest()})
	}
	return p, nil
}

// canonical is q with the UUIDs it names lowered (storage.CanonicalID):
// the organization, and the ID of an actor's or target's kind:id. A UUID
// names the same record in any case (docs/security.md T-210), and events
// are written with lower-case ones, so a filter in upper case found
// nothing (T-215). Page tokens digest the lowered filters, so either
// spelling continues the other's listing.
//
// A subject target is the exception: a revoked subject is a
// case-sensitive string, and one in UUID form that names no principal (a
// pool's subject) is revoked, and its event written, as sent (T-210). It
// is kept as sent, and filter matches its lower-case spelling as well
// (subjectAsPrincipal), which a principal's ID sent in upper case was
// revoked, and written, under.
func (q Query) canonical() Query {
	ref := func(s string) string {
		if kind, id, ok := strings.Cut(s, ":"); ok && kind != targetSubject {
			return kind + ":" + storage.CanonicalID(id)
		}
		return s
	}
	q.OrgID, q.Actor, q.Target = storage.CanonicalID(q.OrgID), ref(q.Actor), ref(q.Target)
	return q
}

// targetSubject is the kind of a revoked subject's target ("subject:<sub>").
const targetSubject = "subject"

// subjectAsPrincipal is the other spelling a subject target filter
// matches: the lower-case one of a UUID-form subject sent in upper case,
// under which the revocation of that principal was written (T-210,
// T-215); nil for any other target.
func subjectAsPrincipal(target string) []string {
	kind, id, ok := strings.Cut(target, ":")
	if !ok || kind != targetSubject {
		return nil
	}
	if low := storage.CanonicalID(id); low != id {
		return []string{kind + ":" + low}
	}
	return nil
}

// filter validates q and returns its storage filter and page size.
func (q Query) filter() (storage.AuditFilter, int, error) {
	for _, fv := range []struct{ name, v string }{
		{"organization_id", q.OrgID}, {"actor", q.Actor}, {"action", q.Action},
		{"target", q.Target}, {"outcome", q.Outcome}, {"request_id", q.RequestID},
	} {
		if len(fv.v) > maxFieldLen {
			return storage.AuditFilter{}, 0, &QueryError{fv.name, fmt.Sprintf("at most %d bytes", maxFieldLen)}
		}
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Until.After(q.Since) {
		return storage.AuditFilter{}, 0, &QueryError{"until", "must be after since"}
	}
	size := q.PageSize
	switch {
	case size < 0:
		return storage.AuditFilter{}, 0, &QueryError{"page_size", "must not be negative"}
	case size == 0:
		size = DefaultPageSize
	case size > MaxPageSize:
		size = MaxPageSize
	}
	f := storage.AuditFilter{
		OrgID: q.OrgID, Actor: q.Actor, Action: q.Action, Target: q.Target, OldTargets: append(OldTargets(q.Target), subjectAsPrincipal(q.Target)...),
		Outcome: q.Outcome, RequestID: q.RequestID,
		Since: q.Since, Until: q.Until,
	}
	if q.PageToken != "" {
		tok, err := decodeToken(q.PageToken)
		if err != nil {
			return storage.AuditFilter{}, 0, err
		}
		if tok.Filter != q.digest() {
			return storage.AuditFilter{}, 0, &QueryError{"page_token", "was issued for other filters; repeat the filters of the first request"}
		}
		pos := storage.AuditPosition{ID: tok.ID}
		if tok.Time != 0 {
			pos.Time = time.UnixMicro(tok.Time).UTC()
		}
		f.After = &pos
	}
	return f, size, nil
}

// digest identifies q's filters (not its page fields) in its page tokens,
// so a token cannot silently continue a different listing.
func (q Query) digest() string {
	h := sha256.New()
	for _, s := range []string{q.OrgID, q.Actor, q.Action, q.Target, q.Outcome, q.RequestID,
		strconv.FormatInt(micros(q.Since), 10), strconv.FormatInt(micros(q.Until), 10)} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:12])
}

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// encodeToken makes the opaque page token. It is not secret or signed:
// it only names a position in a listing the caller may read anyway.
func encodeToken(t pageToken) string {
	b, _ := json.Marshal(t) // a struct of strings and ints always marshals
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeToken(s string) (pageToken, error) {
	bad := &QueryError{"page_token", "malformed"}
	if len(s) > maxTokenLen {
		return pageToken{}, bad
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return pageToken{}, bad
	}
	var t pageToken
	if err := json.Unmarshal(b, &t); err != nil || t.ID == "" || t.Filter == "" || t.Time < 0 {
		return pageToken{}, bad
	}
	return t, nil
}

// OldTargets returns the spellings target had in events written before
// every target became kind:id (docs/operations.md "Audit targets"), so
// that a filter finds those too: a PAT's bare ID, pool/<id> and
// provider/<pool>/<id> of the pool changes, and a token exchange's bare
// <pool> and <pool>/<provider>.
func OldTargets(target string) []string {
	kind, id, ok := strings.Cut(target, ":")
	if !ok || id == "" {
		return nil
	}
	switch kind {
	case "pat":
		return []string{id}
	case "pool", "provider":
		return []string{kind + "/" + id, id}
	}
	return nil
}
