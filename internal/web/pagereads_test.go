package web_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/web"
)

// countingStore is a real store that counts the reads of an owner's
// whole token list.
type countingStore struct {
	*sqlstore.Store
	lists atomic.Int64
}

func (s *countingStore) ListPATs(ctx context.Context, ownerID string) ([]storage.PAT, error) {
	s.lists.Add(1)
	return s.Store.ListPATs(ctx, ownerID)
}

// TestEmptiedPageReadsTokensOnce (docs/authorization.md "Browser pages"):
// deleting the one token of the last page of /tokens leads to the page
// before it, found with one read of the person's tokens, however many
// pages they fill. It used to walk the pages from the first, reading
// every token once a page: 8 reads for 351 tokens.
func TestEmptiedPageReadsTokensOnce(t *testing.T) {
	t.Parallel()
	now := storage.Now(time.Now())
	f := newSessionFx(t, &now, 3*time.Hour)
	cs := &countingStore{Store: f.st}
	pats, err := pat.NewService(cs, make([]byte, pat.MinPepperSize))
	if err != nil {
		t.Fatal(err)
	}
	h, err := web.New(web.Options{Issuer: sessionIssuer, Store: f.st, PATs: pats, IdleTimeout: time.Hour,
		AbsoluteTimeout: 3 * time.Hour, Now: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Mount(mux)
	const n = 351 // pages of 50: seven full, and one token on the eighth
	var last string
	for i := range n {
		p := storage.PAT{ID: storage.NewID(), OrgID: f.ada.OrgID, OwnerID: f.ada.ID, Description: "t", Scopes: []string{},
			Digest: []byte(storage.NewID()), CreatedAt: now.Add(time.Duration(i) * time.Second), ExpiresAt: now.Add(24 * time.Hour)}
		if err := f.st.CreatePAT(t.Context(), p); err != nil {
			t.Fatal(err)
		}
		last = p.ID
	}
	// The cursors of the last page and the one before, as the list's
	// "next" links carry them.
	var cursors []string
	for after := ""; ; {
		_, next, err := pats.List(t.Context(), f.ada.ID, after, 50)
		if err != nil {
			t.Fatal(err)
		}
		if next == "" {
			break
		}
		cursors = append(cursors, next)
		after = next
	}
	if len(cursors) != 7 {
		t.Fatalf("%d pages after the first, want 7", len(cursors))
	}
	c := signInByLink(t, mux, f.st, sessionIssuer, f.ada, now)
	cs.lists.Store(0)
	rec := postForm(mux, sessionIssuer+"/tokens/"+last+"/delete?after="+url.QueryEscape(cursors[6]), url.Values{}, c)
	if want := "/tokens?after=" + url.QueryEscape(cursors[5]); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != want {
		t.Fatalf("deleting the one token of the last page: %d to %q, want %q", rec.Code, rec.Header().Get("Location"), want)
	}
	if got := cs.lists.Load(); got != 1 {
		t.Errorf("deleting the one token of the last page read the token list %d times, want 1", got)
	}
	// A page that still holds tokens is kept, with one read too.
	id := firstOf(t, pats, f.ada.ID, cursors[2])
	cs.lists.Store(0)
	rec = postForm(mux, sessionIssuer+"/tokens/"+id+"/delete?after="+url.QueryEscape(cursors[2]), url.Values{}, c)
	if want := "/tokens?after=" + url.QueryEscape(cursors[2]); rec.Header().Get("Location") != want {
		t.Errorf("deleting a token of page 4: to %q, want %q", rec.Header().Get("Location"), want)
	}
	if got := cs.lists.Load(); got != 1 {
		t.Errorf("deleting a token of page 4 read the token list %d times, want 1", got)
	}
	// A cursor that is not ours gives the first page.
	rec = postForm(mux, sessionIssuer+"/tokens/"+firstOf(t, pats, f.ada.ID, "")+"/delete?after=nonsense", url.Values{}, c)
	if loc := rec.Header().Get("Location"); loc != "/tokens" || !strings.HasPrefix(rec.Result().Status, "303") {
		t.Errorf("a cursor not ours: %s to %q, want /tokens", rec.Result().Status, loc)
	}
}

// firstOf is the ID of the first token of the page after cursor after.
func firstOf(t *testing.T, pats *pat.Service, owner, after string) string {
	t.Helper()
	list, _, err := pats.List(t.Context(), owner, after, 50)
	if err != nil || len(list) == 0 {
		t.Fatalf("page after %q: %d tokens, %v", after, len(list), err)
	}
	return list[0].ID
}
