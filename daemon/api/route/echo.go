package route

import (
	"strconv"
	"unicode/utf8"
)

// MaxEcho is how many bytes of a request value a message repeats: enough
// to recognise a model name or a field, never a megabyte sent back.
const MaxEcho = 64

// maxMessage bounds a message built elsewhere (the engine, fasthttp) that
// may hold request values this package cannot pick out.
const maxMessage = 512

// Echo is s cut to MaxEcho bytes, with "…" appended when it was cut. Every
// request value that goes into a message or a param goes through it.
func Echo(s string) string { return clip(s, MaxEcho) }

// Quote is Echo(s), quoted as Go and JSON would.
func Quote(s string) string { return strconv.Quote(Echo(s)) }

// clip cuts s to at most n bytes, not inside a UTF-8 sequence, and marks
// the cut with "…".
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	// Back up to the start of a rune, at most the 3 bytes a rune can
	// continue for, so invalid UTF-8 still gets cut at n.
	for i := n; i > n-utf8.UTFMax && i > 0; i-- {
		if utf8.RuneStart(s[i]) {
			cut = i
			break
		}
	}
	return s[:cut] + "…"
}
