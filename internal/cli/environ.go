package cli

import (
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// environ is the environment of one Main run (see MainEnv).
type environ struct {
	pairs []string          // as given
	vars  map[string]string // the last value of each name
}

type environKey struct{}

func newEnviron(pairs []string) *environ {
	e := &environ{pairs: pairs, vars: make(map[string]string, len(pairs))}
	for _, kv := range pairs {
		if k, v, ok := strings.Cut(kv, "="); ok {
			e.vars[k] = v
		}
	}
	return e
}

// list is the environment as KEY=value pairs, one per name, for
// config.Options.Environ.
func (e *environ) list() []string {
	out := make([]string, 0, len(e.vars))
	for k, v := range e.vars {
		out = append(out, k+"="+v)
	}
	return out
}

// getenv is os.Getenv in this environment.
func (e *environ) getenv(name string) string { return e.vars[name] }

// environOf is the environment of cmd's run: the process's when cmd was
// not started by MainEnv.
func environOf(cmd *cobra.Command) *environ {
	if ctx := cmd.Context(); ctx != nil {
		if e, ok := ctx.Value(environKey{}).(*environ); ok {
			return e
		}
	}
	return newEnviron(os.Environ())
}

// envDefaultAnnotation names the variable whose value, when set, is the
// default of a flag (--server's STS_SERVER); applyFlagDefaults sets it.
const envDefaultAnnotation = "sts_env_default"

// envDefault makes the variable name, when set, the default of flag name
// in fs.
func envDefault(fs *pflag.FlagSet, flag, name string) {
	_ = fs.SetAnnotation(flag, envDefaultAnnotation, []string{name})
}

// applyFlagDefaults gives every flag marked with envDefault in the tree
// under cmd its variable's value as default, when the variable is set.
func (e *environ) applyFlagDefaults(cmd *cobra.Command) {
	apply := func(f *pflag.Flag) {
		names := f.Annotations[envDefaultAnnotation]
		if len(names) != 1 {
			return
		}
		if v := e.getenv(names[0]); v != "" {
			_ = f.Value.Set(v)
			f.DefValue = v
		}
	}
	cmd.PersistentFlags().VisitAll(apply)
	cmd.Flags().VisitAll(apply)
	for _, sub := range cmd.Commands() {
		e.applyFlagDefaults(sub)
	}
}
