package tokenizer

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// matcher returns the non-overlapping, leftmost-first matches of a pattern
// as byte spans, in order.
type matcher func(s string) [][2]int

// Patterns of the well-known byte-level tokenizers. Their `\s+(?!\S)`
// lookahead is beyond Go's regexp, so each has a hand-written scanner that
// reproduces Oniguruma's backtracking result.
const (
	gpt2Pattern   = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	llama3Pattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	qwen2Pattern  = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

var knownPatterns = map[string]matcher{
	gpt2Pattern:   scanAll(gpt2Next),
	llama3Pattern: scanAll(func(s string) int { return llamaNext(s, 3) }),
	qwen2Pattern:  scanAll(func(s string) int { return llamaNext(s, 1) }),
}

// unsafeRegexp lists syntax whose meaning differs between Oniguruma and Go
// (ASCII-only classes in Go) or that Go lacks; such patterns are refused
// rather than silently split differently.
var unsafeRegexp = regexp.MustCompile(`\\[sSwWdDbBhHzZAG]|\(\?[=!<>]`)

func compileMatcher(p *pattern) (matcher, error) {
	if p.String != nil {
		lit := *p.String
		return func(s string) [][2]int {
			var out [][2]int
			if lit == "" {
				return nil
			}
			for i := 0; ; {
				j := strings.Index(s[i:], lit)
				if j < 0 {
					return out
				}
				out = append(out, [2]int{i + j, i + j + len(lit)})
				i += j + len(lit)
			}
		}, nil
	}
	if p.Regex == nil {
		return nil, fmt.Errorf("pattern needs String or Regex")
	}
	if m, ok := knownPatterns[*p.Regex]; ok {
		return m, nil
	}
	if unsafeRegexp.MatchString(*p.Regex) {
		return nil, fmt.Errorf("unsupported regex %q: it uses lookaround or Unicode classes that Go's regexp treats differently; only the GPT-2, Llama-3 and Qwen2 patterns are built in", *p.Regex)
	}
	re, err := regexp.Compile(*p.Regex)
	if err != nil {
		return nil, fmt.Errorf("unsupported regex %q: %w", *p.Regex, err)
	}
	return func(s string) [][2]int {
		var out [][2]int
		for _, m := range re.FindAllStringIndex(s, -1) {
			out = append(out, [2]int{m[0], m[1]})
		}
		return out
	}, nil
}

// scanAll turns a "length of the match at the start of s" function into a
// matcher; the known patterns match every character, so there are no gaps.
func scanAll(next func(string) int) matcher {
	return func(s string) [][2]int {
		out := make([][2]int, 0, len(s)/4+1)
		for i := 0; i < len(s); {
			n := next(s[i:])
			out = append(out, [2]int{i, i + n})
			i += n
		}
		return out
	}
}

func isL(r rune) bool { return unicode.IsLetter(r) }
func isN(r rune) bool { return unicode.IsNumber(r) }

// isOther is [^\s\p{L}\p{N}].
func isOther(r rune) bool { return !unicode.IsSpace(r) && !isL(r) && !isN(r) }

func runLen(s string, f func(rune) bool) int {
	for i, r := range s {
		if !f(r) {
			return i
		}
	}
	return len(s)
}

// contraction matches 's|'t|'re|'ve|'m|'ll|'d, optionally ignoring ASCII case.
func contraction(s string, fold bool) int {
	if len(s) < 2 || s[0] != '\'' {
		return 0
	}
	low := func(c byte) byte {
		if fold && c >= 'A' && c <= 'Z' {
			return c + 32
		}
		return c
	}
	switch low(s[1]) {
	case 's', 't', 'm', 'd':
		return 2
	}
	if len(s) >= 3 {
		switch string([]byte{low(s[1]), low(s[2])}) {
		case "re", "ve", "ll":
			return 3
		}
	}
	return 0
}

// spaceTail handles `\s+(?!\S)|\s+` at a whitespace character: the whole run
// if it ends the text, else the run minus its last character (which then
// leads the next word), or the lone character.
func spaceTail(s string) int {
	n := runLen(s, unicode.IsSpace)
	if n == len(s) {
		return n
	}
	_, last := utf8.DecodeLastRuneInString(s[:n])
	if n-last > 0 {
		return n - last
	}
	return n
}

func gpt2Next(s string) int {
	if n := contraction(s, false); n > 0 {
		return n
	}
	r, _ := utf8.DecodeRuneInString(s)
	start, class := 0, r
	if r == ' ' && len(s) > 1 {
		r2, _ := utf8.DecodeRuneInString(s[1:])
		if !unicode.IsSpace(r2) {
			start, class = 1, r2
		}
	}
	switch {
	case isL(class):
		return start + runLen(s[start:], isL)
	case isN(class):
		return start + runLen(s[start:], isN)
	case isOther(class):
		return start + runLen(s[start:], isOther)
	}
	return spaceTail(s)
}

// llamaNext scans the Llama-3 pattern, or Qwen2's when maxDigits is 1.
func llamaNext(s string, maxDigits int) int {
	if n := contraction(s, true); n > 0 {
		return n
	}
	r, w := utf8.DecodeRuneInString(s)
	if isL(r) {
		return runLen(s, isL)
	}
	if r != '\r' && r != '\n' && !isN(r) && w < len(s) {
		if r2, _ := utf8.DecodeRuneInString(s[w:]); isL(r2) {
			return w + runLen(s[w:], isL)
		}
	}
	if isN(r) {
		n, i := 0, 0
		for _, c := range s {
			if !isN(c) || n == maxDigits {
				break
			}
			n++
			i += utf8.RuneLen(c)
		}
		return i
	}
	start := 0
	if r == ' ' && w < len(s) {
		if r2, _ := utf8.DecodeRuneInString(s[w:]); isOther(r2) {
			start = 1
		}
	}
	if start == 1 || isOther(r) {
		n := start + runLen(s[start:], isOther)
		return n + runLen(s[n:], func(c rune) bool { return c == '\r' || c == '\n' })
	}
	// r is whitespace: `\s*[\r\n]+` ends after the last newline of the run.
	run := runLen(s, unicode.IsSpace)
	if p := strings.LastIndexAny(s[:run], "\r\n"); p >= 0 {
		return p + 1
	}
	return spaceTail(s)
}
