package config

import (
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// docRow is one row of docs/configuration.md's key table.
type docRow struct {
	keys     []string
	defaults []string // the backticked values of the Default column, in order
	cell     string   // the Default column as written
	line     int
}

// configDocRows reads the key table of docs/configuration.md: the rows
// whose first cell holds backticked keys.
func configDocRows(t *testing.T) []docRow {
	t.Helper()
	data, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	code := regexp.MustCompile("`([^`]*)`")
	var rows []docRow
	for i, line := range strings.Split(string(data), "\n") {
		// No key or default holds a "|"; the meaning after them may.
		cells := strings.Split(line, "|")
		if !strings.HasPrefix(line, "| `") || len(cells) < 4 {
			continue
		}
		r := docRow{line: i + 1, cell: cells[2]}
		// The first cell is "`a`, `b` (`--flag`)": flags are not keys.
		keyCell, _, _ := strings.Cut(cells[1], " (")
		for _, m := range code.FindAllStringSubmatch(keyCell, -1) {
			r.keys = append(r.keys, m[1])
		}
		for _, m := range code.FindAllStringSubmatch(cells[2], -1) {
			r.defaults = append(r.defaults, m[1])
		}
		rows = append(rows, r)
	}
	if len(rows) < 40 {
		t.Fatalf("found %d key rows in docs/configuration.md; the table's shape changed", len(rows))
	}
	return rows
}

// TestConfigurationDocKeys: every key the code reads is in
// docs/configuration.md's table (itself or the record holding it, as
// rate_limits.per_ip holds rate and burst), and every key the table names
// is one the code reads.
func TestConfigurationDocKeys(t *testing.T) {
	known := knownKeys()
	documented := map[string]bool{}
	for _, r := range configDocRows(t) {
		for _, k := range r.keys {
			if k == "metric" || strings.HasPrefix(k, "sts_") {
				continue // the Redis section's metric table
			}
			if _, ok := known[k]; !ok {
				t.Errorf("docs/configuration.md:%d documents %q, which the configuration does not read", r.line, k)
			}
			documented[k] = true
		}
	}
	for _, k := range Keys() {
		covered := documented[k]
		for p := k; !covered && strings.Contains(p, "."); {
			p = p[:strings.LastIndex(p, ".")]
			covered = documented[p]
		}
		if !covered {
			t.Errorf("key %q is read by the configuration but not in docs/configuration.md", k)
		}
	}
	for k, leaf := range known {
		if !leaf && isRecordList(fieldType(k)) && !documented[k] {
			t.Errorf("list %q is read by the configuration but not in docs/configuration.md", k)
		}
	}
}

// derivedDefaults are defaults the table states in words, not values.
var derivedDefaults = map[string]bool{"issuer": true, "storage.path": true, "keys.extra_algorithms": true}

// TestConfigurationDocDefaults: the Default column says what
// DefaultConfig holds, key by key ("`5s` (when `0`)" documents a 0 that
// means 5s).
func TestConfigurationDocDefaults(t *testing.T) {
	def := DefaultConfig()
	for _, r := range configDocRows(t) {
		if r.keys[0] == "metric" || strings.HasPrefix(r.keys[0], "sts_") {
			continue
		}
		if len(r.defaults) == 0 {
			r.defaults = []string{""} // an empty cell: no default
		}
		for i, k := range r.keys {
			if derivedDefaults[k] {
				continue
			}
			doc := r.defaults[min(i, len(r.defaults)-1)]
			v, ok := valueAt(reflect.ValueOf(def), k)
			if !ok {
				continue // TestConfigurationDocKeys reports it
			}
			if strings.Contains(r.cell, "(when `0`)") && v.IsZero() {
				continue
			}
			if got := docValue(v); !sameDefault(v, got, doc) {
				t.Errorf("docs/configuration.md:%d: %s defaults to `%s`; the code's default is %s", r.line, k, doc, got)
			}
		}
	}
}

func fieldType(key string) reflect.Type {
	v, _ := valueAt(reflect.ValueOf(Config{}), key)
	return v.Type()
}

// docValue formats a default as the table writes it.
func docValue(v reflect.Value) string {
	switch x := v.Interface().(type) {
	case time.Duration:
		return x.String()
	case RateLimitConfig:
		return fmt.Sprintf("{rate: %v, burst: %d}", x.Rate, x.Burst)
	}
	switch v.Kind() {
	case reflect.Slice:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = fmt.Sprint(v.Index(i).Interface())
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case reflect.String:
		if v.String() == "" {
			return ""
		}
	}
	return fmt.Sprint(v.Interface())
}

func sameDefault(v reflect.Value, got, doc string) bool {
	if d, ok := v.Interface().(time.Duration); ok {
		want, err := ParseDuration(doc)
		return err == nil && want == d
	}
	if v.Kind() == reflect.Float64 {
		f, err := strconv.ParseFloat(doc, 64)
		return err == nil && f == v.Float()
	}
	return got == doc || (got == "" && slices.Contains([]string{"", "[]"}, doc))
}
