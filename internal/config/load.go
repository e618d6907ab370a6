package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/maps"
	kyaml "github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/posflag"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"
)

// Options says where Load finds the layers above the defaults.
type Options struct {
	// File is the YAML file to read. When empty, DefaultFile is read if it
	// exists; an explicitly named file that is missing is an error.
	File string
	// Flags holds the command line. Only flags bound to a key with
	// [BindFlag] and set by the user are applied; every other flag is the
	// command's own, whatever its name.
	Flags *pflag.FlagSet
	// Environ returns the environment as KEY=value pairs; os.Environ when nil.
	Environ func() []string
}

// Load layers defaults → YAML file → STS_* environment → flags, fills the
// derived defaults and validates. Every problem it finds (unknown keys,
// values of the wrong type, invalid values) comes back in one *Error.
func Load(o Options) (Config, error) {
	environ := o.Environ
	if environ == nil {
		environ = os.Environ
	}
	lookup := lookupIn(environ())
	cfg := DefaultConfig()
	problems := &Error{}
	k := koanf.New(".")

	file, data, err := readFile(o.File)
	if err != nil {
		return cfg, err
	}
	if file != "" {
		if err := loadYAML(k, file, data, lookup, problems); err != nil {
			return cfg, err
		}
		cfg.File = file
	}

	known := envKeys()
	lists := envLists()
	err = k.Load(env.Provider(".", env.Opt{
		Prefix:      "STS_",
		EnvironFunc: environ,
		TransformFunc: func(name, v string) (string, any) {
			if v == "" {
				return "", nil // an empty variable counts as unset
			}
			if lists[known[name]] {
				// A list comes from one variable, comma-separated
				// (docs/configuration.md); whole, it would be one element
				// (docs/security.md F-70).
				return known[name], splitList(v)
			}
			return known[name], v
		},
	}), nil)
	if err != nil {
		return cfg, fmt.Errorf("read environment: %w", err)
	}

	if o.Flags != nil {
		leaves := knownKeys()
		var unknown []string
		err = k.Load(posflag.ProviderWithFlag(o.Flags, ".", nil, func(f *pflag.Flag) (string, any) {
			key, ok := boundKey(f)
			if !ok {
				return "", nil
			}
			if !leaves[key] {
				unknown = append(unknown, fmt.Sprintf("--%s (%s)", f.Name, key))
				return "", nil
			}
			return key, posflag.FlagVal(o.Flags, f)
		}), nil)
		if err != nil {
			return cfg, fmt.Errorf("read flags: %w", err)
		}
		if len(unknown) > 0 {
			return cfg, fmt.Errorf("read flags: bound to no configuration key: %s", strings.Join(unknown, ", "))
		}
	}

	// Durations take one syntax everywhere (ParseDuration: Go's plus d).
	dc := &mapstructure.DecoderConfig{
		DecodeHook:       mapstructure.ComposeDecodeHookFunc(durationHook(), mapstructure.TextUnmarshallerHookFunc()),
		WeaklyTypedInput: true,
	}
	if err := k.UnmarshalWithConf("", &cfg, koanf.UnmarshalConf{DecoderConfig: dc}); err != nil {
		addDecodeErrors(problems, err)
	}
	cfg.MasterKey = Secret(lookup("STS_MASTER_KEY"))
	readJWKSFiles(&cfg, problems)
	cfg.Derive()
	var verr *Error
	if errors.As(cfg.Validate(), &verr) {
		problems.Problems = append(problems.Problems, verr.Problems...)
	}
	return cfg, problems.orNil()
}

// readFile returns the file to load and its bytes, or "" when none applies.
func readFile(name string) (string, []byte, error) {
	explicit := name != ""
	if !explicit {
		name = DefaultFile
	}
	data, err := os.ReadFile(name)
	if !explicit && errors.Is(err, fs.ErrNotExist) {
		return "", nil, nil
	}
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", nil, fmt.Errorf("config file %q: %w", name, err)
	}
	return name, data, nil
}

// loadYAML parses data, expands ${VAR} references, records unknown keys as
// problems and loads the rest into k.
func loadYAML(k *koanf.Koanf, file string, data []byte, lookup func(string) string, problems *Error) error {
	raw, err := kyaml.Parser().Unmarshal(data)
	if err != nil {
		return fmt.Errorf("config file %q: not valid YAML: %w", file, err)
	}
	flat, _ := maps.Flatten(raw, nil, ".")
	known := knownKeys()
	lists := structLists()
	keys := make([]string, 0, len(flat))
	for key := range flat {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		if _, ok := known[key]; !ok {
			problems.add(key, "unknown key in %s", file)
			delete(flat, key)
			continue
		}
		if t, ok := lists[key]; ok {
			checkItems(key, flat[key], t, file, lookup, problems)
			continue
		}
		if s, ok := flat[key].(string); ok {
			flat[key] = expand(key, s, lookup, problems)
		}
	}
	return k.Load(mapProvider(maps.Unflatten(flat, ".")), nil)
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expand replaces ${VAR} in a YAML string value with the environment
// variable's value (dex expandEnvInMap). Only the braced form is expanded so
// a "$" inside a password stays as written. A reference to an unset variable
// is a problem rather than a silent empty string.
func expand(key, s string, lookup func(string) string, problems *Error) string {
	return envRef.ReplaceAllStringFunc(s, func(ref string) string {
		name := ref[2 : len(ref)-1]
		v := lookup(name)
		if v == "" {
			problems.add(key, "references unset environment variable %s", name)
		}
		return v
	})
}

func lookupIn(environ []string) func(string) string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return func(name string) string { return m[name] }
}

// mapProvider is a koanf.Provider over an already parsed map.
type mapProvider map[string]any

func (m mapProvider) ReadBytes() ([]byte, error)    { return nil, errors.New("not supported") }
func (m mapProvider) Read() (map[string]any, error) { return m, nil }
