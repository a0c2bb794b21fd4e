package tokenizer

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// decoder rewrites a list of tokens, like Rust's Decoder::decode_chain. The
// strings may hold raw, even invalid, UTF-8 bytes (ByteLevel, ByteFallback):
// Decode replaces ill-formed bytes only once, at the end, so that a
// character split across tokens decodes whole.
type decoder func(toks []string) []string

func buildDecoder(c *component, added map[string]bool) (decoder, error) {
	switch c.Type {
	case "Sequence":
		var ds []decoder
		for i, sub := range c.Decoders {
			d, err := buildDecoder(sub, added)
			if err != nil {
				return nil, fmt.Errorf("decoders[%d]: %w", i, err)
			}
			ds = append(ds, d)
		}
		return func(toks []string) []string {
			for _, d := range ds {
				toks = d(toks)
			}
			return toks
		}, nil
	case "ByteLevel":
		// Added tokens pass through literally, as in the reference.
		return mapTokens(func(_ int, t string) string {
			if added[t] {
				return t
			}
			return byteDecode(t)
		}), nil
	case "ByteFallback":
		return mapTokens(func(_ int, t string) string {
			if len(t) == 6 && strings.HasPrefix(t, "<0x") && t[5] == '>' {
				if b, err := strconv.ParseUint(t[3:5], 16, 8); err == nil {
					return string([]byte{byte(b)})
				}
			}
			return t
		}), nil
	case "Fuse":
		return func(toks []string) []string { return []string{strings.Join(toks, "")} }, nil
	case "Strip":
		content := strOr(c.Content, " ")
		if utf8.RuneCountInString(content) != 1 {
			return nil, fmt.Errorf("Strip content %q must be one character", content)
		}
		start, stop, size := c.Start, c.Stop, len(content)
		return mapTokens(func(_ int, t string) string {
			for n := 0; n < start && strings.HasPrefix(t, content); n++ {
				t = t[size:]
			}
			for n := 0; n < stop && strings.HasSuffix(t, content); n++ {
				t = t[:len(t)-size]
			}
			return t
		}), nil
	case "Replace":
		rep, err := buildReplace(c)
		if err != nil {
			return nil, err
		}
		return mapTokens(func(_ int, t string) string { return rep(t) }), nil
	case "Metaspace":
		rep := strOr(c.Replacement, "▁")
		strip := strOr(c.PrependScheme, "always") != "never"
		if c.PrependScheme == nil && c.AddPrefixSpace != nil {
			strip = *c.AddPrefixSpace
		}
		return mapTokens(func(i int, t string) string {
			if i == 0 && strip {
				return strings.ReplaceAll(t, rep, "")
			}
			return strings.ReplaceAll(t, rep, " ")
		}), nil
	case "WordPiece":
		prefix, cleanup := strOr(c.Prefix, "##"), boolOr(c.Cleanup, true)
		return mapTokens(func(i int, t string) string {
			if i > 0 {
				if strings.HasPrefix(t, prefix) {
					t = strings.Replace(t, prefix, "", 1)
				} else {
					t = " " + t
				}
			}
			if cleanup {
				t = cleanupSpaces.Replace(t)
			}
			return t
		}), nil
	}
	return nil, fmt.Errorf("unsupported decoder type %q", c.Type)
}

func mapTokens(f func(i int, t string) string) decoder {
	return func(toks []string) []string {
		out := make([]string, len(toks))
		for i, t := range toks {
			out[i] = f(i, t)
		}
		return out
	}
}

// cleanupSpaces undoes the spaces WordPiece puts before punctuation and
// English contractions (Rust's decoders::wordpiece::cleanup).
var cleanupSpaces = strings.NewReplacer(" .", ".", " ?", "?", " !", "!", " ,", ",", " ' ", "'",
	" n't", "n't", " 'm", "'m", " do not", " don't", " 's", "'s", " 've", "'ve", " 're", "'re")
