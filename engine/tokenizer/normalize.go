package tokenizer

import (
	"fmt"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// normalizer rewrites the text of one split before pre-tokenization.
type normalizer func(string) string

func buildNormalizer(c *component) (normalizer, error) {
	switch c.Type {
	case "Sequence":
		var fs []normalizer
		for i, sub := range c.Normalizers {
			f, err := buildNormalizer(sub)
			if err != nil {
				return nil, fmt.Errorf("normalizers[%d]: %w", i, err)
			}
			fs = append(fs, f)
		}
		return func(s string) string {
			for _, f := range fs {
				s = f(s)
			}
			return s
		}, nil
	case "NFC":
		return norm.NFC.String, nil
	case "NFD":
		return norm.NFD.String, nil
	case "NFKC":
		return norm.NFKC.String, nil
	case "NFKD":
		return norm.NFKD.String, nil
	case "Lowercase":
		return lower, nil
	case "StripAccents":
		return stripMarks, nil
	case "Strip":
		l, r := c.StripLeft, c.StripRight
		return func(s string) string {
			if l {
				s = strings.TrimLeftFunc(s, unicode.IsSpace)
			}
			if r {
				s = strings.TrimRightFunc(s, unicode.IsSpace)
			}
			return s
		}, nil
	case "Prepend":
		p := c.Prepend
		return func(s string) string {
			if s == "" {
				return s
			}
			return p + s
		}, nil
	case "Replace":
		rep, err := buildReplace(c)
		if err != nil {
			return nil, err
		}
		return rep, nil
	case "BertNormalizer":
		return bertNormalizer(boolOr(c.CleanText, true), boolOr(c.HandleChineseChars, true),
			c.StripAccents, boolOr(c.Lowercase, true)), nil
	}
	return nil, fmt.Errorf("unsupported normalizer type %q", c.Type)
}

// buildReplace compiles a Replace normalizer or decoder.
func buildReplace(c *component) (func(string) string, error) {
	content := strOr(c.Content, "")
	if c.Pattern == nil {
		return nil, fmt.Errorf("Replace needs a pattern")
	}
	if c.Pattern.String != nil {
		old := *c.Pattern.String
		if old == "" {
			return func(s string) string { return s }, nil
		}
		return func(s string) string { return strings.ReplaceAll(s, old, content) }, nil
	}
	m, err := compileMatcher(c.Pattern)
	if err != nil {
		return nil, err
	}
	return func(s string) string {
		var b strings.Builder
		prev := 0
		for _, sp := range m(s) {
			b.WriteString(s[prev:sp[0]])
			b.WriteString(content)
			prev = sp[1]
		}
		b.WriteString(s[prev:])
		return b.String()
	}, nil
}

// lower lowercases as the Rust tokenizers' NormalizedString::lowercase
// does: each character on its own, with Unicode's full mapping. So U+0130
// becomes "i" and a combining dot, which Go's simple mapping does not
// give, and a capital sigma is always σ — there is no word-final ς, as a
// character alone has no context (JavaScript's toLowerCase, which looks
// at the word, differs there; the models are trained on Rust's ids).
func lower(s string) string {
	if !strings.ContainsRune(s, '\u0130') {
		return strings.ToLower(s)
	}
	var b strings.Builder
	for _, r := range s {
		if r == '\u0130' {
			b.WriteString("i\u0307")
		} else {
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

func stripMarks(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.Is(unicode.Mn, r) {
			return -1
		}
		return r
	}, s)
}

func isChinese(r rune) bool {
	return r >= 0x4E00 && r <= 0x9FFF || r >= 0x3400 && r <= 0x4DBF ||
		r >= 0x20000 && r <= 0x2A6DF || r >= 0x2A700 && r <= 0x2B73F ||
		r >= 0x2B740 && r <= 0x2B81F || r >= 0x2B820 && r <= 0x2CEAF ||
		r >= 0xF900 && r <= 0xFAFF || r >= 0x2F800 && r <= 0x2FA1F
}

// bertNormalizer follows the order of the Rust BertNormalizer: clean,
// isolate CJK, strip accents, lowercase.
func bertNormalizer(clean, chinese bool, strip *bool, lowercase bool) normalizer {
	stripAccents := boolOr(strip, lowercase)
	return func(s string) string {
		if clean || chinese {
			var b strings.Builder
			for _, r := range s {
				switch {
				case clean && (r == 0 || r == utf8RuneError || isBertControl(r)):
				case clean && unicode.IsSpace(r):
					b.WriteByte(' ')
				case chinese && isChinese(r):
					b.WriteByte(' ')
					b.WriteRune(r)
					b.WriteByte(' ')
				default:
					b.WriteRune(r)
				}
			}
			s = b.String()
		}
		if stripAccents {
			s = stripMarks(norm.NFD.String(s))
		}
		if lowercase {
			s = lower(s)
		}
		return s
	}
}

const utf8RuneError = '\uFFFD'

func isBertControl(r rune) bool {
	if r == '\t' || r == '\n' || r == '\r' {
		return false
	}
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs)
}
