package pat

import (
	"context"
	"encoding/base64"
	"strings"
	"time"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// Page sizes of gitpod.v1 pagination.
const (
	DefaultPageSize = 25
	MaxPageSize     = 100
)

// List returns one page of ownerID's tokens, oldest first, and the token
// of the next page ("" on the last). pageToken is an opaque keyset cursor
// (creation time and ID of the last item seen), so deletions between pages
// neither skip nor repeat tokens. pageSize ≤ 0 means DefaultPageSize; more
// than MaxPageSize is capped. Errors: [sts.Invalid] (bad page token),
// [sts.Unavailable].
func (s *Service) List(ctx context.Context, ownerID, pageToken string, pageSize int) ([]storage.PAT, string, error) {
	if pageSize <= 0 {
		pageSize = DefaultPageSize
	}
	pageSize = min(pageSize, MaxPageSize)
	var afterTime time.Time
	var afterID string
	if pageToken != "" {
		var err error
		if afterTime, afterID, err = decodeCursor(pageToken); err != nil {
			return nil, "", sts.Errorf(sts.Invalid, "invalid pagination token")
		}
	}
	all, err := s.store.ListPATs(ctx, ownerID)
	if err != nil {
		return nil, "", storageErr(err, "personal access tokens")
	}
	out := make([]storage.PAT, 0, min(pageSize, len(all)))
	for _, p := range all {
		if pageToken != "" && !after(p, afterTime, afterID) {
			continue
		}
		if len(out) == pageSize {
			last := out[len(out)-1]
			return out, encodeCursor(last.CreatedAt, last.ID), nil
		}
		out = append(out, p)
	}
	return out, "", nil
}

// PageCursor is the page token of the page a list of ownerID's tokens in
// pages of pageSize (as List sizes them) should show to someone who was on
// the page after pageToken and changed something there: pageToken while
// that page still holds a token, else the last page's ("" for the first,
// and for pageToken ""). It reads the tokens once, where walking the pages
// with List reads them once a page. Errors: [sts.Invalid] (bad page
// token), [sts.Unavailable].
func (s *Service) PageCursor(ctx context.Context, ownerID, pageToken string, pageSize int) (string, error) {
	if pageToken == "" {
		return "", nil
	}
	if pageSize <= 0 {
		pageSize = DefaultPageSize
	}
	pageSize = min(pageSize, MaxPageSize)
	afterTime, afterID, err := decodeCursor(pageToken)
	if err != nil {
		return "", sts.Errorf(sts.Invalid, "invalid pagination token")
	}
	all, err := s.store.ListPATs(ctx, ownerID)
	if err != nil {
		return "", storageErr(err, "personal access tokens")
	}
	if len(all) > 0 && after(all[len(all)-1], afterTime, afterID) {
		return pageToken, nil // the newest token is on that page or a later one
	}
	if len(all) <= pageSize {
		return "", nil
	}
	// List's pages begin at 0, pageSize, 2*pageSize, …; a page's token
	// names the last token of the page before it.
	before := all[(len(all)-1)/pageSize*pageSize-1]
	return encodeCursor(before.CreatedAt, before.ID), nil
}

func after(p storage.PAT, t time.Time, id string) bool {
	return p.CreatedAt.After(t) || (p.CreatedAt.Equal(t) && p.ID > id)
}

func encodeCursor(t time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(t.UTC().Format(time.RFC3339Nano) + "|" + id))
}

func decodeCursor(tok string) (time.Time, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return time.Time{}, "", err
	}
	ts, id, ok := strings.Cut(string(b), "|")
	if !ok || id == "" {
		return time.Time{}, "", sts.Errorf(sts.Invalid, "bad cursor")
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	return t, id, err
}
