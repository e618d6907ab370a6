package cache

import (
	"reflect"
	"testing"

	"github.com/opensts/sts/internal/storage"
)

func fullClient() storage.Client {
	return storage.Client{ID: "c", SecretDigest: []byte("digest"), JWKS: []byte(`{"keys":[]}`),
		GrantTypes: []string{"client_credentials", "refresh_token"}, Pools: []string{"p1", "p2"},
		Audiences: []string{"a1", "a2"}, Scopes: []string{"read", "write"}, RedirectURIs: []string{"https://x/cb"}}
}

// TestCloneClientIndependent: every slice of a copy is its own, element and
// append alike (an append to one slice must not write into the next one's
// elements), and a copy is made in two allocations (one for the byte
// slices, one for the string slices) whatever the number of fields set.
func TestCloneClientIndependent(t *testing.T) {
	orig := fullClient()
	c := cloneClient(orig)
	if !reflect.DeepEqual(c, orig) {
		t.Fatalf("clone = %+v, want %+v", c, orig)
	}
	c.SecretDigest[0], c.JWKS[0] = 'X', 'X'
	c.GrantTypes[0], c.Pools[0], c.Audiences[0], c.Scopes[0], c.RedirectURIs[0] = "x", "x", "x", "x", "x"
	c.SecretDigest = append(c.SecretDigest, 'Y')
	c.GrantTypes = append(c.GrantTypes, "y")
	c.Pools = append(c.Pools, "y")
	c.Audiences = append(c.Audiences, "y")
	c.Scopes = append(c.Scopes, "y")
	if want := fullClient(); !reflect.DeepEqual(orig, want) {
		t.Fatalf("original changed through its copy: %+v", orig)
	}
	d := cloneClient(fullClient())
	d.GrantTypes = append(d.GrantTypes, "y") // must not land in Pools[0]
	d.SecretDigest = append(d.SecretDigest, 'Y')
	if d.Pools[0] != "p1" || string(d.JWKS) != `{"keys":[]}` {
		t.Fatalf("an append to one field wrote into another: %+v", d)
	}
	if n := testing.AllocsPerRun(100, func() { _ = cloneClient(orig) }); n > 2 {
		t.Errorf("cloneClient: %v allocations, want at most 2", n)
	}
	if c := cloneClient(storage.Client{ID: "c"}); c.Scopes != nil || c.SecretDigest != nil || c.RedirectURIs != nil {
		t.Errorf("nil slices cloned to non-nil: %+v", c)
	}
}
