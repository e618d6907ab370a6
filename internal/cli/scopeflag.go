package cli

import (
	"strings"

	"github.com/spf13/pflag"
)

// scopesVar defines a list-valued scope flag, the one parser of every
// --scope flag that takes a list: repeatable or comma-separated, each
// scope trimmed of the spaces around it and empty ones dropped, so
// `--scope 'repo, read:org'` is ["repo", "read:org"] and never stores
// " read:org". Given only empty values (`--scope ""`), the list is empty.
func scopesVar(fs *pflag.FlagSet, p *[]string, name, usage string) {
	fs.Var(&scopeList{p: p}, name, usage)
}

type scopeList struct {
	p   *[]string
	set bool
}

func (s *scopeList) Set(v string) error {
	if !s.set {
		*s.p, s.set = []string{}, true // the first value replaces the default
	}
	*s.p = append(*s.p, splitScopes(v)...)
	return nil
}

func splitScopes(v string) []string {
	var out []string
	for part := range strings.SplitSeq(v, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// String is empty for an empty list, so help shows no "(default [])".
func (s *scopeList) String() string {
	if len(*s.p) == 0 {
		return ""
	}
	return "[" + strings.Join(*s.p, ",") + "]"
}

// Type is what pflag's StringSlice says, so help and completion are unchanged.
func (s *scopeList) Type() string { return "strings" }

// GetSlice, Append and Replace make it a pflag.SliceValue.
func (s *scopeList) GetSlice() []string { return *s.p }

func (s *scopeList) Append(v string) error {
	*s.p = append(*s.p, splitScopes(v)...)
	return nil
}

func (s *scopeList) Replace(vs []string) error {
	*s.p = []string{}
	for _, v := range vs {
		*s.p = append(*s.p, splitScopes(v)...)
	}
	return nil
}
