package tokenizer

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// tiny builds a small tokenizer.json around a word-level vocabulary.
func tiny(extra string) string {
	return `{"added_tokens":[{"id":5,"content":"<x>","single_word":true,"lstrip":false,"rstrip":false,"normalized":false,"special":true}],
	"normalizer":null,"pre_tokenizer":{"type":"WhitespaceSplit"},"post_processor":null,"decoder":null,` + extra + `}`
}

const tinyModel = `"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2,"c":3,"abc":4},"merges":[["a","b"],"ab c"]}`

func TestParseErrors(t *testing.T) {
	f := func(json, want string) {
		t.Helper()
		_, err := Parse([]byte(json))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse error = %v, want it to mention %q", err, want)
		}
	}
	f(`{`, "invalid tokenizer.json")
	f(tiny(`"model":{"type":"Unigram","vocab":[]}`), `unsupported type "Unigram"`)
	f(tiny(`"model":{"type":"BPE","vocab":{"a":0},"merges":["a b"]}`), "missing from the vocab")
	f(tiny(`"model":{"type":"BPE","vocab":{"a":0},"merges":["a b c"]}`), "not two space-separated")
	f(tiny(`"model":{"type":"BPE","vocab":{"a":0},"merges":[],"dropout":0.1}`), "dropout")
	f(tiny(`"model":{"type":"BPE","vocab":{"a":0},"merges":[],"unk_token":"<unk>"}`), "unk_token")
	f(tiny(`"model":{"type":"WordPiece","vocab":{"a":0}}`), "unk_token")
	f(strings.Replace(tiny(tinyModel), `"normalizer":null`, `"normalizer":{"type":"Precompiled","precompiled_charsmap":"AA=="}`, 1), `unsupported normalizer type "Precompiled"`)
	f(strings.Replace(tiny(tinyModel), `{"type":"WhitespaceSplit"}`, `{"type":"Split","pattern":{"Regex":"\\s+(?!\\S)"},"behavior":"Isolated"}`, 1), "unsupported regex")
	f(strings.Replace(tiny(tinyModel), `{"type":"WhitespaceSplit"}`, `{"type":"Split","pattern":{"String":" "},"behavior":"Sideways"}`, 1), "behavior")
	f(strings.Replace(tiny(tinyModel), `{"type":"WhitespaceSplit"}`, `{"type":"UnicodeScripts"}`, 1), `unsupported pre_tokenizer type "UnicodeScripts"`)
	f(strings.Replace(tiny(tinyModel), `"decoder":null`, `"decoder":{"type":"CTC"}`, 1), `unsupported decoder type "CTC"`)
	f(strings.Replace(tiny(tinyModel), `"post_processor":null`, `"post_processor":{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<s>"}}],"special_tokens":{}}`, 1), "not in special_tokens")
}

func TestAddedTokenFlags(t *testing.T) {
	tk, err := Parse([]byte(tiny(tinyModel)))
	if err != nil {
		t.Fatal(err)
	}
	f := func(in string, want ...int) {
		t.Helper()
		if got := tk.Encode(in, true); !slices.Equal(got, want) {
			t.Errorf("Encode(%q) = %v, want %v", in, got, want)
		}
	}
	f("abc ab", 4, 2)
	f("a <x> b", 0, 5, 1)
	// single_word: "<x>" is not a word of its own here, so the model sees
	// "a<x>b", drops the characters it lacks (no unk_token) and merges a+b,
	// as Rust does.
	f("a<x>b", 2)
	if got := tk.Decode([]int{0, 5, 99, -1, 1}, true); got != "a b" {
		t.Errorf("Decode skipping specials and unknown ids = %q", got)
	}
	if tk.vocabSize() != 6 || !tk.isSpecial(5) || tk.isSpecial(4) {
		t.Errorf("VocabSize = %d, isSpecial(5) = %v", tk.vocabSize(), tk.isSpecial(5))
	}
	if id, ok := tk.TokenToID("<x>"); !ok || id != 5 {
		t.Errorf("TokenToID(<x>) = %d, %v", id, ok)
	}
	if s, ok := tk.idToToken(2); !ok || s != "ab" {
		t.Errorf("idToToken(2) = %q, %v", s, ok)
	}
	if _, ok := tk.idToToken(6); ok {
		t.Error("idToToken(6) found a token")
	}
}

func TestBertProcessingAndMetaspaceDecoder(t *testing.T) {
	json := `{"added_tokens":[],"normalizer":null,"pre_tokenizer":{"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true},
	"post_processor":{"type":"BertProcessing","cls":["▁a",1],"sep":["b",2]},
	"decoder":{"type":"Metaspace","replacement":"▁","prepend_scheme":"always"},
	"model":{"type":"BPE","vocab":{"▁":0,"▁a":1,"b":2,"▁ab":3,"a":4},"merges":["▁ a","▁a b"]}}`
	tk, err := Parse([]byte(json))
	if err != nil {
		t.Fatal(err)
	}
	ids := tk.Encode("ab a", true)
	if want := []int{1, 3, 1, 2}; !slices.Equal(ids, want) {
		t.Fatalf("Encode = %v, want %v", ids, want)
	}
	if got := tk.Decode(ids[1:3], false); got != "ab a" {
		t.Errorf("Decode = %q", got)
	}
}

func TestToValidUTF8(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := toValidUTF8(in); got != want {
			t.Errorf("toValidUTF8(%q) = %q, want %q", in, got, want)
		}
	}
	f("abc", "abc")
	f("a\xffb", "a\ufffdb")
	f("\xe4\xbd", "\ufffd") // one maximal subpart, as TextDecoder does
	f("\xe4\xbdA", "\ufffdA")
	f("\xed\xa0\x80", "\ufffd\ufffd\ufffd") // surrogate: each byte stands alone
	f("\xf0\x9f\x98", "\ufffd")
	if n := incompleteTail("a\xf0\x9f\x98"); n != 3 {
		t.Errorf("incompleteTail = %d, want 3", n)
	}
	if n := incompleteTail("a\xf0\x9f\x98\x80"); n != 0 {
		t.Errorf("incompleteTail of a complete emoji = %d", n)
	}
}

// TestStreamByteFallback splits a CJK character and an emoji into byte
// tokens and checks that no chunk holds half a character.
func TestStreamByteFallback(t *testing.T) {
	tk := mustLoad(t, "phi3")
	var ids []int
	for _, w := range []string{"▁Hi", "<0xE4>", "<0xBD>", "<0xA0>", "▁", "<0xF0>", "<0x9F>", "<0x98>", "<0x80>", "▁there", "<0xE4>"} {
		id, ok := tk.TokenToID(w)
		if !ok {
			t.Fatalf("no token %q", w)
		}
		ids = append(ids, id)
	}
	d := tk.NewStreamDecoder(false)
	var chunks []string
	for _, id := range ids {
		chunks = append(chunks, d.Add(id))
	}
	chunks = append(chunks, d.Flush())
	want := []string{"Hi", "", "", "你", " ", "", "", "", "😀", " there", "", "\ufffd"}
	if !slices.Equal(chunks, want) {
		t.Errorf("chunks = %q, want %q", chunks, want)
	}
	if got := strings.Join(chunks, ""); got != tk.Decode(ids, false) {
		t.Errorf("joined %q != Decode %q", got, tk.Decode(ids, false))
	}
	for _, c := range chunks {
		if !utf8.ValidString(c) {
			t.Errorf("invalid chunk %q", c)
		}
	}
}

func TestConcurrentEncode(t *testing.T) {
	tk := mustLoad(t, "gpt2")
	want := tk.Encode(benchText, false)
	done := make(chan []int)
	for range 4 {
		go func() { done <- tk.Encode(benchText, false) }()
	}
	for range 4 {
		if got := <-done; !slices.Equal(got, want) {
			t.Error("concurrent Encode differs")
		}
	}
}

const benchText = `The tokenizer turns text into ids. It handles byte-level BPE as used by GPT-2,
Qwen and Llama 3, SentencePiece-style BPE with byte fallback as used by Llama 2 and Phi-3, and
WordPiece as used by BERT. Numbers like 12345 and 3.14, code like fmt.Println("hi") and
whitespace   runs all take part; so do 中文, émojis 👍🏽 and contractions we'll see.`

func BenchmarkEncode(b *testing.B) {
	for _, name := range []string{"gpt2", "phi3", "bert"} {
		b.Run(name, func(b *testing.B) {
			tk := mustLoad(b, name)
			n := len(tk.Encode(benchText, false))
			b.SetBytes(int64(len(benchText)))
			b.ResetTimer()
			for b.Loop() {
				tk.Encode(benchText, false)
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

func FuzzTokenize(f *testing.F) {
	for _, s := range []string{"", "hello world", " \t\n", "<|endoftext|>x", "\xe4\xbd", "👨‍👩‍👧", "[MASK] a"} {
		f.Add(s)
	}
	toks := map[string]*Tokenizer{}
	for _, name := range allNames {
		toks[name] = mustLoad(f, name)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 1<<12 {
			s = s[:1<<12] // longer inputs only slow the search down
		}
		valid := toValidUTF8(s)
		for name, tk := range toks {
			ids := tk.Encode(s, true)
			text := tk.Decode(ids, false)
			if !utf8.ValidString(text) {
				t.Fatalf("%s: Decode gave invalid UTF-8 %q", name, text)
			}
			// Byte-level BPE without a normalizer keeps every byte.
			if name == "gpt2" && text != valid {
				t.Fatalf("gpt2: round trip of %q gave %q", valid, text)
			}
			d := tk.NewStreamDecoder(false)
			var b strings.Builder
			for _, id := range ids {
				c := d.Add(id)
				if !utf8.ValidString(c) {
					t.Fatalf("%s: stream chunk %q is not valid UTF-8", name, c)
				}
				b.WriteString(c)
			}
			b.WriteString(d.Flush())
			if b.String() != text {
				t.Fatalf("%s: stream %q != Decode %q", name, b.String(), text)
			}
		}
	})
}

// Views of the tokenizer's tables for the tests.

// vocabSize returns the largest id plus one, added tokens included.
func (t *Tokenizer) vocabSize() int { return len(t.tokens) }

// idToToken returns the token string of id.
func (t *Tokenizer) idToToken(id int) (string, bool) {
	if id < 0 || id >= len(t.tokens) || t.tokens[id] == "" && !t.added[id] {
		return "", false
	}
	return t.tokens[id], true
}

// isSpecial reports whether id is a special added token (such as an end of
// turn marker), which Decode can skip.
func (t *Tokenizer) isSpecial(id int) bool {
	return id >= 0 && id < len(t.special) && t.special[id]
}
