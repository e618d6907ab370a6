package archtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTestRSAKeysOnlyInTests: signer.SetTestRSAKeys hands the signer keys
// whose primes are in the repository, so only test files and the test
// kit that holds those primes, internal/ststest/rsatest (which the sts
// binary never imports, see TestDeps), may call it.
func TestTestRSAKeysOnlyInTests(t *testing.T) {
	root, files := repoFiles(t)
	callers := 0
	for _, rel := range files {
		if !strings.HasSuffix(rel, ".go") || rel == "internal/signer/testkeys.go" || rel == "internal/archtest/testhooks_test.go" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "SetTestRSAKeys") {
			continue
		}
		callers++
		if !strings.HasSuffix(rel, "_test.go") && !strings.HasPrefix(rel, "internal/ststest/rsatest/") {
			t.Errorf("%s calls signer.SetTestRSAKeys outside tests and internal/ststest/rsatest", rel)
		}
	}
	if callers == 0 {
		t.Error("no caller of signer.SetTestRSAKeys found: is the walk looking at the repository?")
	}
}
