package tokenizer

import (
	"encoding/json"
	"fmt"
)

// Truncation is the truncation section of a tokenizer.json. Encode never
// applies it; a caller that wants the reference's behaviour encodes
// without special tokens, cuts with Truncate to MaxLength minus
// SpecialTokenCount, then adds them with AddSpecialTokens.
type Truncation struct {
	// MaxLength is the most ids of an encoding, special tokens included.
	MaxLength int
	// Left keeps the last ids rather than the first ("direction": "Left").
	Left bool
	// Stride is how many ids overflowing pieces share; ids are the same
	// without it, as the overflow is dropped.
	Stride int
}

// Padding is the padding section of a tokenizer.json.
type Padding struct {
	// Fixed is the length every row is padded to ("strategy": {"Fixed":
	// n}); 0 pads the rows of a batch to the longest ("BatchLongest").
	// Rows longer than Fixed are left as they are.
	Fixed int
	// MultipleOf rounds the padded length up to a multiple; 0 does not.
	MultipleOf int
	// Left pads before the ids rather than after ("direction": "Left").
	Left bool
	// PadID and PadTypeID are the id and token type of a padding token.
	PadID, PadTypeID int
	PadToken         string
}

type truncationConfig struct {
	Direction string `json:"direction"`
	MaxLength int    `json:"max_length"`
	Strategy  string `json:"strategy"`
	Stride    int    `json:"stride"`
}

type paddingConfig struct {
	Strategy        json.RawMessage `json:"strategy"`
	Direction       string          `json:"direction"`
	PadToMultipleOf *int            `json:"pad_to_multiple_of"`
	PadID           int             `json:"pad_id"`
	PadTypeID       int             `json:"pad_type_id"`
	PadToken        string          `json:"pad_token"`
}

// maxLength bounds the lengths a tokenizer.json may set, so that padding
// cannot be made to allocate without bound.
const maxLength = 1 << 20

func buildTruncation(c *truncationConfig) (*Truncation, error) {
	if c == nil {
		return nil, nil
	}
	t := &Truncation{MaxLength: c.MaxLength, Stride: c.Stride}
	switch c.Direction {
	case "", "Right":
	case "Left":
		t.Left = true
	default:
		return nil, fmt.Errorf("direction %q is not Right or Left", c.Direction)
	}
	switch c.Strategy {
	case "", "LongestFirst", "OnlyFirst", "OnlySecond":
		// The same for a single sequence.
	default:
		return nil, fmt.Errorf("strategy %q is not LongestFirst, OnlyFirst or OnlySecond", c.Strategy)
	}
	if c.MaxLength < 1 || c.MaxLength > maxLength {
		return nil, fmt.Errorf("max_length %d is not between 1 and %d", c.MaxLength, maxLength)
	}
	return t, nil
}

func buildPadding(c *paddingConfig) (*Padding, error) {
	if c == nil {
		return nil, nil
	}
	p := &Padding{PadID: c.PadID, PadTypeID: c.PadTypeID, PadToken: c.PadToken}
	switch c.Direction {
	case "", "Right":
	case "Left":
		p.Left = true
	default:
		return nil, fmt.Errorf("direction %q is not Right or Left", c.Direction)
	}
	var name string
	var fixed struct {
		Fixed *int `json:"Fixed"`
	}
	switch {
	case json.Unmarshal(c.Strategy, &name) == nil && name == "BatchLongest":
	case json.Unmarshal(c.Strategy, &fixed) == nil && fixed.Fixed != nil:
		if *fixed.Fixed < 1 || *fixed.Fixed > maxLength {
			return nil, fmt.Errorf("strategy Fixed %d is not between 1 and %d", *fixed.Fixed, maxLength)
		}
		p.Fixed = *fixed.Fixed
	default:
		return nil, fmt.Errorf("strategy %s is not \"BatchLongest\" or {\"Fixed\": n}", c.Strategy)
	}
	if c.PadToMultipleOf != nil {
		if *c.PadToMultipleOf < 0 || *c.PadToMultipleOf > maxLength {
			return nil, fmt.Errorf("pad_to_multiple_of %d is not between 0 and %d", *c.PadToMultipleOf, maxLength)
		}
		p.MultipleOf = *c.PadToMultipleOf
	}
	if c.PadID < 0 {
		return nil, fmt.Errorf("pad_id %d is negative", c.PadID)
	}
	return p, nil
}

// Truncation returns the file's truncation settings, or nil if it sets
// none.
func (t *Tokenizer) Truncation() *Truncation { return t.truncation }

// Padding returns the file's padding settings, or nil if it sets none.
func (t *Tokenizer) Padding() *Padding { return t.padding }

// SpecialTokenCount is how many ids AddSpecialTokens adds to one
// sequence, such as 2 for BERT's [CLS] ... [SEP].
func (t *Tokenizer) SpecialTokenCount() int {
	if t.post == nil {
		return 0
	}
	return len(t.post(nil, true))
}

// AddSpecialTokens applies the post-processor's template to ids, the
// encoding of one sequence without special tokens: Encode(text, true) is
// AddSpecialTokens(Encode(text, false)).
func (t *Tokenizer) AddSpecialTokens(ids []int) []int {
	if t.post == nil {
		return ids
	}
	return t.post(ids, true)
}

// VocabSize is one more than the largest id of the vocabulary and the
// added tokens.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// Truncate returns at most n of ids: the first, or with left the last.
func Truncate(ids []int, n int, left bool) []int {
	if len(ids) <= max(n, 0) {
		return ids
	}
	n = max(n, 0)
	if left {
		return ids[len(ids)-n:]
	}
	return ids[:n]
}

// Length is the length p pads rows to whose longest has longest ids.
func (p *Padding) Length(longest int) int {
	n := longest
	if p.Fixed > 0 {
		n = max(n, p.Fixed)
	}
	if p.MultipleOf > 1 && n%p.MultipleOf != 0 {
		n += p.MultipleOf - n%p.MultipleOf
	}
	return n
}

// Pad pads ids to length n with PadID and returns the padded ids and
// their attention mask (1 for an id of the row, 0 for padding). A row of
// n or more ids is returned as it is.
func (p *Padding) Pad(ids []int, n int) (padded, mask []int) {
	if len(ids) >= n {
		mask = make([]int, len(ids))
		for i := range mask {
			mask[i] = 1
		}
		return ids, mask
	}
	padded, mask = make([]int, 0, n), make([]int, 0, n)
	pad := func() {
		for range n - len(ids) {
			padded, mask = append(padded, p.PadID), append(mask, 0)
		}
	}
	if p.Left {
		pad()
	}
	for _, id := range ids {
		padded, mask = append(padded, id), append(mask, 1)
	}
	if !p.Left {
		pad()
	}
	return padded, mask
}
