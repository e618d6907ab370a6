package config

import (
	"reflect"
	"sort"
	"strings"
)

// knownKeys lists every leaf key of Config ("storage.dsn", …) and every
// struct-valued key ("storage"), the first true and the second false.
// Lists of records ("pools") are known but not leaves: they come only from
// the file, and checkItems checks the keys inside them.
func knownKeys() map[string]bool {
	keys := map[string]bool{}
	walkKeys(reflect.TypeFor[Config](), "", keys)
	return keys
}

func walkKeys(t reflect.Type, prefix string, keys map[string]bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		name := f.Tag.Get("koanf")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		key := prefix + name
		if isRecordList(f.Type) {
			keys[key] = false
			continue
		}
		if f.Type.Kind() == reflect.Struct {
			keys[key] = false
			walkKeys(f.Type, key+".", keys)
			continue
		}
		keys[key] = true
	}
}

// EnvName is the environment variable that sets key, for example
// STS_STORAGE_DSN for "storage.dsn".
func EnvName(key string) string {
	return "STS_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// envKeys maps each STS_* variable to its key. Underscores inside key names
// make a generic split ambiguous (STS_DATA_DIR), so the map is built from the
// known keys instead.
func envKeys() map[string]string {
	m := map[string]string{}
	for k, leaf := range knownKeys() {
		if leaf {
			m[EnvName(k)] = k
		}
	}
	return m
}

// Keys returns every configuration key, sorted; docs and tests use it.
func Keys() []string {
	var out []string
	for k, leaf := range knownKeys() {
		if leaf {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
