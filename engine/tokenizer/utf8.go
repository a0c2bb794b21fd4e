package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// seqInfo returns how many bytes a UTF-8 sequence led by b needs and the
// allowed range of its second byte; need is 0 for a byte that cannot lead.
func seqInfo(b byte) (need int, lo, hi byte) {
	switch {
	case b < 0x80:
		return 1, 0, 0
	case b >= 0xC2 && b <= 0xDF:
		return 2, 0x80, 0xBF
	case b == 0xE0:
		return 3, 0xA0, 0xBF
	case b == 0xED:
		return 3, 0x80, 0x9F
	case b >= 0xE1 && b <= 0xEF:
		return 3, 0x80, 0xBF
	case b == 0xF0:
		return 4, 0x90, 0xBF
	case b >= 0xF1 && b <= 0xF3:
		return 4, 0x80, 0xBF
	case b == 0xF4:
		return 4, 0x80, 0x8F
	}
	return 0, 0, 0
}

// prefixLen returns the length of the longest prefix of s that starts a
// well-formed UTF-8 sequence (at least 1), and the length that sequence needs.
func prefixLen(s string) (n, need int) {
	need, lo, hi := seqInfo(s[0])
	if need <= 1 {
		return 1, need
	}
	n = 1
	for n < need && n < len(s) {
		c := s[n]
		if n == 1 && (c < lo || c > hi) || n > 1 && (c < 0x80 || c > 0xBF) {
			break
		}
		n++
	}
	return n, need
}

// toValidUTF8 replaces each maximal ill-formed subpart of s with U+FFFD, the
// way the WHATWG TextDecoder (and so the reference implementation) does;
// Go's own decoders would emit one U+FFFD per byte instead.
func toValidUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			b.WriteByte(s[i])
			i++
			continue
		}
		n, need := prefixLen(s[i:])
		if n == need {
			b.WriteString(s[i : i+n])
		} else {
			b.WriteRune(utf8.RuneError)
		}
		i += n
	}
	return b.String()
}

// incompleteTail returns how many trailing bytes of s begin a well-formed
// UTF-8 sequence that more bytes could still complete.
func incompleteTail(s string) int {
	for k := 1; k <= 3 && k <= len(s); k++ {
		p := len(s) - k
		if s[p] < 0xC0 {
			continue
		}
		n, need := prefixLen(s[p:])
		if n == k && n < need {
			return k
		}
		return 0
	}
	return 0
}
