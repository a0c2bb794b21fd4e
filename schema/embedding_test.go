package schema

import (
	"strings"
	"testing"
	"time"
)

// TestEmbeddingModels checks the embedding kind's fields, defaults and
// errors.
func TestEmbeddingModels(t *testing.T) {
	f := func(src string, want Embedding, wantErr string) {
		t.Helper()
		cfg, err := Parse("m.cue", []byte(src))
		if wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Fatalf("%s:\n got %v\nwant ...%s...", src, err, wantErr)
			}
			return
		}
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		m := cfg.Models["e"]
		if m.Kind != KindEmbedding || m.Embedding != want {
			t.Fatalf("%s:\n got %+v\nwant %+v", src, m.Embedding, want)
		}
		if b := m.Batching; !b.Enabled || b.MaxBatchSize != 32 || b.MaxQueueDelay != 2*time.Millisecond || b.MaxQueueSize != 1024 {
			t.Fatalf("batching %+v", b)
		}
	}
	def := Embedding{Pooling: "mean", Normalize: true, Padding: "longest", DefaultStride: true}
	f(`models: e: {kind: "embedding", path: "m"}`, def, "")
	f(`models: e: {kind: "embedding", path: "m", pooling: "cls", normalize: false, max_length: 256, padding: "tokenizer", chunking: {window: 256, stride: 64}, matryoshka: true}`,
		Embedding{Pooling: "cls", MaxLength: 256, Padding: "tokenizer", Window: 256, Stride: 64, Matryoshka: true}, "")
	f(`models: e: {kind: "embedding", path: "m", chunking: "off"}`, Embedding{Pooling: "mean", Normalize: true, Padding: "longest", ChunkingOff: true}, "")
	f(`models: e: {kind: "embedding", path: "m", chunking: {window: 100}}`, Embedding{Pooling: "mean", Normalize: true, Padding: "longest", Window: 100, DefaultStride: true}, "")
	f(`models: e: {kind: "embedding", path: "m", chunking: "on"}`, def, "models.e.chunking")
	f(`models: e: {kind: "embedding", path: "m", pooling: "max"}`, def, "models.e.pooling")
	f(`models: e: {kind: "embedding", path: "m", max_length: 64, chunking: window: 128}`, def, "m.cue:1:77: models.e.chunking.window: window 128 is more than max_length 64")
	f(`models: e: {kind: "embedding", path: "m", chunking: {window: 16, stride: 15}}`, def, "models.e.chunking.stride: stride 15 leaves")
	f(`models: e: {kind: "embedding", path: "m", max_sequences: 2}`, def, `models.e.max_sequences: field not allowed; known fields of a "embedding" model`)
	f(`models: e: {kind: "embedding", path: "m", batching: max_queue_delay: "11s"}`, def, `must be at most "10s"`)
	f(`models: e: {kind: "embedding", path: "m"}`+"\ndefault_model: \"e\"", def, `model "e" is a "embedding" model; default_model picks the model of text generation requests`)
}
