package daemon

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/aiassist/aiassist/schema"
)

// TestStatEmbeddingModel: an embedding model is identified by its
// model.onnx, tokenizer.json and config.json, so replacing any of them
// reloads it, and a file beside them does not.
func TestStatEmbeddingModel(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join("..", "examples", "models", "tiny-bert")
	for _, name := range []string{"model.onnx", "tokenizer.json", "config.json"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m := schema.Model{Kind: schema.KindEmbedding, Path: dir}
	files, err := modelFiles(m)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "model.onnx"), filepath.Join(dir, "tokenizer.json"), filepath.Join(dir, "config.json")}
	if !slices.Equal(files, want) {
		t.Fatalf("modelFiles = %q, want %q", files, want)
	}
	before, err := statModel(m)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "README.md"), []byte("notes"), 0o644)
	if id, err := statModel(m); err != nil || id != before {
		t.Errorf("a file beside the model changed its identity (%v)", err)
	}
	for _, name := range []string{"config.json", "tokenizer.json"} {
		prev, _ := statModel(m)
		b, _ := os.ReadFile(filepath.Join(dir, name))
		tmp := filepath.Join(dir, name+".new")
		os.WriteFile(tmp, append(b, '\n'), 0o644)
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
		if id, _ := statModel(m); id == prev {
			t.Errorf("replacing %s left the model's identity unchanged", name)
		}
	}
	os.Remove(filepath.Join(dir, "tokenizer.json"))
	if _, err := statModel(m); err == nil {
		t.Error("no error for a folder without tokenizer.json")
	}
}

// TestEmbedOptions: the config's chunking reaches the engine as it says:
// an unset stride with an unset window is the engine's default (a
// quarter), an unset stride with a window is 0.
func TestEmbedOptions(t *testing.T) {
	f := func(src string, off bool, window, stride int) {
		t.Helper()
		cfg, err := schema.Parse("c.cue", []byte(`models: e: {kind: "embedding", path: "e"`+src+`}`))
		if err != nil {
			t.Fatal(err)
		}
		o := embedOptions(cfg, cfg.Models["e"], nil)
		if c := o.Chunking; c.Off != off || c.Window != window || c.Stride != stride {
			t.Errorf("%s: chunking %+v", src, c)
		}
		if !o.Batching.Enabled || o.Batching.MaxBatchSize != 32 || o.Pooling != "mean" || !o.Normalize || o.Padding != "longest" {
			t.Errorf("%s: options %+v", src, o)
		}
	}
	f(``, false, 0, -1)
	f(`, chunking: {window: 100}`, false, 100, 0)
	f(`, chunking: {stride: 8}`, false, 0, 8)
	f(`, chunking: {window: 100, stride: 25}`, false, 100, 25)
	f(`, chunking: "off"`, true, 0, 0)
}
