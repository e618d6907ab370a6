package config

import (
	"fmt"
	"sort"
	"strings"
)

// Problem is one thing wrong with the configuration, naming the key.
type Problem struct {
	Field   string
	Message string
}

func (p Problem) String() string { return p.Field + ": " + p.Message }

// Error lists every problem found while loading or validating, so an operator
// fixes them all in one go.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return "invalid configuration: " + strings.Join(lines, "; ")
}

func (e *Error) add(field, format string, args ...any) {
	e.Problems = append(e.Problems, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
}

// orNil returns e, sorted by field, or nil when there is no problem.
func (e *Error) orNil() error {
	if len(e.Problems) == 0 {
		return nil
	}
	sort.SliceStable(e.Problems, func(i, j int) bool { return e.Problems[i].Field < e.Problems[j].Field })
	return e
}
