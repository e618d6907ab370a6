package web

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/clientip"
	"github.com/opensts/sts/internal/hosttoken"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// Permissions offered on the page. "No Access" is no scope at all (the
// default), "Full Access" is pat.ScopeFull, "Selected scopes" the named
// ones.
const (
	permNone   = "none"
	permFull   = "full"
	permCustom = "custom"
)

// pageGuard is the rule for a change made on the page: a signed-in person
// acts as a full-access credential of their own, so, as for any
// credential (docs/security.md A-03), a token holding sts:admin (which
// full access never includes) is neither regenerated, changed nor deleted
// here; the CLI and the API manage it.
var pageGuard = pat.HeldBy([]string{pat.ScopeFull})

// patsPerPage is how many PATs the /tokens page lists at a time.
const patsPerPage = 50

// namedScopes are the scopes a person may pick one by one.
var namedScopes = []string{pat.ScopeIdentityRead, pat.ScopeIDToken, pat.ScopeTokensRead, pat.ScopeTokensWrite}

type patRow struct {
	ID, Name, Permission string
	Admin                bool
	Created, Expires     time.Time
	LastUsed             time.Time
	Expired              bool
}

type hostRow struct {
	ID, Host, Runner, Source string
	Expires                  time.Time
}

type sessionRow struct {
	ID, Method, UserAgent string
	Created, LastSeen     time.Time
	Current               bool
}

type expiryChoice struct {
	Value, Label string
	Selected     bool
}

type shownSecret struct {
	Name, Secret string
	Regenerated  bool
}

type tokensData struct {
	Shown *shownSecret
	Error string
	PATs  []patRow
	// PATsPaged is the cursor of the page shown ("" for the first),
	// PATsNext the next page's ("" on the last).
	PATsPaged, PATsNext string
	HostOn              bool
	HostTokens          []hostRow
	Sessions            []sessionRow
	ConsentsOn          bool
	Consents            []Consent
	Form                patForm
	// For names the person in the forms that name nothing of theirs
	// (personValue).
	For string
}

// patForm is the create/edit form's state (re-shown after an error).
type patForm struct {
	ID, Name, Permission string
	Scopes               []string
	Expiries             []expiryChoice
	// ExpiresOn is the custom date as typed, kept after an error.
	ExpiresOn        string
	MinDate, MaxDate string
	AllScopes        []string
	// Once is the new-token form's one-time value (onceValue).
	Once string
}

func (f patForm) Has(scope string) bool { return slices.Contains(f.Scopes, scope) }

func caller(w http.ResponseWriter, r *http.Request, se session) audit.Caller {
	return pageCaller(w, r, se.principal.ID)
}

// pageCaller is principalID acting through the pages, as the audit trail
// names it: with the request ID, the client address (as the server
// resolved it through http.trusted_proxies) and the user agent, as a
// change made through the API (docs/security.md D-14, D-21).
func pageCaller(w http.ResponseWriter, r *http.Request, principalID string) audit.Caller {
	return audit.Caller{Actor: "principal:" + principalID, RequestID: requestID(w),
		ClientIP: clientip.FromRequest(r), UserAgent: audit.UserAgent(r.UserAgent())}
}

func permission(scopes []string) string {
	switch {
	case len(scopes) == 0:
		return "No Access"
	case slices.Contains(scopes, pat.ScopeFull):
		return "Full Access"
	}
	return strings.Join(scopes, ", ")
}

func permOf(scopes []string) string {
	switch {
	case len(scopes) == 0:
		return permNone
	case slices.Contains(scopes, pat.ScopeFull):
		return permFull
	}
	return permCustom
}

func (h *Handler) newForm(selected string) patForm {
	now := h.now().UTC()
	f := patForm{Permission: permNone, AllScopes: namedScopes,
		MinDate: now.Add(pat.MinLifetime).Format(time.DateOnly),
		MaxDate: now.Add(h.o.MaxPATLifetime).Format(time.DateOnly)}
	if selected == "" {
		selected = "30"
	}
	for _, d := range []int{7, 30, 60, 90, 365} {
		if time.Duration(d)*24*time.Hour > h.o.MaxPATLifetime {
			continue
		}
		v := strconv.Itoa(d)
		f.Expiries = append(f.Expiries, expiryChoice{Value: v, Label: v + " days", Selected: v == selected})
	}
	f.Expiries = append(f.Expiries, expiryChoice{Value: "custom", Label: "Custom date", Selected: selected == "custom"})
	return f
}

// data gathers everything the /tokens page lists for se's principal.
func (h *Handler) data(r *http.Request, se session) (tokensData, error) {
	ctx := r.Context()
	d := tokensData{Form: h.newForm("")}
	now := h.now()
	// One page of PATs, oldest first, from the PAT service's cursor
	// (?after=): a person with hundreds of tokens gets a page of
	// patsPerPage and a link to the next, not one list of all of them.
	if r.Method == http.MethodGet {
		d.PATsPaged = r.URL.Query().Get("after")
	}
	list, next, err := h.o.PATs.List(ctx, se.principal.ID, d.PATsPaged, patsPerPage)
	if err != nil {
		return d, err
	}
	d.PATsNext = next
	for _, p := range list {
		d.PATs = append(d.PATs, patRow{ID: p.ID, Name: p.Description, Permission: permission(p.Scopes), Admin: slices.Contains(p.Scopes, pat.ScopeAdmin),
			Created: p.CreatedAt, Expires: p.ExpiresAt, LastUsed: p.LastUsedAt, Expired: !now.Before(p.ExpiresAt)})
	}
	if h.o.HostTokens != nil {
		d.HostOn = true
		list, err := h.ownHostTokens(r, hostCaller(nil, r, se))
		if err != nil {
			return d, err
		}
		for _, t := range list {
			d.HostTokens = append(d.HostTokens, hostRow{ID: t.ID, Host: t.Host, Runner: t.RunnerID, Source: string(t.Source), Expires: t.ExpiresAt})
		}
	}
	sessions, err := h.o.Store.ListWebSessions(ctx, se.principal.ID)
	if err != nil {
		return d, err
	}
	for _, s := range sessions {
		if !h.signedIn.live(s, now) || !h.signedIn.accepts(s.Method) {
			continue
		}
		d.Sessions = append(d.Sessions, sessionRow{ID: s.ID, Method: methodLabel(s.Method), UserAgent: s.UserAgent,
			Created: s.CreatedAt, LastSeen: s.LastSeenAt, Current: s.ID == se.rec.ID})
	}
	if h.o.Consents != nil {
		d.ConsentsOn = true
		if d.Consents, err = h.o.Consents.ListConsents(ctx, se.principal.ID); err != nil {
			return d, err
		}
	}
	return d, nil
}

// ownHostTokens lists every host authentication token whose subject is
// the caller, page after page: the page shows them all, and one beyond the
// vault's first page is deleted like any other (docs/security.md T-115).
func (h *Handler) ownHostTokens(r *http.Request, c hosttoken.Caller) ([]hosttoken.Token, error) {
	var all []hosttoken.Token
	for page := ""; ; {
		list, next, err := h.o.HostTokens.List(r.Context(), c, hosttoken.ListInput{SubjectID: c.PrincipalID, PageToken: page, PageSize: hosttoken.MaxPageSize})
		if err != nil {
			return nil, err
		}
		all = append(all, list...)
		if next == "" {
			return all, nil
		}
		page = next
	}
}

func hostCaller(w http.ResponseWriter, r *http.Request, se session) hosttoken.Caller {
	c := hosttoken.Caller{OrgID: se.principal.OrgID, PrincipalID: se.principal.ID, Kind: se.principal.Kind}
	if w != nil {
		pc := pageCaller(w, r, se.principal.ID)
		c.RequestID, c.ClientIP, c.UserAgent = pc.RequestID, pc.ClientIP, pc.UserAgent
	}
	return c
}

func (h *Handler) showTokens(w http.ResponseWriter, r *http.Request, se session, status int, shown *shownSecret, form *patForm, msg string) {
	d, err := h.data(r, se)
	if err != nil && shown == nil && form == nil {
		h.fail(w, r, err)
		return
	}
	if err != nil {
		// The token is made and its secret exists only in this answer,
		// or the person's form comes back as typed: show it, and say the
		// list could not be read, rather than a failure that would have
		// the person make another token or type it all again.
		h.o.Logger.WarnContext(r.Context(), "web: tokens page data unavailable after a change", "error", err)
		d = tokensData{Form: h.newForm("")}
		msg = strings.TrimSpace(msg + " The list could not be read just now; reload the page to see it.")
	}
	d.Shown, d.Error = shown, msg
	if form != nil {
		d.Form = *form
	}
	// Every page gets a new form: the one on a page showing a secret, or
	// refusing a form, creates as any other.
	d.Form.Once = h.onceValue(se.principal.ID)
	d.For = h.personValue(se.principal.ID)
	h.render(w, r, status, "tokens", "Access Tokens", &se, d)
}

func (h *Handler) tokensPage(w http.ResponseWriter, r *http.Request, se session) {
	q := h.keptForm(r, se)
	if q == nil {
		h.showTokens(w, r, se, http.StatusOK, nil, nil, "")
		return
	}
	// Back from signing in again (askReauth): the new-token form as it
	// was filled in. Nothing is created until the person sends it.
	form := filledForm(q, h.newForm(q.Get("expires")))
	h.showTokens(w, r, se, http.StatusOK, nil, &form, "")
}

// tryAgain is what a page says when storage failed.
const tryAgain = "The server could not do this right now; try again shortly."

// statusOf is the HTTP status of a service error.
func statusOf(err error) int {
	switch sts.ErrorCode(err) {
	case sts.Invalid:
		return http.StatusBadRequest
	case sts.NotFound:
		return http.StatusNotFound
	case sts.PermissionDenied, sts.FailedPrecondition:
		return http.StatusForbidden
	}
	return http.StatusServiceUnavailable
}

// fail answers a service error with a page; the message is the domain
// error's, which never carries a secret.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err)
	if status == http.StatusServiceUnavailable {
		h.requestFailed(r, err)
		h.message(w, r, status, "Try again", tryAgain)
		return
	}
	h.message(w, r, status, "Not possible", sts.ErrorMessage(err))
}

// requestFailed logs a page's storage failure, unless the browser went
// away while it waited: nobody reads that page, and it is no outage
// (docs/security.md F-111).
func (h *Handler) requestFailed(r *http.Request, err error) {
	if !sts.CallerGone(r.Context(), err) {
		h.o.Logger.ErrorContext(r.Context(), "web: request failed", "error", err)
	}
}

// refusal is how a form the service refused comes back, as typed: a
// mistake (400) says what is wrong, a storage failure (503) says to try
// again (docs/security.md T-114, T-124). ok is false for any other
// refusal (not found, not permitted), which is a page of its own.
func (h *Handler) refusal(r *http.Request, err error) (status int, msg string, ok bool) {
	switch status = statusOf(err); status {
	case http.StatusBadRequest:
		return status, sts.ErrorMessage(err), true
	case http.StatusServiceUnavailable:
		h.requestFailed(r, err)
		return status, tryAgain, true
	}
	return status, "", false
}

// formScopes reads the permission radio and the named scopes.
func formScopes(r *http.Request) ([]string, error) {
	switch r.PostFormValue("permission") {
	case permNone, "":
		return []string{}, nil
	case permFull:
		return []string{pat.ScopeFull}, nil
	case permCustom:
		sc := r.PostForm["scope"]
		for _, s := range sc {
			if !slices.Contains(namedScopes, s) {
				return nil, sts.Errorf(sts.Invalid, "unknown scope %q", s)
			}
		}
		if len(sc) == 0 {
			return nil, sts.Errorf(sts.Invalid, "choose at least one scope, or No Access")
		}
		return sc, nil
	}
	return nil, sts.Errorf(sts.Invalid, "unknown permission")
}

// formExpiry reads the expiry select (days) or the custom date.
func (h *Handler) formExpiry(r *http.Request) (time.Time, error) {
	now := h.now()
	v := r.PostFormValue("expires")
	if v == "custom" {
		d, err := time.Parse(time.DateOnly, r.PostFormValue("expires_on"))
		if err != nil {
			return time.Time{}, sts.Errorf(sts.Invalid, "choose an expiry date")
		}
		// The chosen day at the current time of day: whole days from now.
		u := now.UTC()
		return time.Date(d.Year(), d.Month(), d.Day(), u.Hour(), u.Minute(), u.Second(), 0, time.UTC), nil
	}
	if strings.TrimSpace(r.PostFormValue("expires_on")) != "" {
		// The date field is always shown: a date picked while another
		// choice stays selected would otherwise be dropped silently.
		return time.Time{}, sts.Errorf(sts.Invalid, "a date was entered: choose Custom date to use it, or clear the date")
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 || n > 3660 {
		return time.Time{}, sts.Errorf(sts.Invalid, "choose an expiry")
	}
	return now.Add(time.Duration(n) * 24 * time.Hour), nil
}

func (h *Handler) createPAT(w http.ResponseWriter, r *http.Request, se session) {
	form := h.typedForm(r, h.newForm(r.PostFormValue("expires")))
	if !h.signedInRecently(se) {
		h.askReauth(w, r, se, "/tokens", "name", "permission", "scope", "expires", "expires_on")
		return
	}
	// The form's one-time value (docs/security.md T-165): the same form
	// sent again creates nothing. A form without one (a page opened
	// before it existed) is taken as before.
	var once *pat.Once
	var err error
	if v := r.PostFormValue("once"); v != "" {
		if once, err = h.checkOnce(se.principal.ID, v); err != nil {
			h.showTokens(w, r, se, http.StatusBadRequest, nil, &form, err.Error())
			return
		}
	}
	scopes, err := formScopes(r)
	if err == nil {
		var exp time.Time
		if exp, err = h.formExpiry(r); err == nil {
			var p storage.PAT
			var secret string
			p, secret, err = h.o.PATs.Create(r.Context(), caller(w, r, se), pat.CreateInput{
				OwnerID: se.principal.ID, Description: form.Name, Scopes: scopes, ExpiresAt: exp, Once: once})
			if err == nil {
				h.showTokens(w, r, se, http.StatusOK, &shownSecret{Name: p.Description, Secret: secret}, nil, "")
				return
			}
		}
	}
	if errors.Is(err, pat.ErrAlreadyCreated) {
		h.render(w, r, http.StatusConflict, "message", "Already created", &se, messageData{
			Text: "This form was sent before, perhaps by a reload, Back and Forward, or a second click, " +
				"or its page was opened before the server's data was restored from a backup. " +
				"Nothing was created now and no secret is shown: your tokens are listed on the access tokens page.",
			Link: "/tokens", LinkText: "Back to access tokens"})
		return
	}
	status, msg, ok := h.refusal(r, err)
	if !ok {
		h.fail(w, r, err)
		return
	}
	h.showTokens(w, r, se, status, nil, &form, msg)
}

// ownPAT returns the signed-in person's PAT id; another person's token is
// not found (docs/authorization.md, "Browser pages").
func (h *Handler) ownPAT(w http.ResponseWriter, r *http.Request, se session) (storage.PAT, bool) {
	p, err := h.o.PATs.Get(r.Context(), se.principal.ID, r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return p, false
	}
	return p, true
}

type editData struct {
	Form  patForm
	Shown *shownSecret
	Error string
	PAT   patRow
	// Admin is set for a token holding sts:admin, which the page does not
	// manage (pageGuard).
	Admin bool
	// After is the list page the token was opened from (pageAfter).
	After string
	// Replaces names the token's secret in the regenerate form
	// (replacesValue).
	Replaces string
}

// deleteData is the delete confirmation of a token opened from the list
// page After.
type deleteData struct {
	patRow
	After string
}

// pageAfter is the cursor (?after=) of the /tokens page a token's links
// and forms were opened from, "" for the first page: the token's pages
// carry it on, and a change made there goes back to that page (listPage).
func pageAfter(r *http.Request) string { return r.URL.Query().Get("after") }

// listPage is where a change made from the list page pageAfter(r) sends
// the browser: that page again, not the first; or, when the change left
// it empty (its last token deleted), the last page there is now, the one
// before it. A cursor that is not one of ours gives the first page.
func (h *Handler) listPage(r *http.Request, se session) string {
	// One read of the person's tokens (pat.Service.PageCursor), however
	// many pages they fill.
	after, err := h.o.PATs.PageCursor(r.Context(), se.principal.ID, pageAfter(r), patsPerPage)
	if err != nil || after == "" {
		return "/tokens"
	}
	return "/tokens?after=" + url.QueryEscape(after)
}

// typedForm is f with what the person sent in the form: a refused form
// comes back as typed, not as stored.
func (h *Handler) typedForm(r *http.Request, f patForm) patForm {
	_ = r.PostFormValue("name") // reads the form into r.PostForm
	return filledForm(r.PostForm, f)
}

// filledForm is f with the name, permission, scopes and custom date of v.
func filledForm(v url.Values, f patForm) patForm {
	f.Name = v.Get("name")
	f.Permission = v.Get("permission")
	f.Scopes = v["scope"]
	f.ExpiresOn = v.Get("expires_on")
	return f
}

// editForm is the edit page's form for p, with the expiry choice selected.
func (h *Handler) editForm(p storage.PAT, expires string) patForm {
	f := h.newForm(expires)
	f.ID, f.Name, f.Permission, f.Scopes = p.ID, p.Description, permOf(p.Scopes), p.Scopes
	return f
}

// replacesValue names p's current secret in its regenerate form: a MAC,
// under Options.FormKey, of its ID and its secret's digest, which every
// regenerate changes (docs/security.md T-164).
func (h *Handler) replacesValue(p storage.PAT) string {
	m := hmac.New(sha256.New, h.o.FormKey)
	m.Write([]byte("sts web regenerate v1\x00" + p.ID + "\x00"))
	m.Write(p.Digest)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (h *Handler) showEdit(w http.ResponseWriter, r *http.Request, se session, status int, p storage.PAT, f patForm, shown *shownSecret, msg string) {
	row := patRow{ID: p.ID, Name: p.Description, Permission: permission(p.Scopes), Created: p.CreatedAt,
		Expires: p.ExpiresAt, LastUsed: p.LastUsedAt, Expired: !h.now().Before(p.ExpiresAt)}
	h.render(w, r, status, "edit", "Edit access token", &se, editData{Form: f, Shown: shown, Error: msg, PAT: row,
		Admin: slices.Contains(p.Scopes, pat.ScopeAdmin), After: pageAfter(r), Replaces: h.replacesValue(p)})
}

func (h *Handler) editPage(w http.ResponseWriter, r *http.Request, se session) {
	p, ok := h.ownPAT(w, r, se)
	if !ok {
		return
	}
	f := h.editForm(p, "")
	// Back from signing in again (askReauth): the forms as they were
	// filled in. Nothing changes until the person sends one.
	if q := h.keptForm(r, se); q != nil {
		f = h.editForm(p, q.Get("expires"))
		if q.Has("name") || q.Has("permission") {
			f.Name, f.Permission, f.Scopes = q.Get("name"), q.Get("permission"), q["scope"]
		}
		f.ExpiresOn = q.Get("expires_on")
	}
	h.showEdit(w, r, se, http.StatusOK, p, f, nil, "")
}

func (h *Handler) updatePAT(w http.ResponseWriter, r *http.Request, se session) {
	p, ok := h.ownPAT(w, r, se)
	if !ok {
		return
	}
	name := r.PostFormValue("name")
	scopes, err := formScopes(r)
	if err == nil && widens(p.Scopes, scopes) && !h.signedInRecently(se) {
		h.askReauth(w, r, se, "/tokens/"+url.PathEscape(p.ID), "name", "permission", "scope")
		return
	}
	if err == nil {
		_, err = h.o.PATs.Update(r.Context(), caller(w, r, se), se.principal.ID, p.ID, pat.UpdateInput{Description: &name, Scopes: &scopes}, pageGuard)
	}
	if err != nil {
		if status, msg, ok := h.refusal(r, err); ok {
			f := h.typedForm(r, h.editForm(p, ""))
			f.ExpiresOn = ""
			h.showEdit(w, r, se, status, p, f, nil, msg)
			return
		}
		h.fail(w, r, err)
		return
	}
	http.Redirect(w, r, h.listPage(r, se), http.StatusSeeOther)
}

func (h *Handler) regeneratePAT(w http.ResponseWriter, r *http.Request, se session) {
	p, ok := h.ownPAT(w, r, se)
	if !ok {
		return
	}
	if !h.signedInRecently(se) {
		h.askReauth(w, r, se, "/tokens/"+url.PathEscape(p.ID), "expires", "expires_on")
		return
	}
	exp, err := h.formExpiry(r)
	var secret string
	var out storage.PAT
	guards := []pat.Guard{pageGuard}
	// The form names the secret it replaces (replacesValue): sent again
	// once that secret is replaced (a reload or Back and Forward after a
	// regenerate without JavaScript, a second tab), it is refused, and
	// the secret shown the first time keeps working (docs/security.md
	// T-164). A form without the field (a page opened before it existed)
	// is taken as before.
	replaced := false
	if v := r.PostFormValue("replaces"); v != "" {
		guards = append(guards, func(cur storage.PAT) error {
			if !hmac.Equal([]byte(v), []byte(h.replacesValue(cur))) {
				replaced = true
				return sts.Errorf(sts.FailedPrecondition, "this token was regenerated since this page was opened")
			}
			return nil
		})
	}
	if err == nil {
		// out, not p: a refusal returns an empty PAT, and the page shown
		// then is still this token's.
		out, secret, err = h.o.PATs.Regenerate(r.Context(), caller(w, r, se), se.principal.ID, p.ID, exp, guards...)
	}
	if err != nil && replaced {
		h.render(w, r, http.StatusConflict, "message", "Already regenerated", &se, messageData{
			Text: "This token was regenerated since this page was opened, perhaps by this form sent before (a reload, or " +
				"Back and Forward) or in another tab, or through the CLI or API. Nothing changed here: the token keeps the " +
				"secret it has now, which is not shown again.",
			Link: "/tokens/" + url.PathEscape(p.ID), LinkText: "Back to the token"})
		return
	}
	if err != nil {
		if status, msg, ok := h.refusal(r, err); ok {
			f := h.editForm(p, r.PostFormValue("expires"))
			f.ExpiresOn = r.PostFormValue("expires_on")
			h.showEdit(w, r, se, status, p, f, nil, msg)
			return
		}
		h.fail(w, r, err)
		return
	}
	h.showEdit(w, r, se, http.StatusOK, out, h.editForm(out, ""), &shownSecret{Name: out.Description, Secret: secret, Regenerated: true}, "")
}

func (h *Handler) deletePage(w http.ResponseWriter, r *http.Request, se session) {
	if p, ok := h.ownPAT(w, r, se); ok {
		h.render(w, r, http.StatusOK, "delete", "Delete access token", &se,
			deleteData{patRow: patRow{ID: p.ID, Name: p.Description, Permission: permission(p.Scopes)}, After: pageAfter(r)})
	}
}

func (h *Handler) deletePAT(w http.ResponseWriter, r *http.Request, se session) {
	if err := h.o.PATs.Delete(r.Context(), caller(w, r, se), se.principal.ID, r.PathValue("id"), pageGuard); err != nil {
		h.fail(w, r, err)
		return
	}
	http.Redirect(w, r, h.listPage(r, se), http.StatusSeeOther)
}

func (h *Handler) deleteHostToken(w http.ResponseWriter, r *http.Request, se session) {
	if h.o.HostTokens == nil {
		http.NotFound(w, r)
		return
	}
	// Only the person's own tokens (as subject): the vault's own rule also
	// lets a runner act, but a person on this page acts for themself.
	id := r.PathValue("id")
	list, err := h.ownHostTokens(r, hostCaller(w, r, se))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if !slices.ContainsFunc(list, func(t hosttoken.Token) bool { return t.ID == id }) {
		h.fail(w, r, sts.Errorf(sts.NotFound, "host authentication token not found"))
		return
	}
	if err := h.o.HostTokens.Delete(r.Context(), hostCaller(w, r, se), id); err != nil {
		h.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/tokens", http.StatusSeeOther)
}

func (h *Handler) endSession(w http.ResponseWriter, r *http.Request, se session) {
	id := r.PathValue("id")
	list, err := h.o.Store.ListWebSessions(r.Context(), se.principal.ID)
	if err != nil {
		h.fail(w, r, sts.Wrap(sts.Unavailable, err, "storage unavailable"))
		return
	}
	if !slices.ContainsFunc(list, func(s storage.WebSession) bool { return s.ID == id }) {
		h.fail(w, r, sts.Errorf(sts.NotFound, "session not found"))
		return
	}
	if err := h.o.Store.DeleteWebSession(r.Context(), id); err != nil && !errors.Is(err, storage.ErrNotFound) {
		h.fail(w, r, sts.Wrap(sts.Unavailable, err, "storage unavailable"))
		return
	}
	_ = h.o.Store.AppendAudit(r.Context(), caller(w, r, se).Event(h.now(), se.principal.OrgID, ActionSessionEnd, "web_session:"+id, "success", ""))
	if id == se.rec.ID {
		h.signedIn.clearCookie(w)
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/tokens", http.StatusSeeOther)
}

func (h *Handler) revokeConsent(w http.ResponseWriter, r *http.Request, se session) {
	if h.o.Consents == nil {
		http.NotFound(w, r)
		return
	}
	if h.othersForm(w, r, se, "Nothing was withdrawn") {
		return
	}
	if err := h.o.Consents.RevokeConsent(r.Context(), pageCaller(w, r, se.principal.ID), se.principal.ID, r.PathValue("client")); err != nil {
		h.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/tokens", http.StatusSeeOther)
}

// personValue names principalID in the forms whose target is no object of
// theirs, but whoever is signed in: "Delete all access tokens" and an
// authorized application's Revoke (the application is the same for
// everyone). A MAC under Options.FormKey of the person, so a page opened
// for one person and sent after another signed in to the browser (the
// switch question, another tab) is told apart (othersForm); every other
// form of the pages names a token, session or host token of the person,
// which is not found for anyone else (docs/security.md A-107).
func (h *Handler) personValue(principalID string) string {
	m := hmac.New(sha256.New, h.o.FormKey)
	m.Write([]byte("sts web person v1\x00" + principalID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// othersForm refuses a form whose "for" (personValue) names another
// person than se's: it was opened for them, and would act for whoever
// signed in since. A form without the field is refused too: it names
// nobody, so it too would act for whoever is signed in, and what it does
// cannot be undone; a page opened before the field existed is opened
// again. The answer is 409, a page saying so and done (what was not
// done); the session is kept (docs/security.md ).
func (h *Handler) othersForm(w http.ResponseWriter, r *http.Request, se session, done string) bool {
	v := r.PostFormValue("for")
	if v != "" && hmac.Equal([]byte(v), []byte(h.personValue(se.principal.ID))) {
		return false
	}
	text := "This page was opened for another person: someone else has signed in to this browser since. " + done +
		". You are signed in as " + se.principal.Name + "; check the page and try again."
	if v == "" {
		text = "This form does not say whom it was opened for, and someone else may have signed in to this browser since. " + done +
			". You are signed in as " + se.principal.Name + "; open it again and check it."
	}
	h.o.Logger.InfoContext(r.Context(), "web: form of another person refused", "session_id", se.rec.ID,
		"principal", se.principal.ID, "route", r.Pattern, "named", v != "")
	h.render(w, r, http.StatusConflict, "message", "Not done", &se, messageData{
		Text: text, Link: "/tokens", LinkText: "Back to access tokens"})
	return true
}
