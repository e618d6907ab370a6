package sts_test

import (
	"strings"
	"testing"

	"github.com/opensts/sts/internal/sts"
)

// TestCheckDisplayText (docs/security.md T-135): the one rule for names
// and descriptions a person sets.
func TestCheckDisplayText(t *testing.T) {
	for _, s := range []string{"", "deploy", "Déploiement", "发布", "نشر", "می\u200cخواهم", "👩\u200d💻", "a\ufffdb", "a b"} {
		if err := sts.CheckDisplayText("name", s); err != nil {
			t.Errorf("CheckDisplayText(%+q) = %v, want nil", s, err)
		}
	}
	for _, r := range []rune{0, '\t', '\n', 0x7f, 0x85, 0xad, 0x61c, 0x200b, 0x200e, 0x200f, 0x2028, 0x2029,
		0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2060, 0x2066, 0x2067, 0x2068, 0x2069, 0xfeff, 0xe0041} {
		err := sts.CheckDisplayText("name", "a"+string(r)+"b")
		if sts.ErrorCode(err) != sts.Invalid || !strings.HasPrefix(err.Error(), "name: U+") {
			t.Errorf("CheckDisplayText(%U) = %v, want invalid naming it", r, err)
		}
	}
	// Emoji subdivision flags (Unicode TR 51 tag sequences: U+1F3F4, tag
	// characters, U+E007F) are the one place tag characters may appear;
	// hidden tags anywhere else, or a sequence left open, are refused.
	england := "\U0001F3F4\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F"
	for _, s := range []string{england + " CI", "Scotland \U0001F3F4\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F", "\U0001F3F4 pirate"} {
		if err := sts.CheckDisplayText("name", s); err != nil {
			t.Errorf("CheckDisplayText(%+q) = %v, want nil", s, err)
		}
	}
	hidden := "\U0001F3F4"
	for _, r := range "ignoreallpreviousinstructions" {
		hidden += string(0xE0000 + r)
	}
	for _, s := range []string{hidden + "\U000E007F", "\U0001F3F4\U000E0067\U000E007F", "\U0001F3F4\U000E0047\U000E0042\U000E0045\U000E004E\U000E0047\U000E007F", "\U0001F3F4\U000E0067\U000E0062\U000E0020\U000E007F", "ci\U000E0067\U000E007F", "\U0001F3F4\U000E0067\U000E0062 hidden", "\U0001F3F4\U000E0067", "\U0001F3F4\U000E007F\U000E0067", "\U000E007F"} {
		if err := sts.CheckDisplayText("name", s); sts.ErrorCode(err) != sts.Invalid {
			t.Errorf("CheckDisplayText(%+q) = %v, want invalid", s, err)
		}
	}
	if err := sts.CheckDisplayText("name", "a\xffb"); sts.ErrorCode(err) != sts.Invalid || !strings.Contains(err.Error(), "not UTF-8") {
		t.Errorf("CheckDisplayText(invalid UTF-8) = %v, want invalid", err)
	}
}
