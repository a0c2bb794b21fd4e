package modelgen

// BenchLlamaSeed seeds the bench-llama weights.
const BenchLlamaSeed = 12

// BenchLlamaConfig is the shape of the benchmark decoder: Llama-style, 8
// layers, hidden 768 (12 heads sharing 4 kv heads, head_dim 64),
// intermediate 2048, vocab 32,000 — 99M parameters, 400 MB as ONNX. A
// decode step at batch 1 reads all of its weights and little cache, so
// what batching saves (one pass over the weights for many sequences)
// shows, as it does for real models and not for tiny-llama.
var BenchLlamaConfig = LlamaConfig{
	VocabSize: 32000, HiddenSize: 768, NumLayers: 8, NumHeads: 12, NumKVHeads: 4, HeadDim: 64,
	IntermediateSize: 2048, MaxPositions: 4096, RopeTheta: 10000, RMSNormEps: 1e-6,
}

// BenchLlama returns the benchmark decoder with tiny-llama's tokenizer
// and special tokens. Ids past that tokenizer's 311 get an lm_head bias of
// -100, and tiny-llama's own bias steers the rest, so decoding stays in
// printable text the tokenizer can spell.
func BenchLlama() *TinyLlamaModel {
	t := TinyLlama()
	m := &TinyLlamaModel{
		Llama: NewLlama(BenchLlamaConfig, BenchLlamaSeed, tinyLlamaGain),
		Vocab: t.Vocab,
		BOS:   t.BOS, EOS: t.EOS, End: t.End, User: t.User, Assistant: t.Assistant,
	}
	copy(m.LMBias, t.LMBias)
	for id := len(t.Vocab); id < len(m.LMBias); id++ {
		m.LMBias[id] = -100
	}
	return m
}

// benchLlamaFiles are bench-llama's files beside model.onnx, made without
// drawing its 99M weights.
func benchLlamaFiles() map[string][]byte {
	t := TinyLlama()
	t.Config = BenchLlamaConfig
	return t.Files()
}
