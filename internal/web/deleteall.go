package web

import (
	"net/http"

	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// Delete all: a person who lost a device or found their tokens leaked
// withdraws every token at once, as GitHub's "Revoke all" (docs/security.md
// Each token goes through the PAT service's Delete with the page's
// rule (pageGuard): its own audit event, and a token holding sts:admin is
// kept. Like deleting one token it needs no recent sign-in: it only takes
// power away.

// deleteAllData is the confirmation: how many tokens would go, and
// whether some holding sts:admin stay.
type deleteAllData struct {
	Count int
	Admin bool
	// For names the person the confirmation counted for (personValue).
	For string
}

// managedPATs lists every token of se's person, page after page, split
// into those the page manages and whether any holds sts:admin.
func (h *Handler) managedPATs(r *http.Request, se session) ([]storage.PAT, bool, error) {
	var out []storage.PAT
	admin := false
	for page := ""; ; {
		list, next, err := h.o.PATs.List(r.Context(), se.principal.ID, page, pat.MaxPageSize)
		if err != nil {
			return nil, false, err
		}
		for _, p := range list {
			if pageGuard(p) != nil {
				admin = true
				continue
			}
			out = append(out, p)
		}
		if next == "" {
			return out, admin, nil
		}
		page = next
	}
}

func (h *Handler) deleteAllPage(w http.ResponseWriter, r *http.Request, se session) {
	list, admin, err := h.managedPATs(r, se)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, "deleteall", "Delete all access tokens", &se, deleteAllData{Count: len(list), Admin: admin,
		For: h.personValue(se.principal.ID)})
}

// deleteAllPATs deletes every token the page manages. A token deleted
// meanwhile (another tab) is passed over, as is one given sts:admin
// meanwhile (the guard refuses it); a storage failure stops, and what was
// deleted stays deleted: the page says to try again.
func (h *Handler) deleteAllPATs(w http.ResponseWriter, r *http.Request, se session) {
	// The confirmation counted its person's tokens: sent after another
	// person signed in to the browser, it must not delete theirs
	// (docs/security.md A-107).
	if h.othersForm(w, r, se, "Nothing was deleted") {
		return
	}
	list, _, err := h.managedPATs(r, se)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	for _, p := range list {
		err := h.o.PATs.Delete(r.Context(), caller(w, r, se), se.principal.ID, p.ID, pageGuard)
		switch sts.ErrorCode(err) {
		case sts.NotFound, sts.PermissionDenied:
			continue
		}
		if err != nil {
			h.fail(w, r, err)
			return
		}
	}
	http.Redirect(w, r, "/tokens", http.StatusSeeOther)
}
