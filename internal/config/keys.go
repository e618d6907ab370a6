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

// envLists names the leaf keys whose value is a list of strings: from the
// environment each takes a comma-separated list.
func envLists() map[string]bool {
	m := map[string]bool{}
	for k, leaf := range knownKeys() {
		if v, ok := valueAt(reflect.ValueOf(Config{}), k); leaf && ok && v.Kind() == reflect.Slice {
			m[k] = true
		}
	}
	return m
}

// splitList splits a comma-separated list, trimming spaces around each
// element and dropping empty ones ("a, b," is [a b]).
func splitList(s string) []string {
	out := []string{}
	for e := range strings.SplitSeq(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// valueAt follows the koanf tags of key's parts from v.
func valueAt(v reflect.Value, key string) (reflect.Value, bool) {
	for part := range strings.SplitSeq(key, ".") {
		found := false
		for i := range v.NumField() {
			if v.Type().Field(i).Tag.Get("koanf") == part {
				v, found = v.Field(i), true
				break
			}
		}
		if !found {
			return v, false
		}
	}
	return v, true
}
