package tokenizer

import (
	"encoding/json"
	"fmt"
)

// postProcessor wraps the ids of one sequence, adding special tokens when
// asked to. Offsets and type ids are not modelled: they never change ids.
type postProcessor func(ids []int, addSpecial bool) []int

func buildPostProcessor(c *component) (postProcessor, error) {
	switch c.Type {
	case "ByteLevel":
		return func(ids []int, _ bool) []int { return ids }, nil
	case "Sequence":
		var ps []postProcessor
		for i, sub := range c.Processors {
			p, err := buildPostProcessor(sub)
			if err != nil {
				return nil, fmt.Errorf("processors[%d]: %w", i, err)
			}
			ps = append(ps, p)
		}
		return func(ids []int, add bool) []int {
			for _, p := range ps {
				ids = p(ids, add)
			}
			return ids
		}, nil
	case "TemplateProcessing":
		var before, after []int
		seen := false
		for i, p := range c.Single {
			switch {
			case p.Sequence != nil:
				if p.Sequence.ID != "A" || seen {
					return nil, fmt.Errorf("single[%d]: a single-sequence template holds sequence A once", i)
				}
				seen = true
			case p.SpecialToken != nil:
				st, ok := c.SpecialTokens[p.SpecialToken.ID]
				if !ok {
					return nil, fmt.Errorf("single[%d]: special token %q is not in special_tokens", i, p.SpecialToken.ID)
				}
				if seen {
					after = append(after, st.IDs...)
				} else {
					before = append(before, st.IDs...)
				}
			default:
				return nil, fmt.Errorf("single[%d]: neither Sequence nor SpecialToken", i)
			}
		}
		return wrap(before, after), nil
	case "BertProcessing", "RobertaProcessing":
		cls, err := tokenPairID(c.Cls)
		if err != nil {
			return nil, fmt.Errorf("cls: %w", err)
		}
		sep, err := tokenPairID(c.Sep)
		if err != nil {
			return nil, fmt.Errorf("sep: %w", err)
		}
		return wrap([]int{cls}, []int{sep}), nil
	}
	return nil, fmt.Errorf("unsupported post_processor type %q", c.Type)
}

func wrap(before, after []int) postProcessor {
	return func(ids []int, add bool) []int {
		if !add {
			return ids
		}
		out := make([]int, 0, len(before)+len(ids)+len(after))
		out = append(append(append(out, before...), ids...), after...)
		return out
	}
}

// tokenPairID reads the id of a ["[CLS]", 101] pair.
func tokenPairID(raw []json.RawMessage) (int, error) {
	var id int
	if len(raw) != 2 || json.Unmarshal(raw[1], &id) != nil {
		return 0, fmt.Errorf("want [token, id]")
	}
	return id, nil
}
