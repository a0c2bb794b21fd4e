package modelgen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
)

// llamaRun is one run of a decoder: logits [batch, seq, vocab] and the
// present key/value tensors in input order (layer 0 key, layer 0 value, ...).
type llamaRun struct {
	logits  []float32
	shape   ort.Shape
	present []ort.Value
}

// runLlama runs s with rows of ids, their attention mask and position ids.
// A nil past means the first step: every past is a zero-length tensor
// [batch, kv_heads, 0, head_dim], which ort.NewTensor accepts with an empty
// slice since onnxruntime_go v1.27.0 (it passes ONNX Runtime a nil buffer
// of 0 bytes).
func runLlama(t *testing.T, s *ort.DynamicAdvancedSession, c LlamaConfig, ids, mask, pos [][]int64, past []ort.Value) llamaRun {
	t.Helper()
	batch := int64(len(ids))
	flat := func(rows [][]int64) *ort.Tensor[int64] {
		return tensor(t, slices.Concat(rows...), batch, int64(len(rows[0])))
	}
	in := []ort.Value{flat(ids), flat(mask), flat(pos)}
	if past == nil {
		for range 2 * c.NumLayers {
			past = append(past, tensor(t, []float32{}, batch, int64(c.NumKVHeads), 0, int64(c.HeadDim)))
		}
	}
	in = append(in, past...)
	out := make([]ort.Value, 1+2*c.NumLayers)
	if err := s.Run(in, out); err != nil {
		t.Fatalf("run: %v", err)
	}
	for _, o := range out {
		t.Cleanup(func() { o.Destroy() })
	}
	logits := out[0].(*ort.Tensor[float32])
	want := ort.NewShape(batch, int64(len(ids[0])), int64(c.VocabSize))
	if !slices.Equal(logits.GetShape(), want) {
		t.Fatalf("logits shape %v, want %v", logits.GetShape(), want)
	}
	total := int64(len(mask[0]))
	for i, p := range out[1:] {
		if want := ort.NewShape(batch, int64(c.NumKVHeads), total, int64(c.HeadDim)); !slices.Equal(p.GetShape(), want) {
			t.Fatalf("present %d shape %v, want %v", i, p.GetShape(), want)
		}
	}
	return llamaRun{logits: logits.GetData(), shape: logits.GetShape(), present: out[1:]}
}

// row returns the logits of position j of batch row b.
func (r llamaRun) row(b, j int) []float32 {
	seq, v := int(r.shape[1]), int(r.shape[2])
	return r.logits[(b*seq+j)*v : (b*seq+j+1)*v]
}

func llamaSession(t *testing.T, m *TinyLlamaModel) *ort.DynamicAdvancedSession {
	t.Helper()
	in := []string{"input_ids", "attention_mask", "position_ids"}
	var out = []string{"logits"}
	for i := range m.Config.NumLayers {
		in = append(in, fmt.Sprintf("past_key_values.%d.key", i), fmt.Sprintf("past_key_values.%d.value", i))
		out = append(out, fmt.Sprintf("present.%d.key", i), fmt.Sprintf("present.%d.value", i))
	}
	return newSession(t, m.Model(), in, out)
}

func ones(n int) []int64 {
	s := make([]int64, n)
	for i := range s {
		s[i] = 1
	}
	return s
}

func arange(from, to int64) []int64 {
	var s []int64
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

func closeLogits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for i := range want {
		if d := math.Abs(float64(got[i] - want[i])); d > 1e-4 || math.IsNaN(float64(got[i])) {
			t.Fatalf("%s: logit %d = %v, want %v", what, i, got[i], want[i])
		}
	}
}

var tinyPrompt = []int64{40, 71, 82, 82, 85, 283}

func TestTinyLlamaKVCache(t *testing.T) {
	t.Parallel()
	m := TinyLlama()
	c := m.Config
	s := llamaSession(t, m)
	full := runLlama(t, s, c, [][]int64{tinyPrompt}, [][]int64{ones(6)}, [][]int64{arange(0, 6)}, nil)
	for _, x := range full.logits {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			t.Fatalf("full run gave a non-finite logit %v", x)
		}
	}

	step := runLlama(t, s, c, [][]int64{tinyPrompt[:4]}, [][]int64{ones(4)}, [][]int64{arange(0, 4)}, nil)
	for j := range 4 {
		closeLogits(t, fmt.Sprintf("prefill position %d", j), step.row(0, j), full.row(0, j))
	}
	for j := int64(4); j < 6; j++ {
		step = runLlama(t, s, c, [][]int64{{tinyPrompt[j]}}, [][]int64{ones(int(j) + 1)}, [][]int64{{j}}, step.present)
		closeLogits(t, fmt.Sprintf("cached step at position %d", j), step.row(0, 0), full.row(0, int(j)))
	}
}

// TestTinyLlamaLeftPadding runs a batch in which the shorter prompt is
// left-padded, as a batching server does, and checks that each row gives
// what it gives alone, for the prompt and for a cached decode step after it.
func TestTinyLlamaLeftPadding(t *testing.T) {
	t.Parallel()
	m := TinyLlama()
	c := m.Config
	s := llamaSession(t, m)
	long, short := tinyPrompt, []int64{72, 258, 1, 300}
	pad := m.EOS
	// Position ids as Hugging Face derives them from the mask: cumsum-1,
	// with 1 where padded.
	ids := [][]int64{long, {pad, pad, short[0], short[1], short[2], short[3]}}
	mask := [][]int64{ones(6), {0, 0, 1, 1, 1, 1}}
	pos := [][]int64{arange(0, 6), {1, 1, 0, 1, 2, 3}}
	batch := runLlama(t, s, c, ids, mask, pos, nil)
	for _, x := range batch.logits {
		if math.IsNaN(float64(x)) {
			t.Fatal("a padded row gave NaN logits")
		}
	}
	aloneLong := runLlama(t, s, c, [][]int64{long}, [][]int64{ones(6)}, [][]int64{arange(0, 6)}, nil)
	aloneShort := runLlama(t, s, c, [][]int64{short}, [][]int64{ones(4)}, [][]int64{arange(0, 4)}, nil)
	closeLogits(t, "unpadded row", batch.row(0, 5), aloneLong.row(0, 5))
	closeLogits(t, "left-padded row", batch.row(1, 5), aloneShort.row(0, 3))

	next := []int64{10, 20}
	batch = runLlama(t, s, c, [][]int64{{next[0]}, {next[1]}}, [][]int64{ones(7), {0, 0, 1, 1, 1, 1, 1}}, [][]int64{{6}, {4}}, batch.present)
	aloneLong = runLlama(t, s, c, [][]int64{{next[0]}}, [][]int64{ones(7)}, [][]int64{{6}}, aloneLong.present)
	aloneShort = runLlama(t, s, c, [][]int64{{next[1]}}, [][]int64{ones(5)}, [][]int64{{4}}, aloneShort.present)
	closeLogits(t, "unpadded row, cached step", batch.row(0, 0), aloneLong.row(0, 0))
	closeLogits(t, "left-padded row, cached step", batch.row(1, 0), aloneShort.row(0, 0))
}

// TestTinyLlamaGreedy decodes greedily with the KV cache, as a server
// would, and checks that the biased random weights give varied, printable
// text rather than one repeated token or a special token.
func TestTinyLlamaGreedy(t *testing.T) {
	t.Parallel()
	m := TinyLlama()
	c := m.Config
	s := llamaSession(t, m)
	sym := byteSymbols()
	text := func(ids []int64) string {
		var b []byte
		for _, id := range ids {
			for _, r := range m.Vocab[id] {
				if i := slices.Index(sym[:], r); i >= 0 {
					b = append(b, byte(i))
				}
			}
		}
		return string(b)
	}
	for _, prompt := range [][]int64{tinyPrompt, {m.BOS, m.User, 71}, {m.BOS, 300, 270, 0, 12}} {
		r := runLlama(t, s, c, [][]int64{prompt}, [][]int64{ones(len(prompt))}, [][]int64{arange(0, int64(len(prompt)))}, nil)
		var out []int64
		for len(out) < 20 {
			logits := r.row(0, int(r.shape[1])-1)
			next := int64(0)
			for i, x := range logits {
				if x > logits[next] {
					next = int64(i)
				}
			}
			out = append(out, next)
			n := int64(len(prompt) + len(out))
			r = runLlama(t, s, c, [][]int64{{next}}, [][]int64{ones(int(n))}, [][]int64{{n - 1}}, r.present)
		}
		distinct := slices.Compact(slices.Sorted(slices.Values(out)))
		t.Logf("prompt %v -> %v %q", prompt, out, text(out))
		if len(distinct) < 3 {
			t.Errorf("prompt %v: greedy decoding gave only %d distinct tokens: %v", prompt, len(distinct), out)
		}
		for _, id := range out {
			if id >= m.BOS {
				t.Errorf("prompt %v: greedy decoding emitted special token %d", prompt, id)
			}
		}
	}
}

func TestTinyLlamaOps(t *testing.T) {
	m := TinyLlama().Model()
	if m.GetOpsetImport()[0].GetDomain() != "" || len(m.GetOpsetImport()) != 1 {
		t.Fatalf("opset imports %v, want only the default domain", m.GetOpsetImport())
	}
	ops := map[string]bool{}
	for _, n := range m.GetGraph().GetNode() {
		if n.GetDomain() != "" {
			t.Errorf("node %s uses domain %q", n.GetName(), n.GetDomain())
		}
		ops[n.GetOpType()] = true
	}
	for _, op := range []string{"Gather", "MatMul", "Softmax", "Cos", "Sin", "Concat", "Where", "Expand", "Range"} {
		if !ops[op] {
			t.Errorf("graph has no %s node", op)
		}
	}
	if b, _ := Marshal(m); len(b) > 512<<10 {
		t.Errorf("model is %d bytes; keep the committed example small", len(b))
	}
}

func TestTinyLlamaTokenizer(t *testing.T) {
	m := TinyLlama()
	ids := map[string]int{}
	for id, tok := range m.Vocab {
		if prev, ok := ids[tok]; ok {
			t.Fatalf("token %q has ids %d and %d", tok, prev, id)
		}
		ids[tok] = id
	}
	if len(m.Vocab) != m.Config.VocabSize {
		t.Fatalf("vocab has %d tokens, config says %d", len(m.Vocab), m.Config.VocabSize)
	}
	// A merge may only join tokens that exist before it, as BPE training
	// produces them; otherwise the merge can never fire.
	for i, mg := range tinyLlamaMerges {
		id := 256 + i
		if ids[mg[0]] >= id || ids[mg[1]] >= id {
			t.Errorf("merge %d %q uses a token that does not exist yet", i, mg)
		}
	}
	if ids["Ġ"] != 220 || ids["!"] != 0 {
		t.Errorf("byte symbols not in GPT-2 order: Ġ=%d !=%d", ids["Ġ"], ids["!"])
	}
	for id, want := range map[int64]string{m.BOS: "<|begin_of_text|>", m.EOS: "<|end_of_text|>", m.User: "<|user|>", m.Assistant: "<|assistant|>", m.End: "<|end|>"} {
		if m.Vocab[id] != want {
			t.Errorf("id %d is %q, want %q", id, m.Vocab[id], want)
		}
	}

	files := m.Files()
	var tok struct {
		AddedTokens []struct {
			ID      int64  `json:"id"`
			Content string `json:"content"`
			Special bool   `json:"special"`
		} `json:"added_tokens"`
		PreTokenizer struct {
			Type           string `json:"type"`
			AddPrefixSpace bool   `json:"add_prefix_space"`
			UseRegex       bool   `json:"use_regex"`
		} `json:"pre_tokenizer"`
		Decoder struct{ Type string } `json:"decoder"`
		Model   struct {
			Type   string         `json:"type"`
			Vocab  map[string]int `json:"vocab"`
			Merges [][2]string    `json:"merges"`
		} `json:"model"`
	}
	mustUnmarshal(t, files["tokenizer.json"], &tok)
	if tok.Model.Type != "BPE" || tok.PreTokenizer.Type != "ByteLevel" || tok.PreTokenizer.AddPrefixSpace || !tok.PreTokenizer.UseRegex || tok.Decoder.Type != "ByteLevel" {
		t.Errorf("tokenizer.json: unexpected model %q, pre_tokenizer %+v, decoder %q", tok.Model.Type, tok.PreTokenizer, tok.Decoder.Type)
	}
	if len(tok.Model.Vocab) != 256+len(tinyLlamaMerges) || len(tok.Model.Merges) != len(tinyLlamaMerges) || len(tok.AddedTokens) != 5 {
		t.Errorf("tokenizer.json: %d vocab, %d merges, %d added tokens", len(tok.Model.Vocab), len(tok.Model.Merges), len(tok.AddedTokens))
	}
	for _, a := range tok.AddedTokens {
		if m.Vocab[a.ID] != a.Content || !a.Special {
			t.Errorf("tokenizer.json: added token %+v", a)
		}
	}
	var cfg map[string]any
	mustUnmarshal(t, files["config.json"], &cfg)
	for k, want := range map[string]any{
		"model_type": "llama", "vocab_size": 311.0, "hidden_size": 32.0, "num_hidden_layers": 2.0,
		"num_attention_heads": 4.0, "num_key_value_heads": 2.0, "max_position_embeddings": 256.0,
		"bos_token_id": float64(m.BOS), "eos_token_id": float64(m.EOS), "rope_theta": 10000.0,
		"intermediate_size": 64.0, "rms_norm_eps": 1e-6,
	} {
		if cfg[k] != want {
			t.Errorf("config.json %s = %v, want %v", k, cfg[k], want)
		}
	}
	var tc map[string]any
	mustUnmarshal(t, files["tokenizer_config.json"], &tc)
	if tc["chat_template"] != TinyLlamaChatTemplate || tc["eos_token"] != "<|end_of_text|>" || tc["bos_token"] != "<|begin_of_text|>" {
		t.Errorf("tokenizer_config.json: %v", tc)
	}
	if !bytes.Contains(files["tokenizer_config.json"], []byte(`"<|end|>"`)) {
		t.Error("tokenizer_config.json escapes < and >; write it without HTML escaping")
	}
}

func mustUnmarshal(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%v in %.80s", err, b)
	}
}

// TestCommittedFiles extends TestCommittedModels to the files beside a
// committed model.onnx, such as tiny-llama's tokenizer and config.
func TestCommittedFiles(t *testing.T) {
	for _, p := range Presets() {
		if !p.Committed || p.Files == nil {
			continue
		}
		for name, want := range p.Files() {
			path := filepath.Join("..", "..", "examples", "models", p.Name, name)
			got, err := os.ReadFile(path)
			if err != nil {
				t.Errorf("committed file missing: %v", err)
				continue
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from a fresh generation; regenerate it with "+
					"go run ./engine/modelgen/cmd/genmodels -out examples/models -which demo,types,llama,bert", path)
			}
		}
	}
}

func TestPresetWrite(t *testing.T) {
	dir := t.TempDir()
	for _, p := range Presets() {
		if p.Name != "tiny-llama" {
			continue
		}
		paths, err := p.Write(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, path := range paths {
			names = append(names, filepath.Base(path))
		}
		want := []string{"model.onnx", "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"}
		if !slices.Equal(names, want) {
			t.Errorf("wrote %v, want %v", names, want)
		}
		entries, _ := os.ReadDir(filepath.Join(dir, p.Name))
		if len(entries) != len(want) {
			t.Errorf("%d entries in the folder, want %d (a temporary file left behind?)", len(entries), len(want))
		}
	}
}
