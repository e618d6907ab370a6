package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/config"
)

func TestNewLogger(t *testing.T) {
	t.Parallel()
	tests := []struct {
		format, level string
		wantPrefix    string
		wantDebug     bool
	}{
		{"auto", "info", "{", false}, // a buffer is not a terminal ⇒ JSON
		{"json", "debug", "{", true},
		{"text", "info", "time=", false},
	}
	for _, tc := range tests {
		var buf bytes.Buffer
		l := newLogger(config.LogConfig{Format: tc.format, Level: tc.level}, &buf)
		l.Debug("dbg")
		l.Info("hello")
		if !strings.HasPrefix(buf.String(), tc.wantPrefix) {
			t.Errorf("newLogger(%s) output %q, want prefix %q", tc.format, buf.String(), tc.wantPrefix)
		}
		if got := strings.Contains(buf.String(), "dbg"); got != tc.wantDebug {
			t.Errorf("newLogger(%s, %s) logged debug = %v, want %v", tc.format, tc.level, got, tc.wantDebug)
		}
	}
}
