package sts

import (
	"unicode"
	"unicode/utf8"
)

// MaxNameBytes is the longest name, in bytes, of an organization, a
// principal, a pool (display_name), a client or a sign-in button, wherever
// it is set: the API, the CLI, the pages or the configuration file
// (docs/security.md T-138).
const MaxNameBytes = 200

// DisplayRune reports whether r may appear in text a person sets for
// others to read: a name or description shown in lists, on pages and in
// the audit trail (docs/security.md T-135). Refused are control
// characters (Cc), line and paragraph separators (Zl, Zp) and format
// characters (Cf), which are invisible and include the bidi controls that
// reorder what is displayed (U+202A–U+202E, U+2066–U+2069, U+200E, U+200F,
// U+061C: "trojan source"), zero-width spaces, U+FEFF and tag characters.
// Kept are U+200C and U+200D (ZWNJ, ZWJ), which scripts such as Persian
// and emoji sequences need and which reorder nothing.
func DisplayRune(r rune) bool {
	switch {
	case r == '\u200c' || r == '\u200d':
		return true
	case unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp):
		return false
	}
	return true
}

// CheckDisplayText is nil when s is UTF-8 text of DisplayRune characters;
// otherwise an [Invalid] error naming field and the first character
// refused (U+XXXX, since it may not display). The one exception is an
// emoji subdivision flag (Unicode TS 51 tag sequence: U+1F3F4, the tag
// form of a CLDR subdivision code, U+E007F; 🏴 England is "gbeng"), which
// displays as the flag. Tag characters are an invisible copy of ASCII, so
// only a code's shape is accepted: two tag letters a–z, then one to four
// tag letters or digits; any other tag, or a sequence left open, is
// refused, and no text can hide behind a flag.
func CheckDisplayText(field, s string) error {
	const flag, cancelTag = 0x1F3F4, 0xE007F
	inFlag, tags := false, 0 // after U+1F3F4; tags of its code seen since
	for i, r := range s {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(s[i:]); n <= 1 {
				return Errorf(Invalid, "%s: not UTF-8 text", field)
			}
		}
		if inFlag {
			switch {
			case subdivisionTag(r, tags):
				tags++
				continue
			case r == cancelTag && tags >= 3:
				inFlag = false
				continue
			case tags > 0:
				return Errorf(Invalid, "%s: %U is not allowed: a flag's tag sequence must be a subdivision code ending with U+E007F", field, r)
			}
			inFlag = false
		}
		if r == flag {
			inFlag, tags = true, 0
			continue
		}
		if !DisplayRune(r) {
			return Errorf(Invalid, "%s: %U is not allowed: no control characters, bidi controls or other invisible formatting", field, r)
		}
	}
	if inFlag && tags > 0 {
		return Errorf(Invalid, "%s: a flag's tag sequence must be a subdivision code ending with U+E007F", field)
	}
	return nil
}

// subdivisionTag reports whether r may be the (n+1)-th tag of a flag's
// subdivision code: tag letters a–z first and second, then up to four tag
// letters or digits (Unicode TS 51 §2.2, CLDR subdivision codes).
func subdivisionTag(r rune, n int) bool {
	const tagA, tagZ, tag0, tag9 = 0xE0061, 0xE007A, 0xE0030, 0xE0039
	letter, digit := r >= tagA && r <= tagZ, r >= tag0 && r <= tag9
	switch {
	case n < 2:
		return letter
	case n < 6:
		return letter || digit
	}
	return false
}
