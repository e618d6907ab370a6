package cli

import (
	"fmt"
	"net/url"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/opensts/sts/internal/app"
	"github.com/opensts/sts/internal/clientip"
	"github.com/opensts/sts/internal/config"
)

// redacted replaces every secret in the printed configuration.
const redacted = "REDACTED"

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Inspect the configuration"}
	cmd.AddCommand(&cobra.Command{
		Use:   "check",
		Short: "Validate the configuration and print it with secrets redacted",
		Long: `Load the configuration exactly as serve would (defaults, the YAML file, STS_*
environment variables, flags), validate it, and print the effective result as
YAML. Secrets (the master key, a password in storage.dsn or
rate_limits.redis_url) are printed as REDACTED. An invalid configuration exits
with status 2 and names each offending key.`,
		Example: `  sts config check --config /etc/sts/sts.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			if err := app.CheckServeConfig(cfg); err != nil {
				return err
			}
			out, err := redactedYAML(cfg)
			if err != nil {
				return err
			}
			if cfg.File != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "# %s is valid; effective configuration:\n", cfg.File)
			} else {
				fmt.Fprintln(cmd.OutOrStdout(), "# no configuration file; effective configuration:")
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	})
	return cmd
}

// redactedYAML renders cfg under its YAML keys (the koanf tags), in field
// order, with every secret replaced by REDACTED.
func redactedYAML(cfg config.Config) ([]byte, error) {
	n := configNode(reflect.ValueOf(cfg), "")
	b, err := yaml.Marshal(n)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return b, nil
}

var (
	secretType   = reflect.TypeOf(config.Secret(""))
	durationType = reflect.TypeOf(time.Duration(0))
)

func scalar(s string, tag string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: s}
}

// configNode turns v into a YAML node; key is its YAML key, which decides
// whether a plain string is a secret.
func configNode(v reflect.Value, key string) *yaml.Node {
	switch {
	case v.Type() == secretType:
		if v.String() == "" {
			return scalar("", "!!str")
		}
		return scalar(redacted, "!!str")
	case v.Type() == durationType:
		return scalar(time.Duration(v.Int()).String(), "!!str")
	}
	switch v.Kind() {
	case reflect.Struct:
		m := &yaml.Node{Kind: yaml.MappingNode}
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name := f.Tag.Get("koanf")
			if name == "-" {
				// Only secrets read from the environment are shown, so
				// that one can see one is set; other untagged fields
				// (the file name) are not configuration.
				if f.Type != secretType {
					continue
				}
				name = snake(f.Name)
			}
			if name == "" {
				name = snake(f.Name)
			}
			m.Content = append(m.Content, scalar(name, "!!str"), configNode(v.Field(i), name))
		}
		return m
	case reflect.Slice, reflect.Array:
		s := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for i := range v.Len() {
			e := configNode(v.Index(i), key)
			if e.Kind != yaml.ScalarNode || e.LineComment != "" {
				s.Style = 0
			}
			s.Content = append(s.Content, e)
		}
		return s
	case reflect.Map:
		m := &yaml.Node{Kind: yaml.MappingNode}
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
		for _, k := range keys {
			ks := fmt.Sprint(k.Interface())
			m.Content = append(m.Content, scalar(ks, "!!str"), configNode(v.MapIndex(k), ks))
		}
		return m
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return scalar("null", "!!null")
		}
		return configNode(v.Elem(), key)
	case reflect.String:
		s := v.String()
		switch key {
		case "dsn":
			s = redactDSN(s)
		case "trusted_proxies":
			return trustedProxyNode(s)
		}
		return scalar(s, "!!str")
	case reflect.Bool:
		return scalar(strconv.FormatBool(v.Bool()), "")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return scalar(strconv.FormatInt(v.Int(), 10), "")
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return scalar(strconv.FormatUint(v.Uint(), 10), "")
	case reflect.Float32, reflect.Float64:
		return scalar(strconv.FormatFloat(v.Float(), 'g', -1, 64), "")
	}
	return scalar(fmt.Sprint(v.Interface()), "!!str")
}

// trustedProxyNode shows one http.trusted_proxies CIDR as the server
// reads it (masked, an IPv4-mapped one in its IPv4 form; docs/security.md
// F-83) and names what was written when that differs, so that the
// operator sees which peers are trusted, not only what was typed.
func trustedProxyNode(s string) *yaml.Node {
	p, err := clientip.ParsePrefixes([]string{s})
	if err != nil || p[0].String() == s {
		return scalar(s, "!!str")
	}
	n := scalar(p[0].String(), "!!str")
	n.LineComment = "written " + strings.TrimSpace(s)
	return n
}

// kvPassword matches password=... in a key/value PostgreSQL DSN, quoted
// or not.
var kvPassword = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// redactDSN hides the passwords of a PostgreSQL DSN in URL form
// (postgres://user:pw@host/db?password=pw&sslpassword=pw) or key/value
// form (host=db password=pw sslpassword=pw). Anything it cannot parse is
// hidden whole.
func redactDSN(dsn string) string {
	if dsn == "" {
		return ""
	}
	if strings.Contains(dsn, "://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return redacted
		}
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), redacted)
		}
		q := u.Query()
		for k := range q {
			// password, and sslpassword: the passphrase of the client
			// certificate's key (docs/security.md F-65).
			if strings.HasSuffix(strings.ToLower(k), "password") {
				q.Set(k, redacted)
			}
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
	return kvPassword.ReplaceAllString(dsn, "${1}"+redacted)
}

// snake turns a Go field name into a YAML key: MasterKey → master_key.
func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}
