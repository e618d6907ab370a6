package archtest

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTestRSAKeysOnlyInTests: signer.SetTestRSAKeys hands the signer keys
// whose primes are in the repository, so only test files and the test
// kits under internal/ststest (which the sts binary never imports, see
// TestDependencyRules) may call it.
func TestTestRSAKeysOnlyInTests(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	callers := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel != "." && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || rel == "internal/signer/testkeys.go" || rel == "internal/archtest/testhooks_test.go" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil || !strings.Contains(string(b), "SetTestRSAKeys") {
			return err
		}
		callers++
		if !strings.HasSuffix(rel, "_test.go") && !strings.HasPrefix(rel, "internal/ststest/") {
			t.Errorf("%s calls signer.SetTestRSAKeys outside tests and internal/ststest", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if callers == 0 {
		t.Error("no caller of signer.SetTestRSAKeys found: is the walk looking at the repository?")
	}
}
