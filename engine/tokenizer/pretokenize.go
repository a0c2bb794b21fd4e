package tokenizer

import (
	"fmt"
	"strings"
	"unicode"
)

// preTokenizer splits one normalized split into words for the model.
// atStart tells whether the split begins the input (Metaspace's "first").
type preTokenizer func(words []string, atStart bool) []string

// behavior says what Split does with the pieces a pattern matched.
type behavior int

const (
	removed behavior = iota
	isolated
	mergedWithPrevious
	mergedWithNext
	contiguous
)

var behaviors = map[string]behavior{
	"Removed": removed, "Isolated": isolated, "MergedWithPrevious": mergedWithPrevious,
	"MergedWithNext": mergedWithNext, "Contiguous": contiguous,
}

func buildPreTokenizer(c *component) (preTokenizer, error) {
	switch c.Type {
	case "Sequence":
		var ps []preTokenizer
		for i, sub := range c.Pretokenizers {
			p, err := buildPreTokenizer(sub)
			if err != nil {
				return nil, fmt.Errorf("pretokenizers[%d]: %w", i, err)
			}
			ps = append(ps, p)
		}
		return func(words []string, atStart bool) []string {
			for _, p := range ps {
				words = p(words, atStart)
			}
			return words
		}, nil
	case "ByteLevel":
		prefix, useRegex := boolOr(c.AddPrefixSpace, true), boolOr(c.UseRegex, true)
		gpt2 := knownPatterns[gpt2Pattern]
		return func(words []string, _ bool) []string {
			var out []string
			for _, w := range words {
				if prefix && !strings.HasPrefix(w, " ") {
					w = " " + w
				}
				if useRegex {
					out = splitWith(out, w, gpt2, isolated, false)
				} else {
					out = append(out, w)
				}
			}
			for i, w := range out {
				out[i] = byteEncode(w)
			}
			return out
		}, nil
	case "Split":
		if c.Pattern == nil {
			return nil, fmt.Errorf("Split needs a pattern")
		}
		m, err := compileMatcher(c.Pattern)
		if err != nil {
			return nil, err
		}
		b, ok := behaviors[c.Behavior]
		if !ok {
			return nil, fmt.Errorf("unsupported Split behavior %q", c.Behavior)
		}
		return eachWord(func(out []string, w string) []string { return splitWith(out, w, m, b, c.Invert) }), nil
	case "Metaspace":
		return buildMetaspace(c)
	case "BertPreTokenizer":
		return eachWord(func(out []string, w string) []string {
			for _, f := range strings.FieldsFunc(w, unicode.IsSpace) {
				out = splitWith(out, f, charMatcher(isBertPunct), isolated, false)
			}
			return out
		}), nil
	case "Whitespace":
		return eachWord(func(out []string, w string) []string {
			return splitWith(out, w, runMatcher(isWordChar, func(r rune) bool { return !isWordChar(r) && !unicode.IsSpace(r) }), removed, true)
		}), nil
	case "WhitespaceSplit":
		return eachWord(func(out []string, w string) []string {
			return append(out, strings.FieldsFunc(w, unicode.IsSpace)...)
		}), nil
	case "Punctuation":
		b, ok := behaviors[c.Behavior]
		if c.Behavior == "" {
			b, ok = isolated, true
		}
		if !ok {
			return nil, fmt.Errorf("unsupported Punctuation behavior %q", c.Behavior)
		}
		return eachWord(func(out []string, w string) []string { return splitWith(out, w, charMatcher(isBertPunct), b, false) }), nil
	case "Digits":
		b := contiguous
		if c.IndividualDigits {
			b = isolated
		}
		return eachWord(func(out []string, w string) []string {
			return splitWith(out, w, charMatcher(unicode.IsNumber), b, false)
		}), nil
	}
	return nil, fmt.Errorf("unsupported pre_tokenizer type %q", c.Type)
}

func eachWord(f func(out []string, w string) []string) preTokenizer {
	return func(words []string, _ bool) []string {
		var out []string
		for _, w := range words {
			out = f(out, w)
		}
		return out
	}
}

func buildMetaspace(c *component) (preTokenizer, error) {
	rep := strOr(c.Replacement, "▁")
	scheme := "always"
	if c.PrependScheme != nil {
		scheme = *c.PrependScheme
	} else if c.AddPrefixSpace != nil && !*c.AddPrefixSpace {
		scheme = "never"
	}
	if scheme != "always" && scheme != "first" && scheme != "never" {
		return nil, fmt.Errorf("unsupported Metaspace prepend_scheme %q", scheme)
	}
	split := boolOr(c.Split, true)
	lit := rep
	m, _ := compileMatcher(&pattern{String: &lit})
	return func(words []string, atStart bool) []string {
		var out []string
		for i, w := range words {
			w = strings.ReplaceAll(w, " ", rep)
			if !strings.HasPrefix(w, rep) && (scheme == "always" || scheme == "first" && atStart && i == 0) {
				w = rep + w
			}
			if split {
				out = splitWith(out, w, m, mergedWithNext, false)
			} else {
				out = append(out, w)
			}
		}
		return out
	}, nil
}

// splitWith appends the pieces of s to out, cut where m matches, keeping the
// matched parts as b says; it follows NormalizedString::split in Rust.
func splitWith(out []string, s string, m matcher, b behavior, invert bool) []string {
	type piece struct {
		lo, hi int
		match  bool
	}
	var ps []piece
	prev := 0
	for _, sp := range m(s) {
		if prev < sp[0] {
			ps = append(ps, piece{prev, sp[0], invert})
		}
		ps = append(ps, piece{sp[0], sp[1], !invert})
		prev = sp[1]
	}
	if prev < len(s) {
		ps = append(ps, piece{prev, len(s), invert})
	}
	var keep []piece
	switch b {
	case removed:
		for _, p := range ps {
			if !p.match {
				keep = append(keep, p)
			}
		}
	case isolated:
		keep = ps
	case contiguous:
		for i, p := range ps {
			if i > 0 && p.match == ps[i-1].match {
				keep[len(keep)-1].hi = p.hi
			} else {
				keep = append(keep, p)
			}
		}
	case mergedWithPrevious:
		for i, p := range ps {
			if p.match && len(keep) > 0 && !ps[i-1].match {
				keep[len(keep)-1].hi = p.hi
			} else {
				keep = append(keep, p)
			}
		}
	case mergedWithNext:
		for i := len(ps) - 1; i >= 0; i-- {
			p := ps[i]
			if p.match && len(keep) > 0 && !ps[i+1].match {
				keep[len(keep)-1].lo = p.lo
			} else {
				keep = append(keep, p)
			}
		}
		for i, j := 0, len(keep)-1; i < j; i, j = i+1, j-1 {
			keep[i], keep[j] = keep[j], keep[i]
		}
	}
	for _, p := range keep {
		if p.lo < p.hi {
			out = append(out, s[p.lo:p.hi])
		}
	}
	return out
}

// charMatcher matches every character for which f holds, one at a time.
func charMatcher(f func(rune) bool) matcher {
	return func(s string) [][2]int {
		var out [][2]int
		for i, r := range s {
			if f(r) {
				out = append(out, [2]int{i, i + len(string(r))})
			}
		}
		return out
	}
}

// runMatcher matches maximal runs of characters in one of the classes.
func runMatcher(classes ...func(rune) bool) matcher {
	return func(s string) [][2]int {
		var out [][2]int
		for i := 0; i < len(s); {
			n := 0
			for _, f := range classes {
				if n = runLen(s[i:], f); n > 0 {
					break
				}
			}
			if n > 0 {
				out = append(out, [2]int{i, i + n})
				i += n
			} else {
				_, w := decodeRune(s[i:])
				i += w
			}
		}
		return out
	}
}

func isBertPunct(r rune) bool {
	return r < 0x80 && (r >= '!' && r <= '/' || r >= ':' && r <= '@' || r >= '[' && r <= '`' || r >= '{' && r <= '~') || unicode.IsPunct(r)
}

func isWordChar(r rune) bool {
	return unicode.In(r, unicode.L, unicode.M, unicode.Nd, unicode.Nl, unicode.Pc) || r == '\u200c' || r == '\u200d'
}
