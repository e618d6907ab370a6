package mutate

import "testing"

func TestLastCharAlwaysChanges(t *testing.T) {
	for _, s := range []string{"a", "abx", "aby", "xxxx", "sts_pat_0123"} {
		got := LastChar(s)
		if got == s || len(got) != len(s) || got[:len(s)-1] != s[:len(s)-1] {
			t.Errorf("LastChar(%q) = %q, want the same length and prefix and a different last byte", s, got)
		}
	}
}
