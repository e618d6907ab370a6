package cli

import (
	"io"
	"slices"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TestScopeFlagsTrimSpaces: every list-valued --scope flag (and
// --google-default-scopes) of every command parses `--scope 'repo, read:org'`
// as ["repo", "read:org"]: spaces around each scope are trimmed and empty
// ones dropped, and the flag stays repeatable. `sts bench --scope` is the
// one request scope string sent as is, not a list.
func TestScopeFlagsTrimSpaces(t *testing.T) {
	t.Parallel()
	seen := 0
	var walk func(*cobra.Command)
	walk = func(cmd *cobra.Command) {
		cmd.Flags().VisitAll(func(f *pflag.Flag) {
			if f.Name != "scope" && f.Name != "google-default-scopes" {
				return
			}
			if cmd.HasParent() && cmd.Parent().Name() == "bench" && f.Value.Type() == "string" {
				return
			}
			seen++
			for _, v := range []string{" repo, read:org ,,", "  ", "admin:org"} {
				if err := f.Value.Set(v); err != nil {
					t.Fatalf("%s --%s %q: %v", cmd.CommandPath(), f.Name, v, err)
				}
			}
			sv, ok := f.Value.(pflag.SliceValue)
			if !ok {
				t.Errorf("%s --%s is not a list", cmd.CommandPath(), f.Name)
				return
			}
			if got, want := sv.GetSlice(), []string{"repo", "read:org", "admin:org"}; !slices.Equal(got, want) {
				t.Errorf("%s --%s = %q, want %q", cmd.CommandPath(), f.Name, got, want)
			}
		})
		for _, c := range cmd.Commands() {
			walk(c)
		}
	}
	walk(newRoot(io.Discard, io.Discard))
	if seen < 8 {
		t.Errorf("found %d scope flags, want at least 8 (pat, client, host-token, pool, pool test)", seen)
	}
}
