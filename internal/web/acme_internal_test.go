package web

import (
	"testing"

	"github.com/opensts/sts/internal/storage"
)

// acmeAda stores the organization acme and its user ada in st, the
// person the pages' internal tests sign in.
func acmeAda(t *testing.T, st storage.Store) storage.Principal {
	t.Helper()
	if err := st.CreateOrganization(t.Context(), storage.Organization{ID: "acme", Name: "Acme"}); err != nil {
		t.Fatal(err)
	}
	p := storage.Principal{ID: storage.NewID(), OrgID: "acme", Kind: storage.PrincipalUser, Name: "ada"}
	if err := st.CreatePrincipal(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	return p
}
