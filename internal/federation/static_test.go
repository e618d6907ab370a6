package federation

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"strconv"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// TestStaticSetsEvictGradually: more distinct uploaded JWKS in use than
// maxStaticSets evict the least recently used one at a time; the others
// stay parsed (no cliff past the bound).
func TestStaticSetsEvictGradually(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	doc := func(i int) []byte {
		b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k" + strconv.Itoa(i), Algorithm: "ES256", Use: "sig"}}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	c := &Cache{}
	c.init()
	first := map[int]*keySet{}
	for i := range maxStaticSets {
		ks, err := c.staticSet(doc(i))
		if err != nil {
			t.Fatal(err)
		}
		first[i] = ks
	}
	if _, err := c.staticSet(doc(0)); err != nil { // touch: 1 is the least recently used
		t.Fatal(err)
	}
	if _, err := c.staticSet(doc(maxStaticSets)); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 2, maxStaticSets - 1} {
		if ks, _ := c.staticSet(doc(i)); ks != first[i] {
			t.Errorf("set %d was parsed again: the cache was emptied", i)
		}
	}
	if ks, _ := c.staticSet(doc(1)); ks == first[1] {
		t.Error("the least recently used set was not evicted")
	}
}
