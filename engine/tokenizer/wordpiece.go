package tokenizer

import (
	"fmt"
	"unicode/utf8"
)

// wordPiece is BERT's greedy longest-match-first subword model.
type wordPiece struct {
	vocab   map[string]int
	unk     int
	prefix  string
	maxRune int
}

func newWordPiece(m *modelConfig) (*wordPiece, error) {
	unk := strOr(m.UnkToken, "[UNK]")
	id, ok := m.Vocab[unk]
	if !ok {
		return nil, fmt.Errorf("WordPiece unk_token %q is not in the vocab", unk)
	}
	max := 100
	if m.MaxInputCharsPerWord != nil {
		max = *m.MaxInputCharsPerWord
	}
	return &wordPiece{vocab: m.Vocab, unk: id, prefix: strOr(m.ContinuingSubwordPrefix, "##"), maxRune: max}, nil
}

func (w *wordPiece) encode(word string, out []int) []int {
	if utf8.RuneCountInString(word) > w.maxRune {
		return append(out, w.unk)
	}
	n := len(out)
	for start := 0; start < len(word); {
		end, id := len(word), -1
		for start < end {
			sub := word[start:end]
			if start > 0 {
				sub = w.prefix + sub
			}
			if v, ok := w.vocab[sub]; ok {
				id = v
				break
			}
			_, size := utf8.DecodeLastRuneInString(word[start:end])
			end -= size
		}
		if id < 0 {
			return append(out[:n], w.unk)
		}
		out = append(out, id)
		start = end
	}
	return out
}
