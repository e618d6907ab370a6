package config

import "github.com/spf13/pflag"

// flagKeyAnnotation is the pflag annotation naming the key a flag sets.
const flagKeyAnnotation = "sts.config.key"

// BindFlag makes flag f, once set on the command line, set the
// configuration key key (for example --data-dir sets "data_dir"). Load
// applies bound flags only: a command's own flag named like a key, such as
// the provider's issuer of `sts provider create --issuer`, never fills the
// server's key of that name.
func BindFlag(f *pflag.Flag, key string) {
	if f.Annotations == nil {
		f.Annotations = map[string][]string{}
	}
	f.Annotations[flagKeyAnnotation] = []string{key}
}

// boundKey returns the key f was bound to with BindFlag.
func boundKey(f *pflag.Flag) (string, bool) {
	k := f.Annotations[flagKeyAnnotation]
	if len(k) != 1 {
		return "", false
	}
	return k[0], true
}
