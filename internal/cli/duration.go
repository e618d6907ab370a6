package cli

import (
	"time"

	"github.com/spf13/pflag"

	"github.com/opensts/sts/internal/config"
)

// durationValue is a pflag.Value for durations in the configuration's
// syntax (config.ParseDuration: Go's plus d), so every flag takes "30d"
// and a bad value's error names the accepted format.
type durationValue time.Duration

func (d *durationValue) Set(s string) error {
	v, err := config.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = durationValue(v)
	return nil
}

func (d *durationValue) String() string { return config.FormatDuration(time.Duration(*d)) }
func (d *durationValue) Type() string   { return "duration" }

// durationVar is fs.DurationVar with config.ParseDuration's syntax.
func durationVar(fs *pflag.FlagSet, p *time.Duration, name string, value time.Duration, usage string) {
	*p = value
	fs.Var((*durationValue)(p), name, usage)
}
