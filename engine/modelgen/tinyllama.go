package modelgen

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/aiassist/aiassist/engine/onnxpb"
)

// TinyLlamaSeed seeds the tiny-llama weights; changing it changes the
// committed files under examples/models/tiny-llama.
const TinyLlamaSeed = 8

// tinyLlamaMerges are the BPE merges of the tiny-llama tokenizer, in rank
// order, over GPT-2's byte-level alphabet (Ġ is a space). They cover common
// English pairs so that ordinary text encodes to fewer tokens than bytes.
var tinyLlamaMerges = [][2]string{
	{"Ġ", "t"}, {"h", "e"}, {"i", "n"}, {"e", "r"}, {"Ġ", "a"}, {"o", "n"}, {"r", "e"}, {"Ġt", "he"},
	{"a", "n"}, {"Ġ", "s"}, {"o", "r"}, {"e", "n"}, {"Ġ", "w"}, {"a", "t"}, {"e", "s"}, {"Ġ", "o"},
	{"i", "s"}, {"Ġ", "c"}, {"i", "t"}, {"in", "g"}, {"Ġ", "b"}, {"e", "d"}, {"Ġ", "f"}, {"Ġ", "i"},
	{"o", "u"}, {"a", "r"}, {"Ġ", "p"}, {"Ġ", "m"}, {"a", "l"}, {"Ġ", "h"}, {"l", "l"}, {"Ġo", "f"},
	{"Ġa", "n"}, {"Ġan", "d"}, {"Ġ", "d"}, {"l", "e"}, {"Ġt", "o"}, {"Ġi", "n"}, {"i", "c"}, {"o", "m"},
	{"Ġ", "l"}, {"Ġ", "y"}, {"Ġy", "ou"}, {"Ġ", "n"}, {"s", "t"}, {"Ġ", "H"}, {"ĠH", "e"}, {"ll", "o"},
	{"ĠHe", "llo"}, {"Ġw", "or"},
}

// The tiny-llama special tokens, in id order after the byte symbols and merges.
var tinyLlamaSpecials = []string{"<|begin_of_text|>", "<|end_of_text|>", "<|user|>", "<|assistant|>", "<|end|>"}

// TinyLlamaChatTemplate is the Jinja chat template in tiny-llama's
// tokenizer_config.json.
const TinyLlamaChatTemplate = "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n{% endfor %}" +
	"{% if add_generation_prompt %}<|assistant|>\n{% endif %}"

// TinyLlamaModel is a Llama-style decoder small enough to commit (about
// 200 KB) together with a byte-level BPE tokenizer, laid out as a Hugging
// Face Optimum export: model.onnx, config.json, generation_config.json,
// tokenizer.json and tokenizer_config.json.
type TinyLlamaModel struct {
	*Llama
	// Vocab lists the tokens by id: the 256 byte symbols in GPT-2's order,
	// the merged tokens in merge order, then the special tokens.
	Vocab []string
	// Special token ids. EOS is <|end_of_text|>; End (<|end|>) closes a
	// chat turn and is a second stop token in generation_config.json.
	BOS, EOS, End, User, Assistant int64
}

// TinyLlama returns the tiny-llama example model: vocab 311 (256 bytes,
// 50 merges, 5 specials), hidden 32, 2 layers, 4 heads sharing 2 kv heads,
// head_dim 8, intermediate 64, RoPE theta 10000.
//
// The lm_head bias is -10 for every token except printable ASCII, newline
// and merged tokens, so greedy decoding emits readable (if meaningless)
// ASCII and never a special token: a test can run 20+ steps without an
// early stop.
func TinyLlama() *TinyLlamaModel { return tinyLlama(TinyLlamaSeed, tinyLlamaGain) }

// tinyLlamaGain scales the projections: larger than 1 makes the random
// network's output depend more on its context, which keeps greedy decoding
// from settling into one repeated token.
const tinyLlamaGain = 3

func tinyLlama(seed uint64, gain float32) *TinyLlamaModel {
	sym := byteSymbols()
	var vocab []string
	for _, b := range gpt2ByteOrder() {
		vocab = append(vocab, string(sym[b]))
	}
	for _, mg := range tinyLlamaMerges {
		vocab = append(vocab, mg[0]+mg[1])
	}
	first := int64(len(vocab))
	vocab = append(vocab, tinyLlamaSpecials...)
	cfg := LlamaConfig{
		VocabSize: len(vocab), HiddenSize: 32, NumLayers: 2, NumHeads: 4, NumKVHeads: 2, HeadDim: 8,
		IntermediateSize: 64, MaxPositions: 256, RopeTheta: 10000, RMSNormEps: 1e-6,
	}
	m := &TinyLlamaModel{
		Llama: NewLlama(cfg, seed, gain),
		Vocab: vocab,
		BOS:   first, EOS: first + 1, User: first + 2, Assistant: first + 3, End: first + 4,
	}
	for id, b := range gpt2ByteOrder() {
		if (b < 0x20 || b > 0x7e) && b != '\n' {
			m.LMBias[id] = -10
		}
	}
	for id := first; id < int64(len(vocab)); id++ {
		m.LMBias[id] = -10
	}
	return m
}

// Model returns the decoder as model.onnx; see Llama.Model for its I/O.
func (m *TinyLlamaModel) Model() *onnxpb.ModelProto { return m.Llama.Model("tiny-llama") }

// Files returns the JSON files that sit beside model.onnx, by file name.
func (m *TinyLlamaModel) Files() map[string][]byte {
	c := m.Config
	special := func(id int64) string { return m.Vocab[id] }
	config := object{
		{"architectures", []string{"LlamaForCausalLM"}},
		{"attention_bias", false},
		{"bos_token_id", m.BOS},
		{"eos_token_id", m.EOS},
		{"head_dim", c.HeadDim},
		{"hidden_act", "silu"},
		{"hidden_size", c.HiddenSize},
		{"intermediate_size", c.IntermediateSize},
		{"max_position_embeddings", c.MaxPositions},
		{"model_type", "llama"},
		{"num_attention_heads", c.NumHeads},
		{"num_hidden_layers", c.NumLayers},
		{"num_key_value_heads", c.NumKVHeads},
		{"pad_token_id", m.EOS},
		{"rms_norm_eps", c.RMSNormEps},
		{"rope_theta", c.RopeTheta},
		{"tie_word_embeddings", false},
		{"torch_dtype", "float32"},
		{"use_cache", true},
		{"vocab_size", c.VocabSize},
	}
	generation := object{
		{"bos_token_id", m.BOS},
		{"do_sample", false},
		{"eos_token_id", []int64{m.EOS, m.End}},
		{"max_length", c.MaxPositions},
		{"pad_token_id", m.EOS},
	}

	first := int64(len(m.Vocab) - len(tinyLlamaSpecials))
	var added []object
	addedDecoder := object{}
	for id := first; id < int64(len(m.Vocab)); id++ {
		added = append(added, object{
			{"id", id}, {"content", m.Vocab[id]}, {"single_word", false}, {"lstrip", false},
			{"rstrip", false}, {"normalized", false}, {"special", true},
		})
		addedDecoder = append(addedDecoder, kv{fmt.Sprint(id), object{
			{"content", m.Vocab[id]}, {"lstrip", false}, {"normalized", false},
			{"rstrip", false}, {"single_word", false}, {"special", true},
		}})
	}
	vocab := object{}
	for id, tok := range m.Vocab[:first] {
		vocab = append(vocab, kv{tok, id})
	}
	byteLevel := object{{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}}
	bos := special(m.BOS)
	tokenizer := object{
		{"version", "1.0"},
		{"truncation", nil},
		{"padding", nil},
		{"added_tokens", added},
		{"normalizer", nil},
		{"pre_tokenizer", byteLevel},
		// Like Llama 3, encoding prepends <|begin_of_text|>.
		{"post_processor", object{
			{"type", "TemplateProcessing"},
			{"single", []any{
				object{{"SpecialToken", object{{"id", bos}, {"type_id", 0}}}},
				object{{"Sequence", object{{"id", "A"}, {"type_id", 0}}}},
			}},
			{"pair", []any{
				object{{"SpecialToken", object{{"id", bos}, {"type_id", 0}}}},
				object{{"Sequence", object{{"id", "A"}, {"type_id", 0}}}},
				object{{"SpecialToken", object{{"id", bos}, {"type_id", 1}}}},
				object{{"Sequence", object{{"id", "B"}, {"type_id", 1}}}},
			}},
			{"special_tokens", object{{bos, object{{"id", bos}, {"ids", []int64{m.BOS}}, {"tokens", []string{bos}}}}}},
		}},
		{"decoder", byteLevel},
		{"model", object{
			{"type", "BPE"},
			{"dropout", nil},
			{"unk_token", nil},
			{"continuing_subword_prefix", nil},
			{"end_of_word_suffix", nil},
			{"fuse_unk", false},
			{"byte_fallback", false},
			{"ignore_merges", false},
			{"vocab", vocab},
			{"merges", tinyLlamaMerges},
		}},
	}
	tokenizerConfig := object{
		{"added_tokens_decoder", addedDecoder},
		{"bos_token", bos},
		{"chat_template", TinyLlamaChatTemplate},
		{"clean_up_tokenization_spaces", false},
		{"eos_token", special(m.EOS)},
		{"model_input_names", []string{"input_ids", "attention_mask"}},
		{"model_max_length", c.MaxPositions},
		{"pad_token", special(m.EOS)},
		{"tokenizer_class", "PreTrainedTokenizerFast"},
	}
	return map[string][]byte{
		"config.json":            indentJSON(config),
		"generation_config.json": indentJSON(generation),
		"tokenizer.json":         indentJSON(tokenizer),
		"tokenizer_config.json":  indentJSON(tokenizerConfig),
	}
}

// byteSymbols is GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for
// themselves and the rest are shifted to U+0100 onwards, so every byte is a
// visible character and a space becomes Ġ.
func byteSymbols() [256]rune {
	var sym [256]rune
	n := 0
	for b := range 256 {
		if printableByte(b) {
			sym[b] = rune(b)
		} else {
			sym[b] = rune(256 + n)
			n++
		}
	}
	return sym
}

func printableByte(b int) bool {
	return '!' <= b && b <= '~' || 0xa1 <= b && b <= 0xac || 0xae <= b && b <= 0xff
}

// gpt2ByteOrder lists the bytes in the order of GPT-2's vocabulary ids: the
// self-standing bytes first, then the shifted ones.
func gpt2ByteOrder() []int {
	var order []int
	for b := range 256 {
		if printableByte(b) {
			order = append(order, b)
		}
	}
	for b := range 256 {
		if !printableByte(b) {
			order = append(order, b)
		}
	}
	return order
}

// object is a JSON object that keeps its keys in order, so the generated
// files read like the ones Hugging Face writes (vocab in id order) and are
// byte-for-byte stable.
type object []kv

type kv struct {
	k string
	v any
}

func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, e := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(compactJSON(e.k))
		b.WriteByte(':')
		b.Write(compactJSON(e.v))
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// compactJSON encodes v without HTML escaping, which would turn the special
// tokens' < and > into \u003c and \u003e.
func compactJSON(v any) []byte {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		panic(fmt.Sprintf("modelgen: cannot encode %T: %v", v, err))
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func indentJSON(v any) []byte {
	var b bytes.Buffer
	if err := json.Indent(&b, compactJSON(v), "", "  "); err != nil {
		panic(fmt.Sprintf("modelgen: cannot indent JSON: %v", err))
	}
	b.WriteByte('\n')
	return b.Bytes()
}
