// Package tokenizer encodes and decodes text with a Hugging Face
// tokenizer.json: byte-level BPE (GPT-2, Qwen, Llama-3), SentencePiece-style
// BPE with byte fallback (Llama-2, Phi-3) and WordPiece (BERT), with the
// normalizers, pre-tokenizers, post-processors and decoders those use.
//
// Ids match the Hugging Face reference implementations; a tokenizer.json
// that uses a feature this package lacks fails to load rather than encode
// differently. Encode never truncates or pads; the file's truncation and
// padding settings are read for callers that do (Truncation, Padding,
// Truncate, Padding.Pad), with the reference's results.
package tokenizer

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// Tokenizer is a loaded tokenizer.json. It is safe for concurrent use.
type Tokenizer struct {
	raw, norm *addedSet // added tokens matched before / after normalization
	normalize normalizer
	pre       preTokenizer
	model     model
	post      postProcessor
	dec       decoder

	truncation *Truncation // nil when the file sets none
	padding    *Padding    // nil when the file sets none

	vocab   map[string]int
	tokens  []string // by id; "" where no token has the id
	special []bool   // by id
	added   []bool   // by id
}

// Load reads and parses a tokenizer.json file.
func Load(path string) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot load tokenizer: %w", err)
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("cannot load tokenizer %q: %w", path, err)
	}
	return t, nil
}

// Parse builds a Tokenizer from the contents of a tokenizer.json.
func Parse(data []byte) (*Tokenizer, error) {
	var f file
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("invalid tokenizer.json: %w", err)
	}
	t := &Tokenizer{vocab: make(map[string]int, len(f.Model.Vocab)+len(f.AddedTokens))}
	var err error
	if f.Model.Type == "" {
		// Older files leave the model type out; Rust tells them apart by
		// their fields.
		if f.Model.Merges != nil {
			f.Model.Type = "BPE"
		} else if f.Model.ContinuingSubwordPrefix != nil {
			f.Model.Type = "WordPiece"
		}
	}
	switch f.Model.Type {
	case "BPE", "WordPiece":
		if err = json.Unmarshal(f.Model.RawVocab, &f.Model.Vocab); err != nil {
			return nil, fmt.Errorf("model: vocab: %w", err)
		}
	}
	switch f.Model.Type {
	case "BPE":
		t.model, err = newBPE(&f.Model)
	case "WordPiece":
		t.model, err = newWordPiece(&f.Model)
	default:
		err = fmt.Errorf("unsupported type %q (BPE and WordPiece are supported)", f.Model.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	if f.Normalizer != nil {
		if t.normalize, err = buildNormalizer(f.Normalizer); err != nil {
			return nil, fmt.Errorf("normalizer: %w", err)
		}
	}
	if f.PreTokenizer != nil {
		if t.pre, err = buildPreTokenizer(f.PreTokenizer); err != nil {
			return nil, fmt.Errorf("pre_tokenizer: %w", err)
		}
	}
	if t.truncation, err = buildTruncation(f.Truncation); err != nil {
		return nil, fmt.Errorf("truncation: %w", err)
	}
	if t.padding, err = buildPadding(f.Padding); err != nil {
		return nil, fmt.Errorf("padding: %w", err)
	}
	if f.PostProcessor != nil {
		if t.post, err = buildPostProcessor(f.PostProcessor); err != nil {
			return nil, fmt.Errorf("post_processor: %w", err)
		}
	}
	addedContent := map[string]bool{}
	for _, a := range f.AddedTokens {
		addedContent[a.Content] = true
	}
	if f.Decoder != nil {
		if t.dec, err = buildDecoder(f.Decoder, addedContent); err != nil {
			return nil, fmt.Errorf("decoder: %w", err)
		}
	}

	size := 0
	for tok, id := range f.Model.Vocab {
		if id < 0 {
			return nil, fmt.Errorf("model: token %q has negative id %d", tok, id)
		}
		t.vocab[tok] = id
		size = max(size, id+1)
	}
	var raw, normed []addedToken
	for i, a := range f.AddedTokens {
		if a.ID < 0 {
			return nil, fmt.Errorf("added_tokens[%d]: negative id %d", i, a.ID)
		}
		t.vocab[a.Content] = a.ID
		size = max(size, a.ID+1)
		if a.Normalized && t.normalize != nil {
			a.Content = t.normalize(a.Content)
			normed = append(normed, a)
		} else if a.Normalized {
			normed = append(normed, a)
		} else {
			raw = append(raw, a)
		}
	}
	if size > 1<<24 {
		return nil, fmt.Errorf("vocabulary of %d ids is implausibly large", size)
	}
	t.raw, t.norm = newAddedSet(raw), newAddedSet(normed)
	t.tokens = make([]string, size)
	t.special, t.added = make([]bool, size), make([]bool, size)
	for tok, id := range f.Model.Vocab {
		t.tokens[id] = tok
	}
	for _, a := range f.AddedTokens {
		t.tokens[a.ID] = a.Content
		t.added[a.ID] = true
		t.special[a.ID] = a.Special
	}
	return t, nil
}

// Encode returns the ids of text; addSpecialTokens applies the
// post-processor's template (BOS, [CLS] ... [SEP]). Ill-formed UTF-8 is
// first replaced by U+FFFD.
func (t *Tokenizer) Encode(text string, addSpecialTokens bool) []int {
	text = toValidUTF8(text)
	ids := make([]int, 0, len(text)/3+2)
	t.raw.split(text, func(piece string, id, start int) {
		if id >= 0 {
			ids = append(ids, id)
			return
		}
		if t.normalize != nil {
			piece = t.normalize(piece)
		}
		t.norm.split(piece, func(piece string, id, start2 int) {
			if id >= 0 {
				ids = append(ids, id)
				return
			}
			words := []string{piece}
			if t.pre != nil {
				words = t.pre(words, start == 0 && start2 == 0)
			}
			for _, w := range words {
				ids = t.model.encode(w, ids)
			}
		})
	})
	if t.post != nil {
		ids = t.post(ids, addSpecialTokens)
	}
	return ids
}

// Decode returns the text of ids. Unknown ids are skipped, as are special
// tokens when skipSpecialTokens is set.
func (t *Tokenizer) Decode(ids []int, skipSpecialTokens bool) string {
	toks := make([]string, 0, len(ids))
	for _, id := range ids {
		if tok, ok := t.token(id, skipSpecialTokens); ok {
			toks = append(toks, tok)
		}
	}
	return toValidUTF8(t.decodeRaw(toks))
}

// token returns the token of id for decoding, or false to leave it out.
func (t *Tokenizer) token(id int, skipSpecial bool) (string, bool) {
	if id < 0 || id >= len(t.tokens) || t.tokens[id] == "" && !t.added[id] {
		return "", false
	}
	if skipSpecial && t.special[id] {
		return "", false
	}
	return t.tokens[id], true
}

// decodeRaw runs the decoder without repairing ill-formed UTF-8.
func (t *Tokenizer) decodeRaw(toks []string) string {
	if t.dec == nil {
		return strings.Join(toks, " ")
	}
	return strings.Join(t.dec(toks), "")
}

// TokenToID returns the id of a token of the vocabulary or an added token.
func (t *Tokenizer) TokenToID(tok string) (int, bool) {
	id, ok := t.vocab[tok]
	return id, ok
}
