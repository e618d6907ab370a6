package config

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
)

// structLists maps every key whose value is a list of records
// ("organizations", "pools") to the record type. The flat key check stops
// at lists, so checkItems looks inside them.
func structLists() map[string]reflect.Type {
	out := map[string]reflect.Type{}
	walkLists(reflect.TypeFor[Config](), "", out)
	return out
}

// walkLists finds the record lists of t, also inside nested sections
// ("web.login.oidc").
func walkLists(t reflect.Type, prefix string, out map[string]reflect.Type) {
	for i := range t.NumField() {
		f := t.Field(i)
		name := f.Tag.Get("koanf")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		switch {
		case isRecordList(f.Type):
			out[prefix+name] = f.Type.Elem()
		case f.Type.Kind() == reflect.Struct:
			walkLists(f.Type, prefix+name+".", out)
		}
	}
}

func isRecordList(t reflect.Type) bool {
	return t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct
}

// itemLabel names one list item in problems: by its id when it has one
// ("pools[ci]"), else by its index ("pools[0]").
func itemLabel(prefix, id string, i int) string {
	if id != "" {
		return prefix + "[" + id + "]"
	}
	return prefix + "[" + strconv.Itoa(i) + "]"
}

// checkItems reports unknown keys inside the items of a record list and
// expands ${VAR} in their string values, in place.
func checkItems(prefix string, v any, t reflect.Type, file string, lookup func(string) string, problems *Error) {
	items, ok := v.([]any)
	if !ok {
		if v != nil {
			problems.add(prefix, "must be a list")
		}
		return
	}
	for i, item := range items {
		m, ok := item.(map[string]any)
		if !ok {
			problems.add(fmt.Sprintf("%s[%d]", prefix, i), "must be a mapping")
			continue
		}
		id, _ := m["id"].(string)
		checkRecord(itemLabel(prefix, id, i), m, t, file, lookup, problems)
	}
}

// checkRecord checks the keys of m against the koanf tags of struct t.
func checkRecord(path string, m map[string]any, t reflect.Type, file string, lookup func(string) string, problems *Error) {
	fields := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if name := f.Tag.Get("koanf"); name != "" && name != "-" && f.IsExported() {
			fields[name] = f.Type
		}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ft, ok := fields[k]
		key := path + "." + k
		if !ok {
			problems.add(key, "unknown key in %s", file)
			delete(m, k)
			continue
		}
		m[k] = expandValue(key, m[k], lookup, problems)
		switch {
		case isRecordList(ft):
			checkItems(key, m[k], ft.Elem(), file, lookup, problems)
		case ft.Kind() == reflect.Struct:
			if sub, ok := m[k].(map[string]any); ok {
				checkRecord(key, sub, ft, file, lookup, problems)
			}
		}
	}
}

// expandValue applies expand to a string, or to the strings of a list or a
// string map (scopes, audiences, mapping.attributes); records are left to
// checkRecord.
func expandValue(key string, v any, lookup func(string) string, problems *Error) any {
	switch x := v.(type) {
	case string:
		return expand(key, x, lookup, problems)
	case []any:
		for i, e := range x {
			if s, ok := e.(string); ok {
				x[i] = expand(fmt.Sprintf("%s[%d]", key, i), s, lookup, problems)
			}
		}
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok {
				x[k] = expand(key+"."+k, s, lookup, problems)
			}
		}
	}
	return v
}
