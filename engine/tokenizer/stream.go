package tokenizer

// StreamDecoder turns ids into text one at a time for streaming. Each
// chunk is valid UTF-8 and never ends inside a character, including one
// spelled by several byte-fallback or byte-level tokens, and the chunks
// joined, with Flush, equal Decode of all the ids.
//
// It keeps a small window of tokens rather than the whole history: the
// text a token adds depends only on whether it is the first token (where
// Metaspace, WordPiece and Strip decoders drop a leading space), so
// decoding the window with and without the new token and taking the
// difference gives the new text. A StreamDecoder is not safe for
// concurrent use.
type StreamDecoder struct {
	t      *Tokenizer
	skip   bool
	window []string
	done   int // bytes of decodeRaw(window) already returned
}

// NewStreamDecoder returns a decoder for one stream of ids.
func (t *Tokenizer) NewStreamDecoder(skipSpecial bool) *StreamDecoder {
	return &StreamDecoder{t: t, skip: skipSpecial}
}

// Add feeds one id and returns the text it completes, possibly "".
func (d *StreamDecoder) Add(id int) string {
	tok, ok := d.t.token(id, d.skip)
	if !ok {
		return ""
	}
	d.window = append(d.window, tok)
	raw := d.t.decodeRaw(d.window)
	if len(raw) < d.done {
		// Only a decoder that strips trailing text (Strip with stop > 0)
		// shrinks its output; restart the window rather than fail.
		d.window, d.done = d.window[len(d.window)-1:], 0
		raw = d.t.decodeRaw(d.window)
	}
	cut := len(raw) - incompleteTail(raw[d.done:])
	out := toValidUTF8(raw[d.done:cut])
	d.done = cut
	if cut == len(raw) && len(d.window) > 1 {
		// Nothing pending: restart the window at the last token so it
		// stays small. The last token is kept so that it, not the next
		// one, plays the part of the first token.
		d.window = d.window[len(d.window)-1:]
		d.done = len(d.t.decodeRaw(d.window))
	}
	return out
}

// Flush returns what is still held back at the end of the stream, an
// incomplete character, as Decode renders it (U+FFFD).
func (d *StreamDecoder) Flush() string {
	raw := d.t.decodeRaw(d.window)
	if d.done >= len(raw) {
		return ""
	}
	out := toValidUTF8(raw[d.done:])
	d.done = len(raw)
	return out
}
