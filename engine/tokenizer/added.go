package tokenizer

import (
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// addedSet finds added tokens in text before the model sees it: leftmost
// match first, longest on ties, honouring single_word, lstrip and rstrip as
// Rust's AddedVocabulary does.
type addedSet struct {
	toks    []addedToken
	byFirst [256][]int // indexes into toks by first byte, longest first
}

func newAddedSet(toks []addedToken) *addedSet {
	a := &addedSet{toks: toks}
	for i, t := range toks {
		if t.Content != "" {
			a.byFirst[t.Content[0]] = append(a.byFirst[t.Content[0]], i)
		}
	}
	for _, l := range a.byFirst {
		sort.SliceStable(l, func(i, j int) bool { return len(toks[l[i]].Content) > len(toks[l[j]].Content) })
	}
	return a
}

// split calls emit for each plain piece (id -1) and each added token, in order.
func (a *addedSet) split(s string, emit func(piece string, id, start int)) {
	if len(a.toks) == 0 {
		emit(s, -1, 0)
		return
	}
	start := 0
	for i := 0; i < len(s); {
		best := -1
		for _, k := range a.byFirst[s[i]] {
			if strings.HasPrefix(s[i:], a.toks[k].Content) {
				best = k
				break
			}
		}
		if best < 0 {
			_, w := utf8.DecodeRuneInString(s[i:])
			i += w
			continue
		}
		t := &a.toks[best]
		lo, hi := i, i+len(t.Content)
		if t.SingleWord && (endsWithWord(s[:lo]) || startsWithWord(s[hi:])) {
			i = hi
			continue
		}
		if t.LStrip {
			lo = start + len(strings.TrimRightFunc(s[start:lo], unicode.IsSpace))
		}
		if t.RStrip {
			hi = len(s) - len(strings.TrimLeftFunc(s[hi:], unicode.IsSpace))
		}
		if start < lo {
			emit(s[start:lo], -1, start)
		}
		emit(t.Content, t.ID, lo)
		start, i = hi, hi
	}
	if start < len(s) {
		emit(s[start:], -1, start)
	}
}

func isAlnum(r rune) bool { return unicode.IsLetter(r) || unicode.IsNumber(r) }

func endsWithWord(s string) bool {
	r, n := utf8.DecodeLastRuneInString(s)
	return n > 0 && isAlnum(r)
}

func startsWithWord(s string) bool {
	r, n := utf8.DecodeRuneInString(s)
	return n > 0 && isAlnum(r)
}
