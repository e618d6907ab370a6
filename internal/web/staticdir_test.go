package web_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestStaticDirectoryNotListed (docs/security.md T-209): GET /static/
// answered 200 with a listing of the embedded assets, and any answer
// under /static/, a 404 included, was marked cacheable by any cache for
// five minutes. A directory path is now 404, and only an asset is
// cached publicly.
func TestStaticDirectoryNotListed(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	for _, c := range []struct {
		path   string
		status int
	}{{"/static/", 404}, {"/static//", 404}, {"/static/nope.js", 404}, {"/static/app.js", 200}} {
		resp, err := http.Get(s.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("GET %s: %d, want %d; body: %.300s", c.path, resp.StatusCode, c.status, b)
		}
		if cc := resp.Header.Get("Cache-Control"); (resp.StatusCode == http.StatusOK) != strings.Contains(cc, "public") {
			t.Errorf("GET %s: %d with Cache-Control %q: only an asset is cached publicly", c.path, resp.StatusCode, cc)
		}
		if strings.Contains(string(b), "app.js") && c.status != 200 {
			t.Errorf("GET %s lists the assets: %.300s", c.path, b)
		}
	}
}
