package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// byteToRune and runeToByte are GPT-2's reversible map from bytes to
// printable characters: printable Latin-1 maps to itself, the rest to U+0100+.
var (
	byteToRune [256]rune
	runeToByte = map[rune]byte{}
)

func init() {
	n := 0
	for b := 0; b < 256; b++ {
		if b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE {
			byteToRune[b] = rune(b)
		} else {
			byteToRune[b] = rune(256 + n)
			n++
		}
		runeToByte[byteToRune[b]] = byte(b)
	}
}

func byteEncode(s string) string {
	var b strings.Builder
	b.Grow(len(s) * 2)
	for i := 0; i < len(s); i++ {
		b.WriteRune(byteToRune[s[i]])
	}
	return b.String()
}

// byteDecode maps a byte-level token back to its raw bytes; a token with a
// character outside the map (an added token such as "\t\t") is kept as is,
// as Rust's ByteLevel decoder does.
func byteDecode(tok string) string {
	buf := make([]byte, 0, len(tok))
	for _, r := range tok {
		b, ok := runeToByte[r]
		if !ok {
			return tok
		}
		buf = append(buf, b)
	}
	return string(buf)
}

func decodeRune(s string) (rune, int) { return utf8.DecodeRuneInString(s) }
