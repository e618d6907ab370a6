package pat_test

import (
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// TestDescriptionNotText (docs/security.md T-108): a description with a
// NUL character, or bytes that are not UTF-8, is invalid_argument on both
// backends, whether it comes through the Connect API or the /tokens page
// (which calls the service directly). PostgreSQL refuses such text, so
// the create failed there as a storage error while SQLite stored it.
func TestDescriptionNotText(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			f := newFixture(t, b.open(t))
			for _, desc := range []string{"x\x00y", "x\xffy"} {
				_, _, err := f.svc.Create(t.Context(), caller, pat.CreateInput{OwnerID: f.user.ID, Description: desc,
					Scopes: []string{pat.ScopeFull}, ExpiresAt: f.clock.Now().Add(48 * time.Hour)})
				if sts.ErrorCode(err) != sts.Invalid {
					t.Errorf("Create(description %q) = %v, want invalid_argument", desc, err)
				}
			}
		})
	}
}

// TestDescriptionDisplaysAsStored (docs/security.md T-135): a description
// with a bidi control (U+202A–U+202E, U+2066–U+2069, U+200E, U+200F,
// U+061C) or another invisible format or control character displays
// otherwise than it reads ("trojan source"): on /tokens, in the API's list
// and in the audit trail. Create and Update refuse it as invalid_argument
// naming the character, and store nothing; text in any script, emoji
// sequences joined by U+200D and a Persian U+200C are kept as sent.
func TestDescriptionDisplaysAsStored(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			f := newFixture(t, b.open(t))
			ctx := t.Context()
			exp := f.clock.Now().Add(48 * time.Hour)
			kept, _, err := f.svc.Create(ctx, caller, pat.CreateInput{OwnerID: f.user.ID, Description: "deploy",
				Scopes: []string{pat.ScopeFull}, ExpiresAt: exp})
			if err != nil {
				t.Fatal(err)
			}
			for _, desc := range []string{"ci\u202egpj.exe", "a\u202ab", "a\u202db", "a\u2066b", "a\u2067b", "a\u2068b", "a\u2069b",
				"a\u200eb", "a\u200fb", "a\u061cb", "a\u200bb", "a\ufeffb", "a\u00adb", "a\U000e0041b", "a\u2028b", "a\tb", "a\nb"} {
				_, _, err := f.svc.Create(ctx, caller, pat.CreateInput{OwnerID: f.user.ID, Description: desc,
					Scopes: []string{pat.ScopeFull}, ExpiresAt: exp})
				if sts.ErrorCode(err) != sts.Invalid || !strings.Contains(err.Error(), "U+") {
					t.Errorf("Create(description %+q) = %v, want invalid_argument naming the character", desc, err)
				}
				if _, err := f.svc.Update(ctx, caller, f.user.ID, kept.ID, pat.UpdateInput{Description: &desc}); sts.ErrorCode(err) != sts.Invalid {
					t.Errorf("Update(description %+q) = %v, want invalid_argument", desc, err)
				}
			}
			if got, err := f.store.GetPAT(ctx, kept.ID); err != nil || got.Description != "deploy" {
				t.Errorf("stored description = %q, %v; want it unchanged", got.Description, err)
			}
			// A description stored before the rule does not block a change
			// of scopes, and is kept.
			if err := f.store.UpdatePAT(ctx, kept.ID, func(p storage.PAT) (storage.PAT, error) {
				p.Description = "old\u202edesc"
				return p, nil
			}); err != nil {
				t.Fatal(err)
			}
			scopes := []string{pat.ScopeFull}
			if p, err := f.svc.Update(ctx, caller, f.user.ID, kept.ID, pat.UpdateInput{Scopes: &scopes}); err != nil || p.Description != "old\u202edesc" {
				t.Errorf("Update(scopes) of a token whose stored description breaks the rule = %+q, %v; want it kept", p.Description, err)
			}
			for _, desc := range []string{"Déploiement", "发布", "نشر", "می\u200cخواهم", "team 👩\u200d💻", "ci ✅"} {
				if p, _, err := f.svc.Create(ctx, caller, pat.CreateInput{OwnerID: f.user.ID, Description: desc,
					Scopes: []string{pat.ScopeFull}, ExpiresAt: exp}); err != nil || p.Description != desc {
					t.Errorf("Create(description %+q) = %q, %v; want it kept", desc, p.Description, err)
				}
			}
		})
	}
}
