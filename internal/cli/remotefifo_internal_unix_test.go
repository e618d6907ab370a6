//go:build unix

package cli

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReadTokenFileFIFOWithoutWriter: a FIFO nobody writes to is refused
// once the wait is over, instead of blocking the command for ever in open.
func TestReadTokenFileFIFOWithoutWriter(t *testing.T) {
	t.Parallel()
	fifo := filepath.Join(t.TempDir(), "token")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	type result struct {
		tok string
		err error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		tok, err := readTokenFileWithin(fifo, 200*time.Millisecond)
		done <- result{tok, err}
	}()
	select {
	case r := <-done:
		if r.err == nil || !strings.Contains(r.err.Error(), "nothing written") {
			t.Errorf("readTokenFileWithin(FIFO without writer) = %q, %v; want nothing written", r.tok, r.err)
		}
		if d := time.Since(start); d < 200*time.Millisecond {
			t.Errorf("gave up after %s, before the wait of 200ms", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("readTokenFileWithin(FIFO without writer) still blocked after 5 s")
	}
}
