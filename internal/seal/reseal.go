package seal

import (
	"errors"
	"fmt"
	"strings"
)

// ResealError lists the rows a re-seal under a new master key (`sts keys
// rotate-master`) left under their old one because they do not open:
// tampered with, moved, or sealed under a master key that is not loaded.
// One such row must not keep every later one under the old key, so the
// re-seal goes on and returns this at the end. It names row IDs only,
// never values.
type ResealError struct {
	What string   // what the rows hold, plural ("host tokens")
	IDs  []string // rows not re-sealed, in the order met
	Err  error    // the first row's error: wraps ErrOpen or ErrUnknownKey
}

// Skip records row id as left behind when err says it does not open
// (ErrOpen, ErrUnknownKey), and reports whether it did; any other error is
// the caller's to handle.
func (e *ResealError) Skip(id string, err error) bool {
	if !errors.Is(err, ErrOpen) && !errors.Is(err, ErrUnknownKey) {
		return false
	}
	if e.Err == nil {
		e.Err = err
	}
	e.IDs = append(e.IDs, id)
	return true
}

// OrNil is e when it names a row, nil otherwise.
func (e *ResealError) OrNil() error {
	if len(e.IDs) == 0 {
		return nil
	}
	return e
}

func (e *ResealError) Error() string {
	return fmt.Sprintf("reseal: %d %s do not open and stay under their old master key: %s: %v",
		len(e.IDs), e.What, strings.Join(e.IDs, ", "), e.Err)
}

func (e *ResealError) Unwrap() error { return e.Err }
