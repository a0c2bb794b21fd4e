package daemon

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/aiassist/aiassist/schema"
)

func TestDefaultModel(t *testing.T) {
	f := func(src, want string) {
		t.Helper()
		cfg, err := schema.Parse("c.cue", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		if got := defaultModel(cfg); got != want {
			t.Errorf("%s: default %q, want %q", src, got, want)
		}
	}
	f(`models: a: {kind: "tensor", path: "a.onnx"}`, "")
	f(`models: {a: {kind: "tensor", path: "a.onnx"}, b: {kind: "causal-lm", path: "b"}}`, "b")
	f(`models: {b: {kind: "causal-lm", path: "b"}, c: {kind: "causal-lm", path: "c"}}`, "")
	f(`models: {b: {kind: "causal-lm", path: "b"}, c: {kind: "causal-lm", path: "c"}}
default_model: "c"`, "c")
}

// TestStatModel checks that replacing any file a causal-lm model is
// loaded from changes its identity, so a reload loads it again, while a
// file created beside them — a lock file, a cache folder — does not: the
// folder's own mtime used to be part of the identity, so any new file in
// it reloaded the whole model.
func TestStatModel(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join("..", "examples", "models", "tiny-llama")
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m := schema.Model{Kind: schema.KindCausalLM, Path: dir}
	before, err := statModel(m)
	if err != nil {
		t.Fatal(err)
	}
	files, err := modelFiles(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"config.json", "model.onnx", "tokenizer.json"} {
		if !slices.Contains(files, filepath.Join(dir, want)) {
			t.Errorf("modelFiles = %q lacks %s", files, want)
		}
	}
	// Files that are not the model's change nothing.
	os.WriteFile(filepath.Join(dir, ".lock"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("notes"), 0o644)
	os.MkdirAll(filepath.Join(dir, ".cache", "x"), 0o755)
	os.WriteFile(filepath.Join(dir, "other.onnx"), []byte("not the model"), 0o644)
	if id, err := statModel(m); err != nil || id != before {
		t.Errorf("files created beside the model changed its identity (%v)", err)
	}
	tmp := filepath.Join(dir, "tokenizer.json.new")
	b, _ := os.ReadFile(filepath.Join(dir, "tokenizer.json"))
	os.WriteFile(tmp, b, 0o644)
	if err := os.Rename(tmp, filepath.Join(dir, "tokenizer.json")); err != nil {
		t.Fatal(err)
	}
	if id, _ := statModel(m); id == before {
		t.Errorf("replacing tokenizer.json left the model's identity unchanged")
	}
	if _, err := statModel(schema.Model{Kind: schema.KindCausalLM, Path: filepath.Join(dir, "nope")}); err == nil {
		t.Errorf("no error for a missing folder")
	}
}

// TestGenerateOptionsMaxQueue checks that the config's max_queue: 0 (no
// request waits) does not reach the engine as its zero, which means the
// default queue of 64.
func TestGenerateOptionsMaxQueue(t *testing.T) {
	f := func(src string, want int) {
		t.Helper()
		cfg, err := schema.Parse("c.cue", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		if got := generateOptions(cfg, cfg.Models["b"], nil).MaxQueue; got != want {
			t.Errorf("%s: engine MaxQueue %d, want %d", src, got, want)
		}
	}
	f(`models: b: {kind: "causal-lm", path: "b", max_queue: 0}`, -1)
	f(`models: b: {kind: "causal-lm", path: "b", max_queue: 3}`, 3)
	f(`models: b: {kind: "causal-lm", path: "b"}`, 64)
}
