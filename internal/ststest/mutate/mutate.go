// Package mutate damages test inputs in ways that are guaranteed to change
// them. A test that corrupts a secret by overwriting its last character
// with a fixed letter passes the secret through unchanged whenever it
// already ended in that letter, and then fails one run in sixty.
package mutate

// LastChar returns s with its last byte replaced by a different
// alphanumeric byte. s must not be empty.
func LastChar(s string) string {
	repl := byte('x')
	if s[len(s)-1] == repl {
		repl = 'y'
	}
	return s[:len(s)-1] + string(repl)
}
