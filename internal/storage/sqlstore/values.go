package sqlstore

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// Column encodings shared by every aggregate. The zero time.Time is stored
// as NULL in both dialects, so optional times round-trip as zero and never
// match a comparison such as expires_at < $1 (garbage collection skips
// "never expires"). Lists sort NULL times first, as the smallest time.

// ts encodes a time parameter: unix microseconds (SQLite INTEGER) or a UTC
// time.Time (PostgreSQL TIMESTAMPTZ), truncated to the microsecond both keep.
func (s *Store) ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	if s.dialect == dialectSQLite {
		return t.UnixMicro()
	}
	return storage.Now(t)
}

// timeCol scans a time column written by ts.
type timeCol struct{ t *time.Time }

func (c timeCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.t = time.Time{}
	case int64:
		*c.t = time.UnixMicro(v).UTC()
	case time.Time:
		*c.t = v.UTC()
	default:
		return fmt.Errorf("time column: unexpected %T", src)
	}
	return nil
}

// jsonText encodes a []string or Mapping as JSON text. nil and empty stay
// distinct ("null" versus "[]").
func jsonText(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// strs encodes a []string; marshalling strings cannot fail.
func strs(v []string) string {
	s, _ := jsonText(v)
	return s
}

// jsonCol scans JSON text (SQLite TEXT, PostgreSQL JSONB) into p.
type jsonCol struct{ p any }

func (c jsonCol) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case nil:
		return nil
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return fmt.Errorf("json column: unexpected %T", src)
	}
	return json.Unmarshal(b, c.p)
}

// mapping mirrors storage.Mapping without omitempty so that an empty
// Attributes map round-trips as empty rather than nil.
type mapping struct {
	Subject    string            `json:"subject"`
	Groups     string            `json:"groups"`
	Attributes map[string]string `json:"attributes"`
}
