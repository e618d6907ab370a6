package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/storage"
)

// OIDCProvider is an upstream OpenID Connect provider people sign in with
// (web.login.oidc in docs/configuration.md).
type OIDCProvider struct {
	ID, DisplayName, Issuer, ClientID, ClientSecret string
	Scopes                                          []string
	// LinkClaim is "email" (used only when email_verified is true) or "sub"
	// (the user principal named like the subject).
	LinkClaim string
	// OrgID, when set, confines linking to this organization and creates a
	// user there for a person without one.
	OrgID string
}

// actionPrincipalCreate is the audit action the admin API records for a
// new principal; a first upstream sign-in records the same.
const actionPrincipalCreate = "principal.create"

// loginFlowTTL bounds how long a person may take at the provider.
const loginFlowTTL = 10 * time.Minute

// oidcFlow is what the browser keeps between leaving for the provider and
// coming back: state, nonce and PKCE verifier in an HttpOnly cookie that
// only this browser has. The callback's state must equal the cookie's,
// so a callback URL planted by someone else (login CSRF) finds no match
// (docs/security.md T-89).
type oidcFlow struct {
	Provider string `json:"p"`
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	ReturnTo string `json:"r"`
	Expires  int64  `json:"e"`
}

type upstream struct {
	cfg OIDCProvider

	mu       sync.Mutex
	provider *oidc.Provider
}

func (u *upstream) discover(ctx context.Context) (*oidc.Provider, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.provider != nil {
		return u.provider, nil
	}
	p, err := oidc.NewProvider(ctx, u.cfg.Issuer)
	if err != nil {
		return nil, err
	}
	u.provider = p
	return p, nil
}

func (h *Handler) flowCookie() string {
	if h.signedIn.secure {
		return "__Host-sts_login"
	}
	return "sts_login"
}

func (h *Handler) oauthConfig(u *upstream, p *oidc.Provider) *oauth2.Config {
	scopes := u.cfg.Scopes
	if len(scopes) == 0 {
		scopes = []string{"email", "profile"}
	}
	if !slices.Contains(scopes, oidc.ScopeOpenID) {
		scopes = append([]string{oidc.ScopeOpenID}, scopes...)
	}
	return &oauth2.Config{ClientID: u.cfg.ClientID, ClientSecret: u.cfg.ClientSecret, Endpoint: p.Endpoint(),
		RedirectURL: strings.TrimSuffix(h.o.Issuer, "/") + "/login/oidc/" + u.cfg.ID + "/callback", Scopes: scopes}
}

func (h *Handler) clientContext(ctx context.Context) context.Context {
	c := h.o.HTTPClient
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	return oidc.ClientContext(ctx, c)
}

func random() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// oidcStart sends the browser to the provider.
func (h *Handler) oidcStart(w http.ResponseWriter, r *http.Request) {
	u, ok := h.upstreams[r.PathValue("id")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	ctx := h.clientContext(r.Context())
	p, err := u.discover(ctx)
	if err != nil {
		h.o.Logger.ErrorContext(ctx, "web: upstream discovery failed", "provider", u.cfg.ID, "error", err)
		h.message(w, r, http.StatusServiceUnavailable, "Try again", "The sign-in provider cannot be reached; try again shortly.")
		return
	}
	f := oidcFlow{Provider: u.cfg.ID, State: random(), Nonce: random(), Verifier: oauth2.GenerateVerifier(),
		ReturnTo: LocalPath(r.URL.Query().Get("return_to")), Expires: h.now().Add(loginFlowTTL).Unix()}
	b, _ := json.Marshal(f)
	http.SetCookie(w, &http.Cookie{Name: h.flowCookie(), Value: base64.RawURLEncoding.EncodeToString(b), Path: "/",
		Secure: h.signedIn.secure, HttpOnly: true, SameSite: http.SameSiteLaxMode, MaxAge: int(loginFlowTTL / time.Second)})
	url := h.oauthConfig(u, p).AuthCodeURL(f.State, oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier))
	http.Redirect(w, r, url, http.StatusFound)
}

const badUpstream = "Sign-in did not complete. Start again from the sign-in page."

// oidcCallback finishes the sign-in: state bound to this browser, code
// redeemed with the PKCE verifier, ID token verified (issuer, audience,
// expiry, signature, nonce), then the principal found by the link claim.
func (h *Handler) oidcCallback(w http.ResponseWriter, r *http.Request) {
	u, ok := h.upstreams[r.PathValue("id")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	ctx := h.clientContext(r.Context())
	refuse := func(reason string, err error) {
		h.o.Logger.InfoContext(ctx, "web: upstream sign-in refused", "provider", u.cfg.ID, "reason", reason, "error", err)
		h.message(w, r, http.StatusUnauthorized, "Sign-in failed", badUpstream)
	}
	var f oidcFlow
	c, err := r.Cookie(h.flowCookie())
	if err == nil {
		var b []byte
		if b, err = base64.RawURLEncoding.DecodeString(c.Value); err == nil {
			err = json.Unmarshal(b, &f)
		}
	}
	// The flow is single-use: the cookie goes whatever the outcome.
	http.SetCookie(w, &http.Cookie{Name: h.flowCookie(), Value: "", Path: "/", Secure: h.signedIn.secure, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, MaxAge: -1})
	q := r.URL.Query()
	switch {
	case err != nil:
		refuse("no sign-in in progress in this browser", err)
		return
	case f.Provider != u.cfg.ID || h.now().Unix() > f.Expires:
		refuse("sign-in flow expired or for another provider", nil)
		return
	case q.Get("state") == "" || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(f.State)) != 1:
		refuse("state mismatch", nil)
		return
	case q.Get("error") != "":
		refuse("provider refused: "+q.Get("error"), nil)
		return
	}
	p, err := u.discover(ctx)
	if err != nil {
		refuse("discovery", err)
		return
	}
	tok, err := h.oauthConfig(u, p).Exchange(ctx, q.Get("code"), oauth2.VerifierOption(f.Verifier))
	if err != nil {
		refuse("code exchange", err)
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := p.Verifier(&oidc.Config{ClientID: u.cfg.ClientID, Now: h.now}).Verify(ctx, raw)
	if err != nil {
		refuse("id token", err)
		return
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.Nonce)) != 1 {
		refuse("nonce mismatch", nil)
		return
	}
	var claims struct {
		Email         string `json:"email"`
		EmailVerified bool   `json:"email_verified"`
		Name          string `json:"name"`
		Username      string `json:"preferred_username"`
	}
	if err := idt.Claims(&claims); err != nil {
		refuse("claims", err)
		return
	}
	principal, err := h.link(r.Context(), u.cfg, idt.Subject, claims.Email, claims.EmailVerified)
	if err != nil {
		refuse(err.Error(), nil)
		return
	}
	h.finishSignIn(w, r, principal, oidcMethod(u.cfg), f.ReturnTo)
}

// link finds (or, with an organization configured, creates) the user
// principal the upstream identity stands for.
func (h *Handler) link(ctx context.Context, cfg OIDCProvider, sub, email string, verified bool) (storage.Principal, error) {
	key := sub
	if cfg.LinkClaim == "email" {
		if email == "" || !verified {
			return storage.Principal{}, errors.New("email missing or not verified")
		}
		key = email
	}
	if key == "" {
		return storage.Principal{}, errors.New("link claim missing")
	}
	var orgs []string
	if cfg.OrgID != "" {
		orgs = []string{cfg.OrgID}
	} else {
		all, err := h.o.Store.ListOrganizations(ctx)
		if err != nil {
			return storage.Principal{}, err
		}
		for _, o := range all {
			orgs = append(orgs, o.ID)
		}
	}
	var found []storage.Principal
	for _, org := range orgs {
		ps, err := h.o.Store.ListPrincipals(ctx, org)
		if err != nil {
			return storage.Principal{}, err
		}
		for _, p := range ps {
			if p.Kind != storage.PrincipalUser {
				continue
			}
			if (cfg.LinkClaim == "email" && strings.EqualFold(p.Email, key)) || (cfg.LinkClaim == "sub" && p.Name == key) {
				found = append(found, p)
			}
		}
	}
	switch {
	case len(found) == 1:
		if found[0].Disabled {
			return storage.Principal{}, errors.New("principal disabled")
		}
		return found[0], nil
	case len(found) > 1:
		return storage.Principal{}, errors.New("link claim matches several principals")
	case cfg.OrgID == "":
		return storage.Principal{}, errors.New("no principal for this identity")
	}
	now := storage.Now(h.now())
	p := storage.Principal{ID: storage.NewID(), OrgID: cfg.OrgID, Kind: storage.PrincipalUser, Name: key,
		CreatedAt: now, UpdatedAt: now}
	if cfg.LinkClaim == "email" {
		p.Email = email
	}
	c := audit.Caller{Actor: "principal:" + p.ID}
	ev := c.Event(now, p.OrgID, actionPrincipalCreate, "principal:"+p.ID, "success", "first sign-in with "+cfg.ID)
	// The principal and its event commit together (docs/design.md#audit).
	if u, ok := h.o.Store.(storage.UnitOfWork); ok {
		err := u.WithTx(ctx, func(tx storage.Tx) error {
			if err := tx.CreatePrincipal(ctx, p); err != nil {
				return err
			}
			return tx.AppendAudit(ctx, ev)
		})
		if err != nil {
			return storage.Principal{}, err
		}
		return p, nil
	}
	if err := h.o.Store.CreatePrincipal(ctx, p); err != nil {
		return storage.Principal{}, err
	}
	if err := h.o.Store.AppendAudit(ctx, ev); err != nil {
		_ = h.o.Store.DeletePrincipal(context.WithoutCancel(ctx), p.ID)
		return storage.Principal{}, err
	}
	return p, nil
}
