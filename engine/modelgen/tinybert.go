package modelgen

import (
	"strings"

	"github.com/aiassist/aiassist/engine/onnxpb"
)

// TinyBertSeed seeds the tiny-bert weights; changing it changes the
// committed files under examples/models/tiny-bert.
const TinyBertSeed = 11

// tinyBertWords are the whole words and suffixes of the tiny-bert
// vocabulary, after the specials, the single characters and the ##
// characters; common English, so that ordinary text takes few pieces.
var tinyBertWords = strings.Fields(`the of and to a in is it you that he was for on are with as i his they be at
one have this from or had by word but what some we can out other were all there when up use your how said an
each she which do their time if will way about many then them write would like so these her long make thing see
him two has look more day could go come did number sound no most people my over know water than call first who
may down side been now find any new work part take get place made live where after back little only round man
year came show every good me give our under name very through just form sentence great think say help low line
differ turn cause much mean before move right boy old too same tell does set three want air well also play small
end put home read hand port large spell add even land here must big high such follow act why ask men change went
light kind off need house picture try us again animal point mother world near build self earth father model text
embed token chunk window search query document ##s ##ed ##ing ##er ##ly ##tion ##es ##al`)

// TinyBertModel is a BERT-style encoder small enough to commit (about
// 100 KB) with a WordPiece tokenizer, laid out as a Hugging Face Optimum
// feature-extraction export: model.onnx, config.json, tokenizer.json.
type TinyBertModel struct {
	*Encoder
	// Vocab lists the tokens by id: [PAD] [UNK] [CLS] [SEP] [MASK], the
	// printable ASCII characters, ## and a lowercase letter or digit, then
	// tinyBertWords.
	Vocab []string
}

// TinyBert returns the tiny-bert example model: hidden 32, 2 layers, 4
// heads, intermediate 64, 64 positions, 2 token types, layer norm eps 1e-12.
func TinyBert() *TinyBertModel {
	vocab := []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}
	seen := map[string]bool{}
	for _, v := range vocab {
		seen[v] = true
	}
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			vocab = append(vocab, s)
		}
	}
	for b := byte('!'); b <= '~'; b++ {
		if b < 'A' || b > 'Z' {
			add(string(b))
		}
	}
	for _, c := range "abcdefghijklmnopqrstuvwxyz0123456789" {
		add("##" + string(c))
	}
	for _, w := range tinyBertWords {
		add(w)
	}
	cfg := EncoderConfig{
		VocabSize: len(vocab), HiddenSize: 32, NumLayers: 2, NumHeads: 4, IntermediateSize: 64,
		MaxPositions: 64, TypeVocabSize: 2, LayerNormEps: 1e-12,
	}
	return &TinyBertModel{Encoder: NewEncoder(cfg, TinyBertSeed), Vocab: vocab}
}

// Model returns the encoder as model.onnx; see Encoder.Model for its I/O.
func (m *TinyBertModel) Model() *onnxpb.ModelProto { return m.Encoder.Model("tiny-bert") }

// Files returns config.json and tokenizer.json, which sit beside
// model.onnx.
func (m *TinyBertModel) Files() map[string][]byte {
	return map[string][]byte{
		"config.json":    indentJSON(EncoderConfigJSON(m.Config)),
		"tokenizer.json": indentJSON(WordPieceTokenizerJSON(m.Vocab)),
	}
}

// EncoderConfigJSON is the config.json of an encoder of shape c, as a BERT
// export from Hugging Face writes it.
func EncoderConfigJSON(c EncoderConfig) any {
	return object{
		{"architectures", []string{"BertModel"}},
		{"attention_probs_dropout_prob", 0.1},
		{"hidden_act", "gelu"},
		{"hidden_dropout_prob", 0.1},
		{"hidden_size", c.HiddenSize},
		{"intermediate_size", c.IntermediateSize},
		{"layer_norm_eps", c.LayerNormEps},
		{"max_position_embeddings", c.MaxPositions},
		{"model_type", "bert"},
		{"num_attention_heads", c.NumHeads},
		{"num_hidden_layers", c.NumLayers},
		{"pad_token_id", 0},
		{"torch_dtype", "float32"},
		{"type_vocab_size", c.TypeVocabSize},
		{"vocab_size", c.VocabSize},
	}
}

// WordPieceTokenizerJSON is a BERT tokenizer.json over vocab, whose first
// five tokens are [PAD] [UNK] [CLS] [SEP] [MASK]: the BERT normalizer
// (lowercasing), pre-tokenizer and [CLS] ... [SEP] template, no truncation
// and no padding.
func WordPieceTokenizerJSON(vocab []string) any {
	var added []object
	for id, tok := range vocab[:5] {
		added = append(added, object{
			{"id", id}, {"content", tok}, {"single_word", false}, {"lstrip", false},
			{"rstrip", false}, {"normalized", false}, {"special", true},
		})
	}
	v := object{}
	for id, tok := range vocab {
		v = append(v, kv{tok, id})
	}
	piece := func(kind, id string, typeID int) object {
		return object{{kind, object{{"id", id}, {"type_id", typeID}}}}
	}
	return object{
		{"version", "1.0"},
		{"truncation", nil},
		{"padding", nil},
		{"added_tokens", added},
		{"normalizer", object{{"type", "BertNormalizer"}, {"clean_text", true}, {"handle_chinese_chars", true}, {"strip_accents", nil}, {"lowercase", true}}},
		{"pre_tokenizer", object{{"type", "BertPreTokenizer"}}},
		{"post_processor", object{
			{"type", "TemplateProcessing"},
			{"single", []any{piece("SpecialToken", "[CLS]", 0), piece("Sequence", "A", 0), piece("SpecialToken", "[SEP]", 0)}},
			{"pair", []any{piece("SpecialToken", "[CLS]", 0), piece("Sequence", "A", 0), piece("SpecialToken", "[SEP]", 0),
				piece("Sequence", "B", 1), piece("SpecialToken", "[SEP]", 1)}},
			{"special_tokens", object{
				{"[CLS]", object{{"id", "[CLS]"}, {"ids", []int{2}}, {"tokens", []string{"[CLS]"}}}},
				{"[SEP]", object{{"id", "[SEP]"}, {"ids", []int{3}}, {"tokens", []string{"[SEP]"}}}},
			}},
		}},
		{"decoder", object{{"type", "WordPiece"}, {"prefix", "##"}, {"cleanup", true}}},
		{"model", object{
			{"type", "WordPiece"}, {"unk_token", "[UNK]"}, {"continuing_subword_prefix", "##"},
			{"max_input_chars_per_word", 100}, {"vocab", v},
		}},
	}
}
